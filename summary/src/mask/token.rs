//! The rules that mask one whitespace-free token: secrets after keys, quoted values, URLs,
//! `key=value` chains, and segments cut at punctuation.

use super::bytes::{
    find_scheme_end, is_host_port, is_secret_run_start, is_segment_delimiter, secret_run_end,
    without_emails, wrapper_bounds,
};
use super::{has_word_char, Masker, MAX_TOKEN_BYTES, WILDCARD};
use crate::shapes::{
    has_secret_prefix, is_date_word, is_dotted_name, is_email_like, is_ipv4, is_ipv6_or_mac,
    is_jwt, is_secret_key, is_uuid, segment_is_variable, Shape,
};

impl Masker {
    /// Masks one whitespace-free token into `out`. Returns whether the next token is a
    /// secret value (this token is `password:`, `token=`, `Bearer`, ...).
    pub(super) fn mask_token(&self, raw: &str, out: &mut String) -> bool {
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
    pub(super) fn mask_core(&self, core: &str, out: &mut String) {
        self.mask_core_shaped(core, Shape::of(core.as_bytes()), out);
    }

    /// [`Masker::mask_core`] with the shape of `core` known.
    pub(super) fn mask_core_shaped(&self, core: &str, shape: Shape, out: &mut String) {
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
    pub(super) fn mask_quoted(&self, core: &str, out: &mut String) {
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
    pub(super) fn mask_plain_or_secret(&self, s: &str, secret_value: bool, out: &mut String) {
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
    pub(super) fn mask_value_shaped(&self, value: &str, shape: Shape, out: &mut String) {
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
    pub(super) fn mask_url_rest(&self, rest: &str, out: &mut String) {
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
    pub(super) fn mask_generic(&self, s: &str, out: &mut String) {
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
