//! The structure rule: which words of a masked template, span name, metric name or unit and
//! attribute key may be stored.
//!
//! Masking ([`crate::mask`]) removes what has the shape of data (numbers, ids, addresses,
//! e-mails, keys, quoted and key=value values). What is left are words. A word (a run of
//! letters, split at camelCase boundaries: `NameSystem` is `name` + `system`) is kept only
//! when it is structure:
//!
//! - every piece is in the vocabulary shipped in the crate (`vocabulary.txt`: words used by
//!   at least four of the Rust crates in the build's registry, plus operations words such
//!   as `sshd`, `kafka`; personal names are excluded), or has at most two letters; or
//! - (templates only) the template has matched at least [`PROVEN_LINES`] lines of which at
//!   least [`PROVEN_VARIANTS`] differ, the word stayed the same in all of them, and it is not
//!   name-like: not a bare word, not a value or path segment (after `=`, `:`, `/`, `@` or
//!   a quote), but a piece of an identifier glued to another by `_`, `.`, `-` or `(`
//!   (`pam_unix(...)`).
//!
//! Every other word is written as `<*>`. So a user name in an auth template
//! (`Accepted password for fztu from <*>`), a person's name, a diagnosis or a passphrase in
//! free text is not stored, however often it repeats.

use std::sync::OnceLock;

use rustc_hash::FxHashSet;

use crate::mask::WILDCARD;

/// Lines a template must have matched before unknown identifier pieces may be kept.
pub const PROVEN_LINES: u64 = 64;
/// Distinct lines among them (up to this many are counted).
pub const PROVEN_VARIANTS: usize = 16;

const VOCABULARY: &str = include_str!("vocabulary.txt");

fn vocabulary() -> &'static FxHashSet<&'static str> {
    static SET: OnceLock<FxHashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| VOCABULARY.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether a lower-case word is in the vocabulary (also with a plural or verb ending off).
pub fn is_known_word(lower: &str) -> bool {
    if lower.len() <= 2 {
        return true;
    }
    let v = vocabulary();
    if v.contains(lower) {
        return true;
    }
    ["s", "es", "ed", "d", "ing", "er", "ers", "ly"]
        .iter()
        .any(|suffix| {
            lower
                .strip_suffix(suffix)
                .is_some_and(|stem| stem.len() >= 3 && v.contains(stem))
        })
}

/// Whether every camelCase piece of an ASCII letter run is a known word.
fn run_is_known(run: &[u8]) -> bool {
    if !run.iter().all(u8::is_ascii_alphabetic) {
        // Letters of other scripts: no vocabulary for them, never structure by themselves.
        return false;
    }
    let mut lower = [0u8; 64];
    let mut start = 0;
    for i in 1..=run.len() {
        let boundary = i == run.len()
            || (run[i].is_ascii_uppercase() && run[i - 1].is_ascii_lowercase())
            || (i + 1 < run.len()
                && run[i].is_ascii_uppercase()
                && run[i - 1].is_ascii_uppercase()
                && run[i + 1].is_ascii_lowercase());
        if !boundary {
            continue;
        }
        let piece = &run[start..i];
        if piece.len() > lower.len() {
            return false;
        }
        for (d, s) in lower.iter_mut().zip(piece) {
            *d = s.to_ascii_lowercase();
        }
        match std::str::from_utf8(&lower[..piece.len()]) {
            Ok(w) if is_known_word(w) => {}
            _ => return false,
        }
        start = i;
    }
    true
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphabetic() || b >= 0x80
}

/// Writes one masked token with every word that is not structure replaced by `<*>`.
/// `proven`: the template passed the frequency test, so unknown identifier pieces stay.
pub fn redact_token_into(token: &str, proven: bool, out: &mut String) {
    let b = token.as_bytes();
    let runs = b
        .iter()
        .enumerate()
        .filter(|&(i, &c)| is_word_byte(c) && (i == 0 || !is_word_byte(b[i - 1])))
        .count();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !is_word_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_word_byte(b[i]) {
            i += 1;
        }
        let run = &b[start..i];
        // A piece of an identifier is glued to another piece by `_`, `.`, `-` or `(`;
        // after `=`, `:`, `/` or `@` it is a value or a path segment.
        let before = start.checked_sub(1).map(|p| b[p]);
        let after = b.get(i).copied();
        let glued = matches!(before, Some(b'_' | b'.' | b'-' | b'('))
            || matches!(after, Some(b'_' | b'.' | b'-' | b'('));
        let value = matches!(before, Some(b'=' | b':' | b'/' | b'@' | b'"' | b'\''));
        let keep = run_is_known(run) || (proven && runs > 1 && glued && !value);
        if !keep {
            out.push_str(&token[copied..start]);
            out.push_str(WILDCARD);
            copied = i;
        }
    }
    out.push_str(&token[copied..]);
}

