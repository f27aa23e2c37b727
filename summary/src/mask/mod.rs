//! Masking of variable and sensitive tokens before template mining.
//!
//! A line is split on whitespace into tokens; each token is rewritten into one reusable
//! buffer with its variable parts replaced by [`WILDCARD`] (`<*>`):
//!
//! - whole tokens: UUIDs, IPv4 (with `:port` or `/prefix`), IPv6 (also `[..]:port`), MAC
//!   addresses, e-mail addresses (and any `user@host`), JWTs;
//! - URLs keep scheme, host and path words; digits in host or path and every query value are
//!   masked (`https://h/a?x=<*>&y=<*>`);
//! - `key=value`: the value of a secret-looking key (`password`, `token`, `secret`, `api_key`,
//!   `auth...`, `cookie`, ...) is masked whatever it holds; other values are masked like tokens;
//! - `password: x`, `token= x`, `Bearer x`: the token after a secret key is masked whole;
//! - everything else is cut into segments at punctuation (`/ , ; : ( ) [ ] { } < > " ' | # &
//!   = @ +`); a segment holding a digit (numbers, hex ids, `blk_-42`, `t761`) or made of 12 or
//!   more hex letters is masked.
//!
//! The output never holds a digit of the input, so numbers such as card numbers or phone
//! numbers cannot survive; words without digits do (a password written as plain prose after
//! no key cannot be told from a word).
//!
//! Nothing here allocates per token: [`MaskedLine`] keeps one `String` and one `Vec` that are
//! reused line after line.
//!
//! By concern: `token` (the rules that mask one token), `bytes` (byte classes and the
//! byte-level tests the rules use), `cache` (the token and line caches of a
//! [`MaskedLine`]); here the masked line, token hashes and the line loop (tokens, quotes
//! over several tokens, lists).

mod bytes;
mod cache;
mod token;

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::shapes::{has_secret_prefix, is_date_word, is_unit};

use bytes::{classes, wrapper_bounds, C_ALPHA, C_DIGIT, C_QUOTE};
pub(crate) use bytes::{is_segment_delimiter, without_emails};
use cache::{shape_of_line, LineCache, TokenCache, CACHED_LINE, CACHED_RAW};

/// The text a masked part is replaced by.
pub const WILDCARD: &str = "<*>";

/// Longer whitespace-free tokens are masked whole, which bounds a template's text.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Hash value reserved for a token that is entirely a wildcard.
pub const WILDCARD_HASH: u64 = 0;

/// One token of a masked line: a range of [`MaskedLine::text`] and the hash of that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedToken {
    start: u32,
    end: u32,
    /// Hash of the masked text; [`WILDCARD_HASH`] when the token is exactly `<*>`.
    pub hash: u64,
    /// Whether the token holds a letter outside masks (a word, not just `<*>` and
    /// punctuation); only such tokens are evidence that two lines share a template.
    pub informative: bool,
}

impl MaskedToken {
    /// Whether the whole token was masked.
    pub fn is_wildcard(&self) -> bool {
        self.hash == WILDCARD_HASH
    }
}

/// A line after masking: the masked tokens, kept in one reusable buffer.
#[derive(Debug, Default, Clone)]
pub struct MaskedLine {
    buf: String,
    tokens: Vec<MaskedToken>,
    cache: TokenCache,
    lines: LineCache,
    /// The shape of the line being masked (the line cache's key), reused.
    shape: Vec<u8>,
}

impl MaskedLine {
    /// An empty line with room for typical log lines.
    pub fn new() -> Self {
        MaskedLine {
            buf: String::with_capacity(512),
            tokens: Vec::with_capacity(64),
            cache: TokenCache::default(),
            lines: LineCache::default(),
            shape: Vec::with_capacity(cache::CACHED_LINE),
        }
    }

    /// The masked tokens in order.
    pub fn tokens(&self) -> &[MaskedToken] {
        &self.tokens
    }

    /// The text of one token.
    pub fn text(&self, t: &MaskedToken) -> &str {
        &self.buf[t.start as usize..t.end as usize]
    }

    /// The masked line with tokens joined by one space.
    pub fn joined(&self) -> String {
        let mut s = String::with_capacity(self.buf.len() + self.tokens.len());
        self.write_joined(&mut s);
        s
    }

    /// Writes the masked line, tokens joined by one space, into `out` (cleared first).
    pub fn write_joined(&self, out: &mut String) {
        out.clear();
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.text(t));
        }
    }
}

/// Hashes token text; never returns [`WILDCARD_HASH`] for anything but `<*>`.
#[inline]
pub fn token_hash(text: &str) -> u64 {
    if is_wildcard(text.as_bytes()) {
        return WILDCARD_HASH;
    }
    let mut h = FxHasher::default();
    h.write(text.as_bytes());
    // FxHasher leaves low bits weak for short input; fold the high half in.
    let v = h.finish();
    let v = v ^ (v >> 29);
    if v == WILDCARD_HASH {
        1
    } else {
        v
    }
}

