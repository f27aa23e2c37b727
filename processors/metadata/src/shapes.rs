//! Shape classifiers of tokens (addresses, ids, secrets) used by [`crate::mask`].

use crate::mask::is_segment_delimiter;

/// Key names (lower-cased, without `-`/`_`/`.`) whose values are always masked.
#[inline]
pub(crate) fn is_secret_key(key: &str) -> bool {
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

#[inline]
pub(crate) fn letter_bit(lower: u8) -> u32 {
    if lower.is_ascii_lowercase() {
        1 << (lower - b'a')
    } else {
        0
    }
}

/// What one pass over a token's core found; decides which classifiers can apply.
#[derive(Default)]
pub(crate) struct Shape {
    pub(crate) digits: u32,
    pub(crate) colons: u32,
    pub(crate) dots: u32,
    pub(crate) delimiters: u32,
    pub(crate) at: bool,
    pub(crate) first_eq: Option<usize>,
    pub(crate) all_hex: bool,
}

impl Shape {
    #[inline]
    pub(crate) fn of(b: &[u8]) -> Shape {
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
        b'd' => &[b"dop_v1_"],
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
