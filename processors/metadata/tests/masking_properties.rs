//! Properties of masking on random input: no panic on any text (multi-byte characters
//! next to delimiters included), no ASCII digit of the input survives, one output token
//! per whitespace-separated input token (a quoted string over several tokens makes one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_metadata::drain::{MinerConfig, TemplateMiner};
use weir_metadata::mask::{MaskedLine, Masker};

const PIECES: &[&str] = &[
    "a",
    "Z",
    "x",
    "user",
    "password",
    "token",
    "Bearer",
    "eyJ",
    "0",
    "7",
    "42",
    "0x1f",
    "ff",
    "deadbeefcafe",
    ".",
    ":",
    "::",
    "/",
    "://",
    "=",
    "==",
    "@",
    ",",
    ";",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "\"",
    "'",
    "`",
    "?",
    "&",
    "#",
    "|",
    "+",
    "-",
    "_",
    "\\",
    "*",
    "<*>",
    "é",
    "日本",
    "１２",
    "🙂",
    "\u{200b}",
    " ",
    " ",
    " ",
    "\t",
];

fn random_line(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..40);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

#[test]
fn random_text_is_masked_without_panics_or_digits() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let masker = Masker::new();
    let mut out = MaskedLine::new();
    let mut miner = TemplateMiner::new(MinerConfig {
        max_templates: 50,
        ..MinerConfig::default()
    });
    for _ in 0..20_000 {
        let line = random_line(&mut rng);
        masker.mask_into(&line, &mut out);
        let joined = out.joined();
        assert!(
            !joined.bytes().any(|b| b.is_ascii_digit()),
            "digit kept: {line:?} -> {joined:?}"
        );
        // One token per input token, except a quoted string over several tokens: one.
        let input_tokens = line.split_ascii_whitespace().count();
        if line.contains(['"', '\'']) {
            assert!(out.tokens().len() <= input_tokens, "{line:?}");
        } else {
            assert_eq!(out.tokens().len(), input_tokens, "{line:?}");
        }
        let a = miner.add(&line);
        let template = miner.template(a.slot).unwrap();
        assert!(
            !template.bytes().any(|b| b.is_ascii_digit()),
            "{template:?}"
        );
    }
    assert!(miner.len() <= 50);
}