#[inline]
fn is_wildcard(b: &[u8]) -> bool {
    b.len() == 3 && b[0] == b'<' && b[1] == b'*' && b[2] == b'>'
}

/// Whether masked text holds a letter outside masks, and whether it holds a `<*>`.
#[inline]
fn word_and_mask(b: &[u8]) -> (bool, bool) {
    let mut word = false;
    let mut mask = false;
    for (i, &c) in b.iter().enumerate() {
        word |= c.is_ascii_alphabetic();
        mask |= c == b'>' && i >= 2 && b[i - 1] == b'*' && b[i - 2] == b'<';
    }
    (word, mask)
}

/// Whether masked text holds a letter that is not part of a `<*>`.
#[inline]
fn has_word_char(text: &str) -> bool {
    // Masks are the only place '<', '*' and '>' come in threes, and they hold no letter,
    // so any letter is a letter of the input.
    text.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Masks lines. Stateless apart from its settings; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Whether comma-separated lists of values are joined into one token.
    lists: bool,
}

impl Masker {
    /// A masker with the built-in rules.
    pub fn new() -> Self {
        Masker { lists: true }
    }

    /// Masks `line` into `out` (cleared first). A line of the same shape (the same bytes
    /// but for the values of its digits) that `out` masked recently is copied from its
    /// line cache (same output, see [`LineCache`]).
    pub fn mask_into(&self, line: &str, out: &mut MaskedLine) {
        if line.len() > CACHED_LINE {
            return self.mask_uncached(line, out);
        }
        let mut shape = std::mem::take(&mut out.shape);
        shape_of_line(line, &mut shape);
        let slot = LineCache::slot(&shape);
        out.buf.clear();
        out.tokens.clear();
        if !out
            .lines
            .get_into(slot, &shape, self.lists, &mut out.buf, &mut out.tokens)
        {
            self.mask_uncached(line, out);
            out.lines
                .put(slot, &shape, self.lists, &out.buf, &out.tokens);
        }
        out.shape = shape;
    }

    /// Masks `line` into `out` (cleared first), running every rule.
    fn mask_uncached(&self, line: &str, out: &mut MaskedLine) {
        out.buf.clear();
        out.tokens.clear();
        let mut mask_next = false;
        let mut after_number = false;
        let mut it = line.split_ascii_whitespace();
        while let Some(raw) = it.next() {
            let start = out.buf.len();
            let rb = raw.as_bytes();
            let class = classes(rb);
            // What the branch taken knows of its output: (informative, holds a mask).
            let mut known: Option<(bool, bool)> = None;
            if mask_next {
                // "Authorization: Bearer <token>": the scheme word stays, the token goes.
                let scheme =
                    raw.eq_ignore_ascii_case("bearer") || raw.eq_ignore_ascii_case("basic");
                if scheme {
                    out.buf.push_str(raw);
                } else {
                    // Keep the quotes and commas around the secret, not the secret.
                    let (lead, trail) = wrapper_bounds(raw.as_bytes());
                    out.buf.push_str(&raw[..lead]);
                    out.buf.push_str(WILDCARD);
                    out.buf.push_str(&raw[trail..]);
                    mask_next = false;
                }
            } else if raw.len() <= MAX_TOKEN_BYTES && class == C_ALPHA {
                // A plain word, the common case: one pass decides.
                let b = rb;
                let all_hex = b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit);
                let variable = all_hex
                    || (after_number && is_unit(b))
                    || is_date_word(b)
                    || has_secret_prefix(b);
                out.buf.push_str(if variable { WILDCARD } else { raw });
                mask_next = !variable
                    && (raw.eq_ignore_ascii_case("bearer") || raw.eq_ignore_ascii_case("basic"));
                known = Some((!variable, variable));
            } else if raw.len() <= MAX_TOKEN_BYTES
                && class & (C_ALPHA | C_DIGIT | C_QUOTE) == C_DIGIT
                && rb[0] != b'['
            {
                // No letter, a digit, no quote (numbers, addresses, times, `[12]`, `1.5,`):
                // whatever its shape, the core between the wrapping punctuation is one
                // variable (what `mask_token` makes of it, in one pass).
                let (lead, trail) = wrapper_bounds(rb);
                out.buf.push_str(&raw[..lead]);
                out.buf.push_str(WILDCARD);
                out.buf.push_str(&raw[trail..]);
                known = Some((false, true));
            } else if let Some((q, last)) = (class & C_QUOTE != 0)
                .then(|| open_quote(raw, &mut it))
                .flatten()
            {
                // A quoted string over several tokens ('Jane Doe', "View Lock"): one value.
                let quote = raw.as_bytes()[q];
                self.mask_generic(&raw[..q], &mut out.buf);
                out.buf.push(quote as char);
                out.buf.push_str(WILDCARD);
                out.buf.push(quote as char);
                let close = last.bytes().position(|x| x == quote).unwrap_or(last.len());
                let rest = last.get(close + 1..).unwrap_or("");
                self.mask_generic(rest, &mut out.buf);
            } else if after_number && is_unit(rb) {
                out.buf.push_str(WILDCARD);
                known = Some((false, true));
            } else {
                let (lead, trail) = if after_number {
                    wrapper_bounds(raw.as_bytes())
                } else {
                    (0, 0)
                };
                if after_number && trail > lead && is_unit(&raw.as_bytes()[lead..trail]) {
                    // "(1.2 KB)": the unit follows the magnitude.
                    out.buf.push_str(&raw[..lead]);
                    out.buf.push_str(WILDCARD);
                    out.buf.push_str(&raw[trail..]);
                } else {
                    let cacheable =
                        rb.len() <= CACHED_RAW && class & (C_ALPHA | C_DIGIT | C_QUOTE) == C_ALPHA;
                    if cacheable {
                        let slot = TokenCache::slot(rb);
                        let hit = out.cache.get(slot, rb).and_then(|(masked, announces)| {
                            Some((std::str::from_utf8(masked).ok()?, announces))
                        });
                        match hit {
                            Some((masked, announces)) => {
                                out.buf.push_str(masked);
                                mask_next = announces;
                            }
                            None => {
                                mask_next = self.mask_token(raw, &mut out.buf);
                                let produced = &out.buf.as_bytes()[start..];
                                out.cache.put(slot, rb, produced, mask_next);
                            }
                        }
                    } else {
                        mask_next = self.mask_token(raw, &mut out.buf);
                    }
                }
            }
            let end = out.buf.len();
            let (informative, masked) =
                known.unwrap_or_else(|| word_and_mask(&out.buf.as_bytes()[start..end]));
            after_number = !informative && masked;
            if after_number && self.lists && join_list(out, start) {
                continue;
            }
            let text = &out.buf[start..end];
            let hash = token_hash(text);
            out.tokens.push(MaskedToken {
                start: start as u32,
                end: end as u32,
                hash,
                informative,
            });
        }
    }
}

