//! Shape classifiers of tokens (addresses, ids, secrets) used by [`crate::mask`].

use crate::mask::is_segment_delimiter;

/// Key names (lower-cased, without `-`/`_`/`.`) whose values are always masked: exactly
/// `pass`, `pw`, `key`, `sig`, `jwt`, `bearer`, `basic`, or holding `password`, `passwd`,
/// `pwd`, `secret`, `token`, `apikey`, `accesskey`, `privatekey`, `auth`, `credential`,
/// `cookie`, `sessionid` or `signature` (alphanumerics of the key, first 48 of them).
#[inline]
pub(crate) fn is_secret_key(key: &str) -> bool {
    let mut norm = [0u8; 48];
    let mut n = 0;
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() {
            if n == norm.len() {
                break;
            }
            norm[n] = b.to_ascii_lowercase();
            n += 1;
        }
    }
    let k = &norm[..n];
    if n < 2 {
        return false;
    }
    let exact = match (n, k[0]) {
        (2, b'p') => k == b"pw",
        (3, b'k') => k == b"key",
        (3, b's') => k == b"sig",
        (3, b'j') => k == b"jwt",
        (4, b'p') => k == b"pass",
        (5, b'b') => k == b"basic",
        (6, b'b') => k == b"bearer",
        _ => false,
    };
    if exact {
        return true;
    }
    // Each pattern is looked for only where its first letter stands.
    let has = |i: usize, p: &[u8]| k.len() - i >= p.len() && &k[i..i + p.len()] == p;
    (0..n.saturating_sub(2)).any(|i| match k[i] {
        b'p' => {
            has(i, b"pwd")
                || (k[i + 1] == b'a' && (has(i, b"password") || has(i, b"passwd")))
                || has(i, b"privatekey")
        }
        b's' => has(i, b"secret") || has(i, b"sessionid") || has(i, b"signature"),
        b't' => has(i, b"token"),
        b'a' => has(i, b"auth") || has(i, b"apikey") || has(i, b"accesskey"),
        b'c' => has(i, b"cookie") || has(i, b"credential"),
        _ => false,
    })
}

/// What one pass over a token's core found; decides which classifiers can apply. Counts
/// only, so the shape of a suffix is the whole's minus its prefix's ([`Shape::minus`]):
/// a chain `a=1,b=2,c=3` is masked in time linear in its length.
#[derive(Default, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) digits: u32,
    pub(crate) colons: u32,
    pub(crate) dots: u32,
    pub(crate) delimiters: u32,
    pub(crate) ats: u32,
    pub(crate) quotes: u32,
    pub(crate) eqs: u32,
}

impl Shape {
    #[inline]
    pub(crate) fn of(b: &[u8]) -> Shape {
        let mut s = Shape::default();
        for &c in b {
            if c.is_ascii_alphanumeric() {
                s.digits += u32::from(c.is_ascii_digit());
                continue;
            }
            match c {
                b':' => s.colons += 1,
                b'.' => s.dots += 1,
                b'@' => s.ats += 1,
                b'"' | b'\'' => s.quotes += 1,
                b'=' => s.eqs += 1,
                _ => {}
            }
            s.delimiters += u32::from(is_segment_delimiter(c));
        }
        s
    }

    /// The shape of what is left of a text of shape `self` without a part of shape `o`.
    #[inline]
    pub(crate) fn minus(self, o: Shape) -> Shape {
        Shape {
            digits: self.digits.saturating_sub(o.digits),
            colons: self.colons.saturating_sub(o.colons),
            dots: self.dots.saturating_sub(o.dots),
            delimiters: self.delimiters.saturating_sub(o.delimiters),
            ats: self.ats.saturating_sub(o.ats),
            quotes: self.quotes.saturating_sub(o.quotes),
            eqs: self.eqs.saturating_sub(o.eqs),
        }
    }
}

#[inline]
pub(crate) fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => is_hex(b),
        })
}

