//! The masked form of a line never depends on the values of its digits, only on where they
//! are: what lets the line cache (`mask/cache.rs`) serve a line from another line of the
//! same shape (`took 12 ms` from `took 97 ms`). Checked on every line of the labelled Loghub
//! samples (when present beside the project) and on made-up lines built from the pieces
//! the rules look for (addresses, ports, UUIDs, vendor key prefixes, URLs, `key=value`,
//! quotes, units, lists), each against copies with their digits replaced at random; and a
//! reused masker (whose line cache serves the copies) gives what a fresh one gives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_summary::mask::{MaskedLine, Masker};

fn fresh(m: &Masker, line: &str) -> (String, Vec<u64>) {
    let mut out = MaskedLine::new();
    m.mask_into(line, &mut out);
    (out.joined(), out.tokens().iter().map(|t| t.hash).collect())
}

/// `line` with each ASCII digit replaced by a random one.
fn redigit(line: &str, rng: &mut StdRng) -> String {
    line.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from(b'0' + rng.random_range(0..10u8))
            } else {
                c
            }
        })
        .collect()
}

/// Masks every line and four redigited copies with fresh maskers and with one reused
/// masker per setting; returns how many lines had a digit.
fn check(lines: &[String], rng: &mut StdRng) -> usize {
    let maskers = [Masker::new(), Masker::default()];
    let mut reused = [MaskedLine::new(), MaskedLine::new()];
    let mut with_digits = 0;
    for line in lines {
        if line.bytes().any(|b| b.is_ascii_digit()) {
            with_digits += 1;
        }
        for (m, cached) in maskers.iter().zip(reused.iter_mut()) {
            let want = fresh(m, line);
            for _ in 0..4 {
                let other = redigit(line, rng);
                assert_eq!(fresh(m, &other), want, "{line:?} vs {other:?}");
                m.mask_into(&other, cached);
                let got = (
                    cached.joined(),
                    cached.tokens().iter().map(|t| t.hash).collect::<Vec<_>>(),
                );
                assert_eq!(got, want, "cached: {line:?} vs {other:?}");
            }
        }
    }
    with_digits
}

#[test]
fn digits_never_change_the_masked_line_on_loghub() {
    let dir = std::env::var("WEIR_LOGHUB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub-2k")
        });
    if !dir.join("HDFS").exists() {
        println!("note: {} not found; Loghub part skipped", dir.display());
        return;
    }
    let mut rng = StdRng::seed_from_u64(7);
    let mut lines = Vec::new();
    for system in common::loghub::SYSTEMS {
        lines.extend(common::loghub::load(&dir, system).unwrap().contents);
    }
    let with_digits = check(&lines, &mut rng);
    assert!(with_digits > 10_000, "{with_digits} of {}", lines.len());
}

#[test]
fn digits_never_change_the_masked_line_on_made_up_lines() {
    // Pieces that steer the rules: digit counts at their bounds (IPv4 octets of 3 and 4
    // digits, ports of 5 and 6, 8+ hex runs, 16-byte secret runs, 36-byte UUIDs), vendor
    // prefixes (one with a version digit), schemes, e-mails, quotes, units after numbers.
    const PIECES: &[&str] = &[
        "10.0.0.1",
        "10.0.0.1:8080",
        "1.2.3.4/24",
        "1234.5.6.7",
        "host:80",
        "host:123456",
        "db-1.internal:5432",
        "[2001:db8::1]:443,",
        "fe80::1",
        "00:1a:2b:3c:4d:5e",
        "123e4567-e89b-12d3-a456-426614174000",
        "deadbeef12",
        "abcdef1234567890abcdef",
        "dop_v1_0123456789abcdef0123",
        "dop_v9_",
        "sk_live_abc123def456",
        "AKIA1234567890ABCDEF",
        "eyJ0eXAi.eyJzdWIi0.sig1",
        "https://u:p4ss@h0st.example.com/a/12/b?x=1&y=22#f3",
        "user1@example.com",
        "email:a1@b2.io",
        "password=s3cret",
        "token: 12ab",
        "Bearer 1a2b3c",
        "id=42",
        "k=v1,k2=\"7 8\"",
        "\"quoted 12 value\"",
        "'x9'",
        "{\"n\":1,\"api_key\":\"9z\"}",
        "12ms",
        "12",
        "ms",
        "1.5",
        "KB",
        "(1.2",
        "KB)",
        "a,b,1,",
        "2,",
        "3",
        "blk_-1608999687919862906",
        "t761",
        "java.lang.Thread12",
        "0x1F",
        "v1.2.3",
        "2024-01-02T03:04:05.678Z",
        "12:30:45",
        "Jun",
        "Mon",
        "x",
        "GET",
        "/api/v1/orders/12345",
        "200",
        "core.12.",
        "éé1",
        "a=1;b=22;c=333",
        "[12]",
        "rows=4031",
        "0.42+0.42+0.42+0.42+0.42",
        "ABCDEFGHIJ0123456789+/==",
    ];
    let mut rng = StdRng::seed_from_u64(42);
    let mut lines = Vec::new();
    for _ in 0..20_000 {
        let n = rng.random_range(1..9);
        let mut line = String::new();
        for i in 0..n {
            if i > 0 {
                line.push(if rng.random_bool(0.9) { ' ' } else { '\t' });
            }
            let a = PIECES[rng.random_range(0..PIECES.len())];
            line.push_str(a);
            if rng.random_bool(0.2) {
                // Glued pieces: `key=10.0.0.1`, `x12ms`.
                line.push_str(["=", ":", "", "/", ","][rng.random_range(0..5)]);
                line.push_str(PIECES[rng.random_range(0..PIECES.len())]);
            }
        }
        lines.push(line);
    }
    let with_digits = check(&lines, &mut rng);
    assert!(with_digits > 15_000, "{with_digits}");
}
