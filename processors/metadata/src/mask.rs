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

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::shapes::{
    email_span, has_secret_prefix, is_date_word, is_dotted_name, is_email_like, is_ipv4,
    is_ipv6_or_mac, is_jwt, is_secret_key, is_unit, is_uuid, segment_is_variable, Shape,
};

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
}

/// Lines longer than this are never held by the [`LineCache`].
const CACHED_LINE: usize = 256;
/// Masked text and tokens of a cached line are bounded too (a line of one-digit tokens
/// masks to three bytes per digit).
const CACHED_LINE_OUT: usize = 512;
const CACHED_LINE_TOKENS: usize = 64;
/// Entries of the line cache (a power of two).
const LINE_SLOTS: usize = 512;

/// One line the [`LineCache`] holds, with its masked form.
#[derive(Clone, Default)]
struct LineEntry {
    /// The settings the line was masked with ([`Masker`]'s `lists`).
    lists: bool,
    raw: String,
    buf: String,
    tokens: Vec<MaskedToken>,
}

/// What [`Masker`] made of recent whole lines. Logs repeat exact lines (health checks,
/// retries, the same message from many threads): on the Loghub samples about four lines in
/// ten are an exact repeat of one of the previous few hundred. Masking is a pure function
/// of the line and the masker's settings, so a repeated line takes its masked form from
/// here instead of running the rules again; the output is identical.
/// Direct-mapped, bounded (`LINE_SLOTS` lines of at most `CACHED_LINE` bytes, masked text
/// of at most `CACHED_LINE_OUT` bytes and `CACHED_LINE_TOKENS` tokens: at most about
/// 1.3 MiB, typically under 300 KiB, allocated on first use), in memory only.
#[derive(Clone, Default)]
struct LineCache {
    entries: Vec<LineEntry>,
}

impl std::fmt::Debug for LineCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LineCache({} slots)", self.entries.len())
    }
}

impl LineCache {
    #[inline]
    fn slot(line: &str) -> usize {
        slot_of(line.as_bytes(), LINE_SLOTS)
    }

    /// Copies the cached masked form of `line` into `buf` and `tokens`; false on a miss.
    #[inline]
    fn get_into(
        &self,
        slot: usize,
        line: &str,
        lists: bool,
        buf: &mut String,
        tokens: &mut Vec<MaskedToken>,
    ) -> bool {
        match self.entries.get(slot) {
            Some(e) if e.lists == lists && e.raw == line => {
                buf.push_str(&e.buf);
                tokens.extend_from_slice(&e.tokens);
                true
            }
            _ => false,
        }
    }

    fn put(&mut self, slot: usize, line: &str, lists: bool, buf: &str, tokens: &[MaskedToken]) {
        if buf.len() > CACHED_LINE_OUT || tokens.len() > CACHED_LINE_TOKENS {
            return;
        }
        if self.entries.is_empty() {
            self.entries = vec![LineEntry::default(); LINE_SLOTS];
        }
        let e = &mut self.entries[slot];
        e.lists = lists;
        e.raw.clear();
        e.raw.push_str(line);
        e.buf.clear();
        e.buf.push_str(buf);
        e.tokens.clear();
        e.tokens.extend_from_slice(tokens);
    }
}

/// Raw bytes of a token the cache may hold.
const CACHED_RAW: usize = 32;
/// Bytes of its masked form.
const CACHED_OUT: usize = 48;
/// Entries of the cache (a power of two).
const CACHE_SLOTS: usize = 1024;

#[derive(Clone, Copy)]
struct CacheEntry {
    raw_len: u8,
    out_len: u8,
    announces: bool,
    raw: [u8; CACHED_RAW],
    out: [u8; CACHED_OUT],
}

/// The slot of `bytes` in a direct-mapped cache of `slots` entries (a power of two).
#[inline]
fn slot_of(bytes: &[u8], slots: usize) -> usize {
    let mut h = FxHasher::default();
    h.write(bytes);
    let v = h.finish();
    // FxHasher leaves low bits weak for short input: fold the high bits in.
    ((v ^ (v >> 29) ^ (v >> 47)) as usize) & (slots - 1)
}