/// Dotted quad, optionally followed by `:port` or `/prefix`.
pub(crate) fn is_ipv4(s: &[u8]) -> bool {
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
pub(crate) fn is_ipv6_or_mac(s: &[u8]) -> bool {
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

pub(crate) fn is_port_suffix(s: &[u8]) -> bool {
    s.len() > 1 && s[0] == b':' && s[1..].iter().all(u8::is_ascii_digit)
}

/// `local@domain` with word characters on both sides.
pub(crate) fn is_email_like(s: &[u8]) -> bool {
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
pub(crate) fn is_jwt(s: &[u8]) -> bool {
    s.starts_with(b"eyJ")
        && s.iter().filter(|&&b| b == b'.').count() == 2
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// Whether a segment (no delimiters inside) is variable.
#[inline]
pub(crate) fn segment_is_variable(seg: &[u8]) -> bool {
    if seg.iter().any(u8::is_ascii_digit) {
        return true;
    }
    if seg.contains(&b'.') {
        let start = seg.iter().position(|&b| b != b'.').unwrap_or(seg.len());
        if is_dotted_name(&seg[start..]) {
            return true;
        }
    }
    seg.len() >= 8 && seg.iter().all(|&b| is_hex(b))
}

/// Top-level domains recognised at the end of a one-dot host name (any two-letter
/// lower-case label counts too).
const TLDS: &[&str] = &[
    "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "io", "local", "lan",
    "internal", "dev", "app", "cloud", "home", "corp", "arpa", "onion",
];

/// `a.b.c` (two dots or more) or `host.tld`: host names, package and class names, dotted
/// keys. Labels are letters, digits, `_`, `-`, `$`.
#[inline]
pub(crate) fn is_dotted_name(s: &[u8]) -> bool {
    let mut labels = 0;
    let mut last_start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b == b'.' {
            if i == last_start {
                return false;
            }
            labels += 1;
            last_start = i + 1;
        } else if !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$')) {
            return false;
        }
    }
    if last_start == s.len() || labels == 0 {
        return false;
    }
    if labels >= 2 {
        return true;
    }
    let last = &s[last_start..];
    (last.len() == 2 && last.iter().all(u8::is_ascii_lowercase))
        || TLDS.iter().any(|t| t.as_bytes() == last)
}

/// Prefixes of vendor credentials (cloud keys, API tokens) masked whole wherever they stand.
#[inline]
pub(crate) fn has_secret_prefix(s: &[u8]) -> bool {
    if s.len() < 12 {
        return false;
    }
    // Most words start with none of these letters: one byte decides.
    let candidates: &[&[u8]] = match s[0] {
        b'A' => &[b"AKIA", b"ASIA", b"AIza", b"AGE-SECRET-KEY-"],
        b's' => &[b"sk_live_", b"sk_test_", b"shpat_", b"sk-"],
        b'r' => &[b"rk_live_"],
        b'p' => &[b"pk_live_"],
        b'w' => &[b"whsec_"],
        b'g' => &[
            b"ghp_",
            b"gho_",
            b"ghu_",
            b"ghs_",
            b"ghr_",
            b"github_pat_",
            b"glpat-",
        ],
        b'x' => &[b"xoxb-", b"xoxp-", b"xoxa-", b"xoxs-", b"xapp-"],
        b'n' => &[b"npm_"],
        b'h' => &[b"hf_"],
        b'S' => &[b"SG."],
        // DigitalOcean's `dop_v1_`, any version digit: no rule looks at a digit's value,
        // which is what lets the line cache key lines by their digit-free shape.
        b'd' => {
            return s.len() >= 15
                && s.starts_with(b"dop_v")
                && s[5].is_ascii_digit()
                && s[6] == b'_';
        }
        _ => return false,
    };
    candidates
        .iter()
        .any(|p| s.len() >= p.len() + 8 && s[1] == p[1] && s.starts_with(p))
}

const fn k3(w: &[u8; 3]) -> u32 {
    (w[0] as u32) << 16 | (w[1] as u32) << 8 | w[2] as u32
}

/// Names of weekdays and months (`Mon`, `June`): parts of a timestamp.
#[inline]
pub(crate) fn is_date_word(s: &[u8]) -> bool {
    if s.len() < 3 || s.len() > 9 || !s[0].is_ascii_uppercase() {
        return false;
    }
    const ABBREV: [u32; 19] = [
        k3(b"Mon"),
        k3(b"Tue"),
        k3(b"Wed"),
        k3(b"Thu"),
        k3(b"Fri"),
        k3(b"Sat"),
        k3(b"Sun"),
        k3(b"Jan"),
        k3(b"Feb"),
        k3(b"Mar"),
        k3(b"Apr"),
        k3(b"May"),
        k3(b"Jun"),
        k3(b"Jul"),
        k3(b"Aug"),
        k3(b"Sep"),
        k3(b"Oct"),
        k3(b"Nov"),
        k3(b"Dec"),
    ];
    let head = (s[0] as u32) << 16 | (s[1] as u32) << 8 | s[2] as u32;
    if !ABBREV.contains(&head) {
        return false;
    }
    if s.len() == 3 {
        return true;
    }
    const FULL: &[&[u8]] = &[
        b"Sept",
        b"Monday",
        b"Tuesday",
        b"Wednesday",
        b"Thursday",
        b"Friday",
        b"Saturday",
        b"Sunday",
        b"January",
        b"February",
        b"March",
        b"April",
        b"June",
        b"July",
        b"August",
        b"September",
        b"October",
        b"November",
        b"December",
    ];
    FULL.contains(&s)
}

/// Units of size, time and rate whose choice follows the magnitude (`1.2 KB` / `3 MB`,
/// `<1 sec` / `2 mins`); fixed units (`ms`, `bytes`) stay.
#[inline]
pub(crate) fn is_unit(s: &[u8]) -> bool {
    if s.is_empty() || s.len() > 7 {
        return false;
    }
    // Packed lower-case bytes: one integer compare per unit, no memcmp.
    let mut key = 0u64;
    for &b in s {
        key = key << 8 | u64::from(b.to_ascii_lowercase());
    }
    const fn pack(w: &[u8]) -> u64 {
        let mut k = 0u64;
        let mut i = 0;
        while i < w.len() {
            k = k << 8 | w[i] as u64;
            i += 1;
        }
        k
    }
    const UNITS: [u64; 30] = [
        pack(b"b"),
        pack(b"kb"),
        pack(b"mb"),
        pack(b"gb"),
        pack(b"tb"),
        pack(b"pb"),
        pack(b"kib"),
        pack(b"mib"),
        pack(b"gib"),
        pack(b"tib"),
        pack(b"sec"),
        pack(b"secs"),
        pack(b"second"),
        pack(b"seconds"),
        pack(b"min"),
        pack(b"mins"),
        pack(b"minute"),
        pack(b"minutes"),
        pack(b"hr"),
        pack(b"hrs"),
        pack(b"hour"),
        pack(b"hours"),
        pack(b"day"),
        pack(b"days"),
        pack(b"kbps"),
        pack(b"mbps"),
        pack(b"gbps"),
        pack(b"kb/s"),
        pack(b"mb/s"),
        pack(b"gb/s"),
    ];
    UNITS.contains(&key)
}

/// Whether `s[at]` is the `@` of an e-mail-like `local@domain`; returns the span.
pub(crate) fn email_span(s: &[u8], at: usize) -> Option<(usize, usize)> {
    let local = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let domain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
    let mut a = at;
    while a > 0 && local(s[a - 1]) {
        a -= 1;
    }
    let mut e = at + 1;
    while e < s.len() && domain(s[e]) {
        e += 1;
    }
    // Trailing dots are punctuation, not part of the domain.
    while e > at + 1 && s[e - 1] == b'.' {
        e -= 1;
    }
    (a < at && e > at + 1 && s[at + 1..e].iter().any(u8::is_ascii_alphabetic)).then_some((a, e))
}