/// Whether masked text holds a `<*>`.
#[inline]
fn has_mask(b: &[u8]) -> bool {
    (2..b.len()).any(|i| b[i - 2] == b'<' && b[i - 1] == b'*' && b[i] == b'>')
}

/// Joins the value just written at `start` to the previous token when that is a value
/// ending in `,` (`<*>,` `<*>,` `<*>` is one list, whatever its length); returns whether it
/// did.
fn join_list(out: &mut MaskedLine, start: usize) -> bool {
    let Some(prev) = out.tokens.last().copied() else {
        return false;
    };
    let (ps, pe) = (prev.start as usize, prev.end as usize);
    let pt = &out.buf[ps..pe];
    let bare_run = pt == WILDCARD && &out.buf[start..] == WILDCARD;
    if bare_run {
        // `<*> <*> <*>`: ids or numbers separated by spaces, one value.
        out.buf.truncate(pe);
        return true;
    }
    if prev.informative || !pt.ends_with(',') || !has_mask(pt.as_bytes()) {
        return false;
    }
    let cur = &out.buf[start..];
    let prefix_len = pt.find('<').unwrap_or(0);
    let suffix = cur.rfind('>').map_or("", |i| &cur[i + 1..]).to_string();
    out.buf.truncate(ps + prefix_len);
    out.buf.push_str(WILDCARD);
    out.buf.push_str(&suffix);
    let end = out.buf.len();
    if let Some(last) = out.tokens.last_mut() {
        last.end = end as u32;
        last.hash = token_hash(&out.buf[ps..end]);
    }
    true
}

/// An HTTP request line (`"GET /x HTTP/1.1"`) is structure, not a quoted value.
fn is_http_method(w: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"PATCH", b"OPTIONS", b"CONNECT", b"TRACE",
    ];
    METHODS.contains(&w)
}

/// If `t` opens a quote (after `key=`, `key:` or an opening bracket) that a later token
/// closes (within 32 tokens): the quote's offset in `t` and the closing token, with `rest`
/// advanced past it.
fn open_quote<'a>(
    t: &str,
    rest: &mut std::str::SplitAsciiWhitespace<'a>,
) -> Option<(usize, &'a str)> {
    let t = t.as_bytes();
    let q = t.iter().position(|&c| c == b'"' || c == b'\'')?;
    let quote = t[q];
    let prefix_ok = t[..q].iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(c, b'_' | b'-' | b'.' | b'=' | b':' | b'(' | b'[' | b'{')
    }) && (q == 0 || matches!(t[q - 1], b'=' | b':' | b'(' | b'[' | b'{'));
    if !prefix_ok || t[q + 1..].contains(&quote) || is_http_method(&t[q + 1..]) {
        return None;
    }
    let mut ahead = rest.clone();
    for n in 0..32 {
        let u = ahead.next()?;
        let b = u.as_bytes();
        if let Some(p) = b.iter().position(|&x| x == quote) {
            // "don't" inside the quote is not its end: the closing quote ends a word.
            let closes = b[p + 1..]
                .iter()
                .all(|&x| !x.is_ascii_alphanumeric() || b[..p].is_empty());
            if closes {
                for _ in 0..=n {
                    rest.next();
                }
                return Some((q, u));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
