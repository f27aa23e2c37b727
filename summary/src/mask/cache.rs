//! The caches of a [`MaskedLine`](super::MaskedLine): recent whole lines with their masked
//! form, and recent tokens. Masking is a pure function of its input, so a hit gives the
//! output the rules would.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use super::MaskedToken;

/// Lines longer than this are never held by the [`LineCache`].
pub(super) const CACHED_LINE: usize = 256;
/// Masked text and tokens of a cached line are bounded too (a line of one-digit tokens
/// masks to three bytes per digit).
pub(super) const CACHED_LINE_OUT: usize = 512;
pub(super) const CACHED_LINE_TOKENS: usize = 64;
/// Entries of the line cache (a power of two).
pub(super) const LINE_SLOTS: usize = 512;

/// One line the [`LineCache`] holds, with its masked form.
#[derive(Clone, Default)]
pub(super) struct LineEntry {
    /// The settings the line was masked with ([`Masker`](super::Masker)'s `lists`).
    lists: bool,
    /// The shape of the line ([`shape_of_line`]).
    pub(super) raw: Vec<u8>,
    pub(super) buf: String,
    pub(super) tokens: Vec<MaskedToken>,
}

/// What [`Masker`](super::Masker) made of recent whole lines, keyed by their *shape*: the
/// line with every ASCII digit written as `0` ([`shape_of_line`]). Masking is a pure
/// function of the line and the masker's settings, and no rule looks at the value of a
/// digit, only at where digits are (the output never holds one: every segment holding a
/// digit is masked), so two lines of one shape mask alike: `took 12 ms rows=4031` and
/// `took 97 ms rows=5208` share an entry. A line of a recent shape takes its masked form
/// from here instead of running the rules again; the output is identical
/// (`tests/digit_shape.rs` checks this on the Loghub samples and on made-up lines). Logs
/// repeat shapes far more than exact lines: a message with numbers in it (durations,
/// counts, ports, addresses, numeric ids) repeats its shape while its numbers vary.
/// Direct-mapped, bounded (`LINE_SLOTS` lines of at most `CACHED_LINE` bytes, masked text
/// of at most `CACHED_LINE_OUT` bytes and `CACHED_LINE_TOKENS` tokens: at most about
/// 1.3 MiB, typically under 300 KiB, allocated on first use), in memory only.
#[derive(Clone, Default)]
pub(super) struct LineCache {
    pub(super) entries: Vec<LineEntry>,
}

impl std::fmt::Debug for LineCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LineCache({} slots)", self.entries.len())
    }
}

/// `line` with every ASCII digit written as `0`, into `out` (cleared first): what the
/// [`LineCache`] keys a line by.
#[inline]
pub(super) fn shape_of_line(line: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend(
        line.bytes()
            .map(|b| if b.is_ascii_digit() { b'0' } else { b }),
    );
}

impl LineCache {
    #[inline]
    pub(super) fn slot(shape: &[u8]) -> usize {
        slot_of(shape, LINE_SLOTS)
    }

    /// Copies the cached masked form of lines of this `shape` ([`shape_of_line`]) into
    /// `buf` and `tokens`; false on a miss.
    #[inline]
    pub(super) fn get_into(
        &self,
        slot: usize,
        shape: &[u8],
        lists: bool,
        buf: &mut String,
        tokens: &mut Vec<MaskedToken>,
    ) -> bool {
        match self.entries.get(slot) {
            Some(e) if e.lists == lists && e.raw == shape => {
                buf.push_str(&e.buf);
                tokens.extend_from_slice(&e.tokens);
                true
            }
            _ => false,
        }
    }

    pub(super) fn put(
        &mut self,
        slot: usize,
        shape: &[u8],
        lists: bool,
        buf: &str,
        tokens: &[MaskedToken],
    ) {
        if buf.len() > CACHED_LINE_OUT || tokens.len() > CACHED_LINE_TOKENS {
            return;
        }
        if self.entries.is_empty() {
            self.entries = vec![LineEntry::default(); LINE_SLOTS];
        }
        let e = &mut self.entries[slot];
        e.lists = lists;
        e.raw.clear();
        e.raw.extend_from_slice(shape);
        e.buf.clear();
        e.buf.push_str(buf);
        e.tokens.clear();
        e.tokens.extend_from_slice(tokens);
    }
}

/// Raw bytes of a token the cache may hold.
pub(super) const CACHED_RAW: usize = 32;
/// Bytes of its masked form.
pub(super) const CACHED_OUT: usize = 48;
/// Entries of the cache (a power of two).
pub(super) const CACHE_SLOTS: usize = 1024;

#[derive(Clone, Copy)]
pub(super) struct CacheEntry {
    raw_len: u8,
    out_len: u8,
    announces: bool,
    raw: [u8; CACHED_RAW],
    out: [u8; CACHED_OUT],
}

/// The slot of `bytes` in a direct-mapped cache of `slots` entries (a power of two).
#[inline]
pub(super) fn slot_of(bytes: &[u8], slots: usize) -> usize {
    let mut h = FxHasher::default();
    h.write(bytes);
    let v = h.finish();
    // FxHasher leaves low bits weak for short input: fold the high bits in.
    ((v ^ (v >> 29) ^ (v >> 47)) as usize) & (slots - 1)
}

/// What [`Masker`](super::Masker) made of recent tokens that hold letters and no digit or quote
/// (`pam_unix(sshd:auth):`, `org.apache.Foo:`, `user=root`): such tokens are mostly
/// structure and repeat line after line, so the rules run once per distinct token.
/// Direct-mapped and bounded (`CACHE_SLOTS` entries of at most `CACHED_RAW` bytes, about
/// 80 KiB, allocated on first use); it lives in memory only, beside the line being masked.
/// Tokens holding a digit (ids, numbers) are never cached.
#[derive(Clone, Default)]
pub(super) struct TokenCache {
    entries: Vec<CacheEntry>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({} slots)", self.entries.len())
    }
}

impl TokenCache {
    #[inline]
    pub(super) fn slot(raw: &[u8]) -> usize {
        slot_of(raw, CACHE_SLOTS)
    }

    /// The masked form of `raw` and whether it announces a secret, if cached.
    #[inline]
    pub(super) fn get(&self, slot: usize, raw: &[u8]) -> Option<(&[u8], bool)> {
        let e = self.entries.get(slot)?;
        (e.raw_len as usize == raw.len() && &e.raw[..raw.len()] == raw)
            .then(|| (&e.out[..e.out_len as usize], e.announces))
    }

    pub(super) fn put(&mut self, slot: usize, raw: &[u8], out: &[u8], announces: bool) {
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