/// What [`Masker`] made of recent tokens that hold letters and no digit or quote
/// (`pam_unix(sshd:auth):`, `org.apache.Foo:`, `user=root`): such tokens are mostly
/// structure and repeat line after line, so the rules run once per distinct token.
/// Direct-mapped and bounded (`CACHE_SLOTS` entries of at most `CACHED_RAW` bytes, about
/// 80 KiB, allocated on first use); it lives in memory only, beside the line being masked.
/// Tokens holding a digit (ids, numbers) are never cached.
#[derive(Clone, Default)]
struct TokenCache {
    entries: Vec<CacheEntry>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({} slots)", self.entries.len())
    }
}

impl TokenCache {
    #[inline]
    fn slot(raw: &[u8]) -> usize {
        slot_of(raw, CACHE_SLOTS)
    }

    /// The masked form of `raw` and whether it announces a secret, if cached.
    #[inline]
    fn get(&self, slot: usize, raw: &[u8]) -> Option<(&[u8], bool)> {
        let e = self.entries.get(slot)?;
        (e.raw_len as usize == raw.len() && &e.raw[..raw.len()] == raw)
            .then(|| (&e.out[..e.out_len as usize], e.announces))
    }

    fn put(&mut self, slot: usize, raw: &[u8], out: &[u8], announces: bool) {
        if raw.len() > CACHED_RAW || out.len() > CACHED_OUT {
            return;
        }
        if self.entries.is_empty() {
            self.entries = vec![
                CacheEntry {
                    raw_len: u8::MAX,
                    out_len: 0,
                    announces: false,
                    raw: [0; CACHED_RAW],
                    out: [0; CACHED_OUT],
                };
                CACHE_SLOTS
            ];
        }
        let e = &mut self.entries[slot];
        e.raw_len = raw.len() as u8;
        e.raw[..raw.len()].copy_from_slice(raw);
        e.out_len = out.len() as u8;
        e.out[..out.len()].copy_from_slice(out);
        e.announces = announces;
    }
}

