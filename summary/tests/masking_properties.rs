//! Properties of masking on random input: no panic on any text (multi-byte characters
//! next to delimiters included), no ASCII digit of the input survives, at most one output
//! token per whitespace-separated input token (quoted strings and lists of values make one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_summary::drain::{MinerConfig, TemplateMiner};
use weir_summary::mask::{MaskedLine, Masker};

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
        // At most one token per input token (a quoted string over several tokens and a
        // list of values make one), and none when the input has none.
        let input_tokens = line.split_ascii_whitespace().count();
        assert!(out.tokens().len() <= input_tokens, "{line:?}");
        assert_eq!(out.tokens().is_empty(), input_tokens == 0, "{line:?}");
        let a = miner.add(&line);
        let template = miner.template(a.slot).unwrap();
        assert!(
            !template.bytes().any(|b| b.is_ascii_digit()),
            "{template:?}"
        );
    }
    assert!(miner.len() <= 50);
}

fn random_word(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A secret of one of the shapes masking promises to remove, wherever it stands.
fn random_secret(rng: &mut StdRng) -> String {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    match rng.random_range(0..5) {
        0 => format!(
            "{}.{}@{}-mail.com",
            random_word(rng, LOWER, 6),
            random_word(rng, LOWER, 5),
            random_word(rng, LOWER, 6)
        ),
        1 => format!("AKIA{}", random_word(rng, UPPER_DIGITS, 16)),
        2 => {
            let mut s = random_word(rng, B64, 24);
            s.push('7');
            s
        }
        3 => {
            let prefix = ["sk_live_", "ghp_", "xoxb-", "AIza", "glpat-"][rng.random_range(0..5)];
            format!("{prefix}{}", random_word(rng, B64, 24))
        }
        _ => format!(
            "{}{}",
            random_word(rng, LOWER, 10),
            random_word(rng, b"0123456789", 6)
        ),
    }
}

#[test]
fn secrets_of_known_shapes_never_survive_in_any_context() {
    let mut rng = StdRng::seed_from_u64(0x5ec7e7);
    let masker = Masker::new();
    let mut out = MaskedLine::new();
    for _ in 0..5_000 {
        let secret = random_secret(&mut rng);
        let line = match rng.random_range(0..9) {
            0 => format!("user email:{secret} signed in"),
            1 => format!(r#"{{"event":"signup","email":"{secret}","n":3}}"#),
            2 => format!("send mailto:{secret} to:{secret}"),
            3 => format!("GET /users/{secret}/cards HTTP/1.1"),
            4 => format!("https://api.example.com/v1/{secret}/orders?x={secret}"),
            5 => format!("key={secret}, other=1"),
            6 => format!("token: {secret}"),
            7 => format!("SELECT * FROM t WHERE k = '{secret}' AND a = 'b c'"),
            _ => format!("({secret}) [{secret}] <{secret}>"),
        };
        masker.mask_into(&line, &mut out);
        let stored = weir_summary::structure::redact_text(&out.joined());
        let chars: Vec<char> = secret.chars().collect();
        for w in chars.windows(6) {
            let piece: String = w.iter().collect();
            assert!(
                !stored.contains(&piece),
                "{piece:?} of {secret:?} survived: {line:?} -> {stored:?}"
            );
        }
    }
}
