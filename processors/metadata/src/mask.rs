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

/// The text a masked part is replaced by.
pub const WILDCARD: &str = "<*>";

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
}

impl MaskedLine {
    /// An empty line with room for typical log lines.
    pub fn new() -> Self {
        MaskedLine {
            buf: String::with_capacity(512),
            tokens: Vec::with_capacity(64),
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
pub fn token_hash(text: &str) -> u64 {
    if text == WILDCARD {
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

/// Whether masked text holds a letter that is not part of a `<*>`.
fn has_word_char(text: &str) -> bool {
    // Masks are the only place '<', '*' and '>' come in threes, and they hold no letter,
    // so any letter is a letter of the input.
    text.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Masks lines. Stateless apart from its settings; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    _private: (),
}

/// Bytes that cut a token into segments for generic masking.
fn is_segment_delimiter(b: u8) -> bool {
    matches!(
        b,
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
    )
}

fn is_leading_wrapper(b: u8) -> bool {
    matches!(b, b'(' | b'[' | b'{' | b'<' | b'"' | b'\'' | b'`')
}

fn is_trailing_wrapper(b: u8) -> bool {
    matches!(
        b,
        b')' | b']' | b'}' | b'>' | b'"' | b'\'' | b'`' | b',' | b';' | b'.' | b':' | b'!' | b'?'
    )
}

/// The core of a token lies between these: wrapping punctuation is outside.
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

/// Key names (lower-cased, without `-`/`_`/`.`) whose values are always masked.
fn is_secret_key(key: &str) -> bool {
    let mut norm = [0u8; 48];
    let mut n = 0;
    let mut letters = 0u32;
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() {
            if n == norm.len() {
                break;
            }
            let l = b.to_ascii_lowercase();
            norm[n] = l;
            letters |= letter_bit(l);
            n += 1;
        }
    }
    let k = &norm[..n];
    if k.is_empty() {
        return false;
    }
    const EXACT: &[&[u8]] = &[b"pass", b"pw", b"key", b"sig", b"jwt", b"bearer", b"basic"];
    const CONTAINS: [&[u8]; 13] = [
        b"password",
        b"passwd",
        b"pwd",
        b"secret",
        b"token",
        b"apikey",
        b"accesskey",
        b"privatekey",
        b"auth",
        b"credential",
        b"cookie",
        b"sessionid",
        b"signature",
    ];
    // The letters each pattern needs: most keys lack one, which skips the substring search.
    const NEEDS: [u32; 13] = {
        let mut needs = [0u32; 13];
        let mut i = 0;
        while i < CONTAINS.len() {
            let mut j = 0;
            while j < CONTAINS[i].len() {
                needs[i] |= 1 << (CONTAINS[i][j] - b'a');
                j += 1;
            }
            i += 1;
        }
        needs
    };
    if EXACT.contains(&k) {
        return true;
    }
    for (c, need) in CONTAINS.iter().zip(NEEDS) {
        if letters & need == need && k.windows(c.len()).any(|w| w == *c) {
            return true;
        }
    }
    false
}

fn letter_bit(lower: u8) -> u32 {
    if lower.is_ascii_lowercase() {
        1 << (lower - b'a')
    } else {
        0
    }
}

/// What one pass over a token's core found; decides which classifiers can apply.
#[derive(Default)]
struct Shape {
    digits: u32,
    colons: u32,
    dots: u32,
    delimiters: u32,
    at: bool,
    first_eq: Option<usize>,
    all_hex: bool,
}

impl Shape {
    fn of(b: &[u8]) -> Shape {
        let mut s = Shape {
            all_hex: true,
            ..Shape::default()
        };
        for (i, &c) in b.iter().enumerate() {
            if c.is_ascii_digit() {
                s.digits += 1;
                continue;
            }
            if c.is_ascii_alphabetic() {
                s.all_hex &= c.is_ascii_hexdigit();
                continue;
            }
            s.all_hex = false;
            match c {
                b':' => s.colons += 1,
                b'.' => s.dots += 1,
                b'@' => s.at = true,
                b'=' if s.first_eq.is_none() => s.first_eq = Some(i),
                _ => {}
            }
            if is_segment_delimiter(c) {
                s.delimiters += 1;
            }
        }
        s
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => is_hex(b),
        })
}

/// Dotted quad, optionally followed by `:port` or `/prefix`.
fn is_ipv4(s: &[u8]) -> bool {
    let mut octets = 0;
    let mut digits = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b.is_ascii_digit() {
            digits += 1;
            if digits > 3 {
                return false;
            }
        } else if b == b'.' {
            if digits == 0 {
                return false;
            }
            octets += 1;
            digits = 0;
        } else if (b == b':' || b == b'/') && octets == 3 && digits > 0 {
            return i + 1 < s.len() && s[i + 1..].iter().all(u8::is_ascii_digit);
        } else {
            return false;
        }
        i += 1;
    }
    octets == 3 && digits > 0
}

/// Hex groups with colons (at least two), optionally in brackets with a port, or a
/// dotted-quad tail (`::ffff:1.2.3.4`). Six colon-separated pairs make a MAC address.
fn is_ipv6_or_mac(s: &[u8]) -> bool {
    let s = match s.first() {
        Some(b'[') => match s.iter().rposition(|&b| b == b']') {
            Some(end) if s[end + 1..].is_empty() || is_port_suffix(&s[end + 1..]) => &s[1..end],
            _ => return false,
        },
        _ => s,
    };
    let colons = s.iter().filter(|&&b| b == b':').count();
    if colons < 2 {
        return false;
    }
    let mut group = 0;
    let mut has_hex_letter = false;
    for (i, &b) in s.iter().enumerate() {
        if b == b':' {
            group = 0;
        } else if b == b'.' {
            // an embedded IPv4 tail
            let start = s[..i].iter().rposition(|&c| c == b':').map_or(0, |p| p + 1);
            return is_ipv4(&s[start..]);
        } else if is_hex(b) {
            group += 1;
            if group > 4 {
                return false;
            }
            has_hex_letter |= b.is_ascii_alphabetic();
        } else {
            return false;
        }
    }
    // "12:30:45" is a time, masked anyway by the digit rule; require a letter or "::".
    has_hex_letter || s.windows(2).any(|w| w == b"::")
}

fn is_port_suffix(s: &[u8]) -> bool {
    s.len() > 1 && s[0] == b':' && s[1..].iter().all(u8::is_ascii_digit)
}

/// `local@domain` with word characters on both sides.
fn is_email_like(s: &[u8]) -> bool {
    let Some(at) = s.iter().position(|&b| b == b'@') else {
        return false;
    };
    let word = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    at > 0
        && at + 1 < s.len()
        && s[..at].iter().all(word)
        && s[at + 1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

/// Three base64url parts separated by dots, the first a JSON header (`eyJ`).
fn is_jwt(s: &[u8]) -> bool {
    s.starts_with(b"eyJ")
        && s.iter().filter(|&&b| b == b'.').count() == 2
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// Whether a segment (no delimiters inside) is variable.
fn segment_is_variable(seg: &[u8]) -> bool {
    if seg.iter().any(u8::is_ascii_digit) {
        return true;
    }
    seg.len() >= 12 && seg.iter().all(|&b| is_hex(b))
}

impl Masker {
    /// A masker with the built-in rules.
    pub fn new() -> Self {
        Masker::default()
    }

    /// Masks `line` into `out` (cleared first).
    pub fn mask_into(&self, line: &str, out: &mut MaskedLine) {
        out.buf.clear();
        out.tokens.clear();
        let mut mask_next = false;
        for raw in line.split_ascii_whitespace() {
            let start = out.buf.len();
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
            } else {
                mask_next = self.mask_token(raw, &mut out.buf);
            }
            let end = out.buf.len();
            let text = &out.buf[start..end];
            let hash = token_hash(text);
            let informative = has_word_char(text);
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
        let mut lead = 0;
        while lead < bytes.len() && is_leading_wrapper(bytes[lead]) {
            lead += 1;
        }
        let mut trail = bytes.len();
        while trail > lead && is_trailing_wrapper(bytes[trail - 1]) {
            trail -= 1;
        }
        let core = &raw[lead..trail];
        let suffix = &raw[trail..];
        out.push_str(&raw[..lead]);
        if core.is_empty() {
            out.push_str(suffix);
            return false;
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
        let b = core.as_bytes();
        let shape = Shape::of(b);
        if shape.digits == 0 && shape.delimiters == 0 {
            // A plain word (the common case): only a long all-hex word is variable.
            if b.len() >= 12 && shape.all_hex {
                out.push_str(WILDCARD);
            } else {
                out.push_str(core);
            }
            return;
        }
        if shape.colons > 0 {
            if let Some(scheme_end) = b.windows(3).position(|w| w == b"://") {
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
            || (shape.at && is_email_like(b))
            || (shape.dots == 2 && is_jwt(b));
        if whole {
            out.push_str(WILDCARD);
            return;
        }
        if let Some(eq) = shape.first_eq {
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
                    self.mask_value(value, out);
                }
                return;
            }
        }
        self.mask_generic(core, out);
    }

    /// A value after `key=`: may itself be wrapped (`"x"`) or be an address.
    fn mask_value(&self, value: &str, out: &mut String) {
        let b = value.as_bytes();
        let mut lead = 0;
        while lead < b.len() && is_leading_wrapper(b[lead]) {
            lead += 1;
        }
        let mut trail = b.len();
        while trail > lead && is_trailing_wrapper(b[trail - 1]) {
            trail -= 1;
        }
        out.push_str(&value[..lead]);
        let core = &value[lead..trail];
        if !core.is_empty() {
            self.mask_core(core, out);
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
        self.mask_generic(path, out);
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

    /// Cuts at punctuation and masks each variable segment.
    fn mask_generic(&self, s: &str, out: &mut String) {
        let b = s.as_bytes();
        // Literal text is copied in runs; only variable segments break a run.
        let mut run_start = 0;
        let mut seg_start = 0;
        for i in 0..=b.len() {
            if i == b.len() || is_segment_delimiter(b[i]) {
                if seg_start < i && segment_is_variable(&b[seg_start..i]) {
                    out.push_str(&s[run_start..seg_start]);
                    out.push_str(WILDCARD);
                    run_start = i;
                }
                seg_start = i + 1;
            }
        }
        out.push_str(&s[run_start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(line: &str) -> String {
        let mut out = MaskedLine::new();
        Masker::new().mask_into(line, &mut out);
        out.joined()
    }

    #[test]
    fn numbers_and_hex() {
        assert_eq!(mask("took 15 ms"), "took <*> ms");
        assert_eq!(mask("value -3.25e10 rounded"), "value <*> rounded");
        assert_eq!(mask("addr 0x7fff5a3b flags=0x1,"), "addr <*> flags=<*>,");
        assert_eq!(mask("commit deadbeefcafe01"), "commit <*>");
        assert_eq!(mask("commit deadbeefcafe"), "commit <*>");
        assert_eq!(mask("a decade ago"), "a decade ago");
    }

    #[test]
    fn uuids_and_ids() {
        assert_eq!(
            mask("[instance: 3edec1e4-9678-4a3a-a21b-a145a4ee5e61] Terminating"),
            "[instance: <*>] Terminating"
        );
        assert_eq!(
            mask("block blk_-6952295868487656571 terminating"),
            "block <*> terminating"
        );
        assert_eq!(mask("req-38101a0b-2096-447d"), "<*>");
    }

    #[test]
    fn ip_addresses_with_ports() {
        assert_eq!(mask("from 10.0.0.1:8080 ok"), "from <*> ok");
        assert_eq!(mask("rhost=218.188.2.4"), "rhost=<*>");
        assert_eq!(mask("net 192.168.0.0/16."), "net <*>.");
        assert_eq!(mask("peer fe80::1ff:fe23:4567:890a"), "peer <*>");
        assert_eq!(mask("peer [2001:db8::1]:443,"), "peer <*>,");
        assert_eq!(mask("peer ::1"), "peer <*>");
        assert_eq!(mask("mac aa:bb:cc:dd:ee:ff"), "mac <*>");
        assert_eq!(mask("(::ffff:10.1.2.3)"), "(<*>)");
    }

    #[test]
    fn emails() {
        assert_eq!(mask("sent to alice.smith@example.com."), "sent to <*>.");
        assert_eq!(mask("<bob+x@mail.example.org>"), "<<*>>");
        assert_eq!(mask("user=carol@corp.io"), "user=<*>");
    }

    #[test]
    fn urls_keep_shape_but_not_values() {
        assert_eq!(
            mask("GET https://api.example.com/v2/users/123/orders?id=77&name=bob#frag done"),
            "GET https://api.example.com/<*>/users/<*>/orders?id=<*>&name=<*>#<*> done"
        );
        assert_eq!(
            mask("http://admin:hunter2@10.0.0.5:8080/x"),
            "http://<*>@<*>/x"
        );
    }

    #[test]
    fn jwts() {
        assert_eq!(
            mask("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
            "jwt <*>"
        );
    }

    #[test]
    fn secrets_after_keys() {
        assert_eq!(mask("login password=hunter two"), "login password=<*> two");
        assert_eq!(mask("api_key=abcdefXYZ,"), "api_key=<*>,");
        assert_eq!(mask("x-auth-token: sekrit rest"), "x-auth-token: <*> rest");
        assert_eq!(
            mask("Authorization: Bearer abc.def.ghi"),
            "Authorization: Bearer <*>"
        );
        assert_eq!(mask("password= topsecret"), "password= <*>");
        assert_eq!(mask("Failed password for root"), "Failed password for root");
        assert_eq!(
            mask(r#"{"password": "letters", "user": "x"}"#),
            r#"{"password": "<*>", "user": "x"}"#
        );
        assert_eq!(mask("tag=\"View Lock\""), "tag=\"View Lock\"");
    }

    #[test]
    fn paths_times_and_card_numbers() {
        assert_eq!(
            mask("open /var/log/app-2024/part-00017.log failed"),
            "open /var/log/<*>/<*> failed"
        );
        assert_eq!(mask("at 12:30:45.123"), "at <*>");
        assert_eq!(mask("from 10.0.0.1,10.0.0.2:80 ok"), "from <*> ok");
        assert_eq!(mask("card 4111-1111-1111-1111"), "card <*>");
        assert_eq!(mask("card 4111 1111 1111 1111"), "card <*> <*> <*> <*>");
    }

    #[test]
    fn whitespace_is_normalised_and_hashes_match_text() {
        let mut out = MaskedLine::new();
        Masker::new().mask_into("  a\t b  42 ", &mut out);
        assert_eq!(out.joined(), "a b <*>");
        let t = out.tokens();
        assert!(t[2].is_wildcard());
        assert_eq!(t[0].hash, token_hash("a"));
        assert_ne!(t[0].hash, t[1].hash);
    }
}