impl MaskedLine {
    /// An empty line with room for typical log lines.
    pub fn new() -> Self {
        MaskedLine {
            buf: String::with_capacity(512),
            tokens: Vec::with_capacity(64),
            cache: TokenCache::default(),
            lines: LineCache::default(),
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

/// Byte classes, one table lookup per byte ([`CLASS`]).
const C_ALPHA: u8 = 1;
const C_DIGIT: u8 = 2;
/// Cuts a token into segments for generic masking.
const C_DELIM: u8 = 4;
/// `"` or `'`.
const C_QUOTE: u8 = 8;
/// `+ / = _ -`: with letters and digits, the bytes of a base64 run.
const C_B64: u8 = 16;
const C_LEAD: u8 = 32;
const C_TRAIL: u8 = 64;

const CLASS: [u8; 256] = {
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
fn classes(b: &[u8]) -> u8 {
    b.iter().fold(0, |k, &c| k | CLASS[c as usize])
}

/// Bytes that cut a token into segments for generic masking.
#[inline]
pub(crate) fn is_segment_delimiter(b: u8) -> bool {
    CLASS[b as usize] & C_DELIM != 0
}

#[inline]
fn is_leading_wrapper(b: u8) -> bool {
    CLASS[b as usize] & C_LEAD != 0
}

#[inline]
fn is_trailing_wrapper(b: u8) -> bool {
    CLASS[b as usize] & C_TRAIL != 0
}

/// The core of a token lies between these: wrapping punctuation is outside.
#[inline]
fn wrapper_bounds(b: &[u8]) -> (usize, usize) {
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

impl Masker {
    /// A masker with the built-in rules.
    pub fn new() -> Self {
        Masker { lists: true }
    }

    /// Masks `line` into `out` (cleared first). A line `out` masked recently is copied
    /// from its line cache (same output, see [`LineCache`]).
    pub fn mask_into(&self, line: &str, out: &mut MaskedLine) {
        if line.len() > CACHED_LINE {
            return self.mask_uncached(line, out);
        }
        let slot = LineCache::slot(line);
        out.buf.clear();
        out.tokens.clear();
        if out
            .lines
            .get_into(slot, line, self.lists, &mut out.buf, &mut out.tokens)
        {
            return;
        }
        self.mask_uncached(line, out);
        out.lines.put(slot, line, self.lists, &out.buf, &out.tokens);
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

    /// Masks one whitespace-free token into `out`. Returns whether the next token is a
    /// secret value (this token is `password:`, `token=`, `Bearer`, ...).
    fn mask_token(&self, raw: &str, out: &mut String) -> bool {
        if raw.len() > MAX_TOKEN_BYTES {
            // A blob (base64, a serialised document): data, and it would bound nothing.
            out.push_str(WILDCARD);
            return false;
        }
        let bytes = raw.as_bytes();
        if bytes.first() == Some(&b'[') {
            // "[2001:db8::1]:443," would lose its bracket to the wrapper stripping below.
            let t = raw.trim_end_matches([',', ';', '.', ')']);
            if is_ipv6_or_mac(t.as_bytes()) {
                out.push_str(WILDCARD);
                out.push_str(&raw[t.len()..]);
                return false;
            }
        }
        let (lead, trail) = wrapper_bounds(bytes);
        let core = &raw[lead..trail];
        let suffix = &raw[trail..];
        out.push_str(&raw[..lead]);
        if core.is_empty() {
            out.push_str(suffix);
            return false;
        }
        // A quoted value ("letters", 'x'); a quoted key ("password":) stays a key.
        if let Some(&q) = raw.as_bytes()[..lead].last() {
            if (q == b'"' || q == b'\'')
                && suffix.as_bytes().first() == Some(&q)
                && suffix.as_bytes().get(1) != Some(&b':')
                && !core.as_bytes().contains(&q)
            {
                out.push_str(WILDCARD);
                out.push_str(suffix);
                return false;
            }
        }
        // A secret key introducing the next token: "password:", "token=", "Bearer".
        let announces_secret = if suffix.contains(':') || core.ends_with('=') {
            is_secret_key(core)
        } else {
            let c = core.as_bytes();
            c.eq_ignore_ascii_case(b"bearer") || c.eq_ignore_ascii_case(b"basic")
        };
        let core_start = out.len();
        self.mask_core(core, out);
        // "<*>,<*>" (a list of addresses), "<*>:<*>:<*>" (a time): one variable, not several,
        // so lists of any length and times of any shape make the same token.
        if out.len() > core_start + WILDCARD.len() && !has_word_char(&out[core_start..]) {
            out.truncate(core_start);
            out.push_str(WILDCARD);
        }
        out.push_str(suffix);
        announces_secret
    }

    /// Masks a token without its wrapping punctuation.
    fn mask_core(&self, core: &str, out: &mut String) {
        self.mask_core_shaped(core, Shape::of(core.as_bytes()), out);
    }

    /// [`Masker::mask_core`] with the shape of `core` known.
    fn mask_core_shaped(&self, core: &str, shape: Shape, out: &mut String) {
        let b = core.as_bytes();
        if shape.digits == 0 && shape.delimiters == 0 {
            // A plain word (the common case).
            let variable = (b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit))
                || (shape.dots > 0 && is_dotted_name(b))
                || is_date_word(b)
                || has_secret_prefix(b);
            out.push_str(if variable { WILDCARD } else { core });
            return;
        }
        if shape.colons > 0 {
            if let Some(scheme_end) = find_scheme_end(b) {
                if scheme_end > 0 && b[..scheme_end].iter().all(u8::is_ascii_alphabetic) {
                    out.push_str(&core[..scheme_end + 3]);
                    self.mask_url_rest(&core[scheme_end + 3..], out);
                    return;
                }
            }
        }
        let whole = (shape.digits > 0 && is_uuid(b))
            || (shape.dots >= 3 && is_ipv4(b))
            || (shape.colons >= 2 && is_ipv6_or_mac(b))
            || (shape.ats > 0 && is_email_like(b))
            || (shape.dots == 2 && is_jwt(b))
            || has_secret_prefix(b)
            || (shape.dots > 0 && is_dotted_name(b))
            || (shape.colons > 0 && shape.digits > 0 && is_host_port(b));
        if whole {
            out.push_str(WILDCARD);
            return;
        }
        if shape.ats > 0 {
            // E-mails inside a token: "email:a@b.com", "mailto:a@b.com", "<a@b.com>,x".
            if let Some(rewritten) = without_emails(core) {
                self.mask_core(&rewritten, out);
                return;
            }
        }
        if shape.quotes > 0 {
            self.mask_quoted(core, out);
            return;
        }
        let first_eq = if shape.eqs > 0 {
            b.iter().position(|&c| c == b'=')
        } else {
            None
        };
        if let Some(eq) = first_eq {
            if eq > 0 {
                let key = &core[..eq];
                self.mask_generic(key, out);
                out.push('=');
                let value = &core[eq + 1..];
                if value.is_empty() {
                    return;
                }
                if is_secret_key(key) {
                    out.push_str(WILDCARD);
                } else {
                    let value_shape = shape.minus(Shape::of(&b[..=eq]));
                    self.mask_value_shaped(value, value_shape, out);
                }
                return;
            }
        }
        self.mask_generic(core, out);
    }

    /// JSON and quoted text inside one token: `{"email":"x","n":1}`. A quoted string
    /// followed by `:` is a key and is kept (masked like any text); any other quoted
    /// string is a value and becomes `"<*>"`; a value after a secret key is masked whole.
    fn mask_quoted(&self, core: &str, out: &mut String) {
        let b = core.as_bytes();
        let mut i = 0;
        let mut plain = 0;
        let mut secret_value = false;
        while i < b.len() {
            let q = b[i];
            let at_value_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if (q == b'"' || q == b'\'') && at_value_start {
                let Some(len) = b[i + 1..].iter().position(|&c| c == q) else {
                    break;
                };
                let close = i + 1 + len;
                self.mask_plain_or_secret(&core[plain..i], secret_value, out);
                let inner = &core[i + 1..close];
                out.push(q as char);
                let is_key = b.get(close + 1) == Some(&b':');
                if is_key {
                    self.mask_generic(inner, out);
                    secret_value = is_secret_key(inner);
                } else if !inner.is_empty() {
                    out.push_str(WILDCARD);
                    secret_value = false;
                }
                out.push(q as char);
                i = close + 1;
                plain = i;
                continue;
            }
            i += 1;
        }
        self.mask_plain_or_secret(&core[plain..], secret_value, out);
    }

    /// Text between quoted strings; after a secret key its value (up to `,` or `}`) goes.
    fn mask_plain_or_secret(&self, s: &str, secret_value: bool, out: &mut String) {
        if !secret_value {
            self.mask_generic(s, out);
            return;
        }
        let end = s.find([',', '}', ']']).unwrap_or(s.len());
        let head = &s[..end];
        let colon = head.find(':').map_or(0, |c| c + 1);
        out.push_str(&head[..colon]);
        if colon < head.len() {
            out.push_str(WILDCARD);
        }
        self.mask_generic(&s[end..], out);
    }

    /// A value after `key=`: may itself be wrapped (`"x"`) or be an address. `shape` is
    /// the shape of `value`.
    fn mask_value_shaped(&self, value: &str, shape: Shape, out: &mut String) {
        let b = value.as_bytes();
        let (lead, trail) = wrapper_bounds(b);
        out.push_str(&value[..lead]);
        let core = &value[lead..trail];
        let quoted =
            lead > 0 && matches!(b[lead - 1], b'"' | b'\'') && b.get(trail) == Some(&b[lead - 1]);
        if quoted && !core.is_empty() {
            out.push_str(WILDCARD);
        } else if !core.is_empty() {
            let core_shape = shape
                .minus(Shape::of(&b[..lead]))
                .minus(Shape::of(&b[trail..]));
            self.mask_core_shaped(core, core_shape, out);
        }
        out.push_str(&value[trail..]);
    }

    /// Host, path, query and fragment of a URL after `scheme://`.
    fn mask_url_rest(&self, rest: &str, out: &mut String) {
        let (before_fragment, fragment) = match rest.find('#') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (authority_path, query) = match before_fragment.find('?') {
            Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
            None => (before_fragment, None),
        };
        // user:password@host: never keep credentials.
        let authority_path = match authority_path.find('@') {
            Some(at) if !authority_path[..at].contains('/') => {
                out.push_str(WILDCARD);
                out.push('@');
                &authority_path[at + 1..]
            }
            _ => authority_path,
        };
        let (host, path) = match authority_path.find('/') {
            Some(i) => (&authority_path[..i], &authority_path[i..]),
            None => (authority_path, ""),
        };
        if is_ipv4(host.as_bytes()) || is_ipv6_or_mac(host.as_bytes()) {
            out.push_str(WILDCARD);
        } else {
            self.mask_generic(host, out);
        }
        match without_emails(path) {
            Some(p) => self.mask_generic(&p, out),
            None => self.mask_generic(path, out),
        }
        if let Some(q) = query {
            out.push('?');
            for (i, pair) in q.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.find('=') {
                    Some(eq) => {
                        self.mask_generic(&pair[..eq], out);
                        out.push('=');
                        out.push_str(WILDCARD);
                    }
                    None if pair.is_empty() => {}
                    None => out.push_str(WILDCARD),
                }
            }
        }
        if fragment.is_some() {
            out.push('#');
            out.push_str(WILDCARD);
        }
    }

    /// Cuts at punctuation and masks each variable segment. A run of base64 characters
    /// (letters, digits, `+ / = _ -`) of 16 or more holding a digit is masked whole, so
    /// no piece of a key survives between its slashes.
    fn mask_generic(&self, s: &str, out: &mut String) {
        let b = s.as_bytes();
        // Only text of 16 bytes or more can hold a secret run.
        let long = b.len() >= 16;
        // Literal text is copied in runs; only variable segments break a run.
        let mut run_start = 0;
        let mut seg_start = 0;
        let mut i = 0;
        while i <= b.len() {
            if long && i < b.len() && is_secret_run_start(b, i) {
                let (end, digit) = secret_run_end(b, i);
                if end - i >= 16 && digit {
                    // The segment the run continues ("0." of "0.42+...") is judged alone.
                    if seg_start < i && segment_is_variable(&b[seg_start..i]) {
                        out.push_str(&s[run_start..seg_start]);
                        out.push_str(WILDCARD);
                    } else {
                        out.push_str(&s[run_start..i]);
                    }
                    out.push_str(WILDCARD);
                    run_start = end;
                    seg_start = end;
                    i = end;
                    continue;
                }
            }
            if i == b.len() || is_segment_delimiter(b[i]) {
                if seg_start < i && segment_is_variable(&b[seg_start..i]) {
                    out.push_str(&s[run_start..seg_start]);
                    out.push_str(WILDCARD);
                    run_start = i;
                }
                seg_start = i + 1;
            }
            i += 1;
        }
        out.push_str(&s[run_start..]);
    }
}

/// Offset of the first `://`.
#[inline]
fn find_scheme_end(b: &[u8]) -> Option<usize> {
    (0..b.len().saturating_sub(2)).find(|&i| b[i] == b':' && b[i + 1] == b'/' && b[i + 2] == b'/')
}

#[inline]
fn is_base64(b: u8) -> bool {
    CLASS[b as usize] & (C_ALPHA | C_DIGIT | C_B64) != 0
}

/// Whether a base64 run starts at `i` (the previous byte is not part of one).
#[inline]
fn is_secret_run_start(b: &[u8], i: usize) -> bool {
    CLASS[b[i] as usize] & (C_ALPHA | C_DIGIT) != 0 && (i == 0 || !is_base64(b[i - 1]))
}

/// End of the base64 run starting at `i`, and whether it holds a digit.
fn secret_run_end(b: &[u8], i: usize) -> (usize, bool) {
    let mut e = i;
    let mut digit = false;
    while e < b.len() && is_base64(b[e]) {
        digit |= b[e].is_ascii_digit();
        e += 1;
    }
    (e, digit)
}

/// `host:port` where the host is a name (`db-primary:5432`, `localhost:8080`).
fn is_host_port(b: &[u8]) -> bool {
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
#[path = "mask_tests.rs"]
mod tests;
