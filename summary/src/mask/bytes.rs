//! Byte classes (one table lookup per byte) and the byte-level tests the masking rules
//! use: wrappers, delimiters, URL schemes, base64 runs, `host:port`, e-mails.

use super::WILDCARD;
use crate::shapes::{email_span, is_dotted_name};

/// Byte classes, one table lookup per byte ([`CLASS`]).
pub(super) const C_ALPHA: u8 = 1;
pub(super) const C_DIGIT: u8 = 2;
/// Cuts a token into segments for generic masking.
pub(super) const C_DELIM: u8 = 4;
/// `"` or `'`.
pub(super) const C_QUOTE: u8 = 8;
/// `+ / = _ -`: with letters and digits, the bytes of a base64 run.
pub(super) const C_B64: u8 = 16;
pub(super) const C_LEAD: u8 = 32;
pub(super) const C_TRAIL: u8 = 64;

pub(super) const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c.is_ascii_alphabetic() {
            k |= C_ALPHA;
        }
        if c.is_ascii_digit() {
            k |= C_DIGIT;
        }
        if matches!(
            c,
            b'/' | b','
                | b';'
                | b':'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'<'
                | b'>'
                | b'"'
                | b'\''
                | b'|'
                | b'#'
                | b'&'
                | b'='
                | b'@'
                | b'+'
                | b'\\'
                | b'`'
        ) {
            k |= C_DELIM;
        }
        if c == b'"' || c == b'\'' {
            k |= C_QUOTE;
        }
        if matches!(c, b'+' | b'/' | b'=' | b'_' | b'-') {
            k |= C_B64;
        }
        if matches!(c, b'(' | b'[' | b'{' | b'<' | b'"' | b'\'' | b'`') {
            k |= C_LEAD;
        }
        if matches!(
            c,
            b')' | b']'
                | b'}'
                | b'>'
                | b'"'
                | b'\''
                | b'`'
                | b','
                | b';'
                | b'.'
                | b':'
                | b'!'
                | b'?'
        ) {
            k |= C_TRAIL;
        }
        t[b] = k;
        b += 1;
    }
    t
};

/// The classes of every byte of `b`, or-ed.
#[inline]
pub(super) fn classes(b: &[u8]) -> u8 {
    b.iter().fold(0, |k, &c| k | CLASS[c as usize])
}

/// Bytes that cut a token into segments for generic masking.
#[inline]
pub(crate) fn is_segment_delimiter(b: u8) -> bool {
    CLASS[b as usize] & C_DELIM != 0
}

#[inline]
pub(super) fn is_leading_wrapper(b: u8) -> bool {
    CLASS[b as usize] & C_LEAD != 0
}

#[inline]
pub(super) fn is_trailing_wrapper(b: u8) -> bool {
    CLASS[b as usize] & C_TRAIL != 0
}

/// The core of a token lies between these: wrapping punctuation is outside.
#[inline]
pub(super) fn wrapper_bounds(b: &[u8]) -> (usize, usize) {
    let mut lead = 0;
    while lead < b.len() && is_leading_wrapper(b[lead]) {
        lead += 1;
    }
    let mut trail = b.len();
    while trail > lead && is_trailing_wrapper(b[trail - 1]) {
        trail -= 1;
    }
    (lead, trail)
}

/// Offset of the first `://`.
#[inline]
pub(super) fn find_scheme_end(b: &[u8]) -> Option<usize> {
    (0..b.len().saturating_sub(2)).find(|&i| b[i] == b':' && b[i + 1] == b'/' && b[i + 2] == b'/')
}

#[inline]
pub(super) fn is_base64(b: u8) -> bool {
    CLASS[b as usize] & (C_ALPHA | C_DIGIT | C_B64) != 0
}

/// Whether a base64 run starts at `i` (the previous byte is not part of one).
#[inline]
pub(super) fn is_secret_run_start(b: &[u8], i: usize) -> bool {
    CLASS[b[i] as usize] & (C_ALPHA | C_DIGIT) != 0 && (i == 0 || !is_base64(b[i - 1]))
}

/// End of the base64 run starting at `i`, and whether it holds a digit.
pub(super) fn secret_run_end(b: &[u8], i: usize) -> (usize, bool) {
    let mut e = i;
    let mut digit = false;
    while e < b.len() && is_base64(b[e]) {
        digit |= b[e].is_ascii_digit();
        e += 1;
    }
    (e, digit)
}

/// `host:port` where the host is a name (`db-primary:5432`, `localhost:8080`).
pub(super) fn is_host_port(b: &[u8]) -> bool {
    let Some(c) = b.iter().rposition(|&x| x == b':') else {
        return false;
    };
    let (host, port) = (&b[..c], &b[c + 1..]);
    !port.is_empty()
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && !host.is_empty()
        && host
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'-' | b'_'))
        && (is_dotted_name(host) || host == b"localhost" || host.iter().any(u8::is_ascii_digit))
}

/// `core` with every e-mail-like `local@domain` replaced by `<*>`; `None` when it has none.
pub(crate) fn without_emails(core: &str) -> Option<String> {
    let b = core.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'@' {
            if let Some((a, e)) = email_span(b, i).filter(|&(a, _)| a >= copied) {
                let o = out.get_or_insert_with(|| String::with_capacity(core.len()));
                o.push_str(&core[copied..a]);
                o.push_str(WILDCARD);
                copied = e;
                i = e;
                continue;
            }
        }
        i += 1;
    }
    let mut o = out?;
    o.push_str(&core[copied..]);
    Some(o)
}