/// A masked text (tokens separated by single spaces) with the structure rule applied.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, t) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        redact_token_into(t, false, &mut out);
    }
    out
}

/// A metric name, metric unit or attribute key as it may be stored: e-mails, credential
/// prefixes and any alphanumeric piece holding a digit become `<*>` (`pref_12345` ->
/// `pref_<*>`), then the structure rule applies to the words. The unit `1` stays.
pub fn redact_name(name: &str) -> String {
    if name == "1" {
        return name.to_string();
    }
    let emails_gone;
    let name = match crate::mask::without_emails(name) {
        Some(s) => {
            emails_gone = s;
            emails_gone.as_str()
        }
        None => name,
    };
    let b = name.as_bytes();
    let mut masked = String::with_capacity(name.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
            i += 1;
        }
        let piece = &b[start..i];
        if crate::shapes::has_secret_prefix(piece) {
            masked.push_str(&name[copied..start]);
            masked.push_str(WILDCARD);
            copied = i;
            continue;
        }
        // Within the piece, alphanumeric runs with a digit go.
        let mut j = start;
        while j < i {
            if !b[j].is_ascii_alphanumeric() {
                j += 1;
                continue;
            }
            let s = j;
            while j < i && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if b[s..j].iter().any(u8::is_ascii_digit) {
                masked.push_str(&name[copied..s]);
                masked.push_str(WILDCARD);
                copied = j;
            }
        }
    }
    masked.push_str(&name[copied..]);
    let mut out = String::with_capacity(masked.len());
    redact_token_into(&masked, false, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, proven: bool) -> String {
        let mut s = String::new();
        redact_token_into(t, proven, &mut s);
        s
    }

    #[test]
    fn known_words_and_identifiers_stay() {
        assert_eq!(
            redact_text("session opened for user <*>"),
            "session opened for user <*>"
        );
        assert_eq!(
            redact_text("NameSystem.allocateBlock: <*>"),
            "NameSystem.allocateBlock: <*>"
        );
        assert_eq!(
            redact_text("Connection refused (<*>)"),
            "Connection refused (<*>)"
        );
        assert_eq!(r("pam_unix(sshd:auth):", false), "pam_unix(sshd:auth):");
    }

    #[test]
    fn names_and_free_text_go() {
        assert_eq!(
            redact_text("Accepted password for fztu from <*>"),
            "Accepted password for <*> from <*>"
        );
        assert_eq!(
            redact_text(
                "patient Jane Doe diagnosed with hypertension passphrase correcthorsebatterystaple"
            ),
            "<*> <*> <*> diagnosed with <*> <*> <*>"
        );
        assert_eq!(r("user=fztu", true), "user=<*>");
        // Proven templates keep unknown identifier pieces, never bare words or values.
        assert_eq!(r("zorblax_zqkv(zqxw)", true), "zorblax_zqkv(zqxw)");
        assert_eq!(r("zorblax_zqkv(zqxw)", false), "<*>_<*>(<*>)");
        assert_eq!(r("zorblax_zqkv:zqxw", true), "zorblax_zqkv:<*>");
        assert_eq!(r("fztu", true), "<*>");
        assert_eq!(
            r("/services/zqkvxw?token=<*>", true),
            "/services/<*>?token=<*>"
        );
        assert_eq!(r("José", false), "<*>");
    }

    #[test]
    fn names_keys_and_units() {
        assert_eq!(
            redact_name("http.server.request.duration"),
            "http.server.request.duration"
        );
        assert_eq!(redact_name("pref_12345"), "pref_<*>");
        assert_eq!(redact_name("visits:alice@corp.com"), "visits:<*>");
        assert_eq!(redact_name("email:alice@corp.com"), "email:<*>");
        assert_eq!(redact_name("AKIAIOSFODNN7EXAMPLE"), "<*>");
        assert_eq!(redact_name("customer_janedoe_score"), "customer_<*>_score");
        assert_eq!(redact_name("ms"), "ms");
        assert_eq!(redact_name("1"), "1");
        assert_eq!(redact_name("{request}"), "{request}");
    }
}
