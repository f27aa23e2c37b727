//! A small JSON writer that appends straight to a byte buffer: no intermediate value tree.
//! Field names are the fixed lowerCamelCase names of the OTLP messages (plain ASCII, written
//! without escaping); string values are escaped.

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use base64::Engine;

/// Writes one JSON object; fields holding their proto3 default value are skipped, as the
/// proto3 JSON mapping (and so OTLP/JSON) wants.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, empty: true }
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, name: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub(crate) fn string(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.key(name);
            write_string(self.out, value);
        }
    }

    pub(crate) fn bool(&mut self, name: &str, value: bool) {
        if value {
            self.key(name);
            self.out.extend_from_slice(b"true");
        }
    }

    /// A 64-bit unsigned integer (uint64, fixed64): a decimal string.
    pub(crate) fn u64(&mut self, name: &str, value: u64) {
        if value != 0 {
            self.key(name);
            write_u64(self.out, value);
        }
    }

    /// A 32-bit unsigned integer (uint32, fixed32): a JSON number.
    pub(crate) fn u32(&mut self, name: &str, value: u32) {
        if value != 0 {
            self.key(name);
            let _ = write!(self.out, "{value}");
        }
    }

    /// A 32-bit signed integer or an enum (as its integer): a JSON number.
    pub(crate) fn i32(&mut self, name: &str, value: i32) {
        if value != 0 {
            self.key(name);
            let _ = write!(self.out, "{value}");
        }
    }

    /// A double with implicit presence: skipped when zero.
    pub(crate) fn f64(&mut self, name: &str, value: f64) {
        if value != 0.0 {
            self.f64_always(name, value);
        }
    }

    /// A double with explicit presence (`optional`, or a oneof member): written even when zero.
    pub(crate) fn f64_always(&mut self, name: &str, value: f64) {
        self.key(name);
        write_f64(self.out, value);
    }

    /// A 64-bit signed integer (int64, sfixed64) with explicit presence (a oneof member): a
    /// decimal string, written even when zero.
    pub(crate) fn i64_always(&mut self, name: &str, value: i64) {
        self.key(name);
        write_i64(self.out, value);
    }

    /// A trace or span id: lower-case hex.
    pub(crate) fn hex(&mut self, name: &str, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.key(name);
            write_hex(self.out, bytes);
        }
    }

    /// A field with explicit presence that is set (a message field, a oneof member): its value
    /// is written by `write`, even when it is a default value, so that "set to default"
    /// survives a round trip.
    pub(crate) fn message(&mut self, name: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.key(name);
        write(self.out);
    }

    /// A repeated field, skipped when empty.
    pub(crate) fn list<T>(&mut self, name: &str, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(name);
        write_list(self.out, items, write);
    }
}

pub(crate) fn write_list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

pub(crate) fn write_u64(out: &mut Vec<u8>, value: u64) {
    let _ = write!(out, "\"{value}\"");
}

pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    let _ = write!(out, "\"{value}\"");
}

/// A double: the shortest text that reads back as the same value (Rust's `{:?}` gives that,
/// and it is always a valid JSON number for finite values), or the proto3 JSON strings for
/// the values JSON numbers cannot hold.
pub(crate) fn write_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value:?}");
    } else if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

pub(crate) fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    // The buffer was sized for padded base64 of `bytes`, so this cannot run out of room;
    // should it ever, the text is cut back rather than left with zero bytes in it.
    match BASE64_STANDARD.encode_slice(bytes, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => out.truncate(start),
    }
    out.push(b'"');
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 2);
    out.push(b'"');
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    out.push(b'"');
}

/// A JSON string: quotes, backslashes and control characters escaped; everything else
/// (valid UTF-8 already) copied as is, in runs.
pub(crate) fn write_string(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    let mut unicode_escape = *b"\\u0000";
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                unicode_escape[4] = HEX[usize::from(b >> 4)];
                unicode_escape[5] = HEX[usize::from(b & 0x0f)];
                &unicode_escape
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escape);
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped_and_reads_back() {
        let text: String = (0u8..0x20)
            .map(char::from)
            .chain("\"\\/é✓\u{7f}".chars())
            .collect();
        let mut out = Vec::new();
        write_string(&mut out, &text);
        assert!(
            out.iter().all(|&b| b >= 0x20),
            "raw control byte in {out:?}"
        );
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, text);
        let mut out = Vec::new();
        write_string(&mut out, "a\u{1}b\nc");
        assert_eq!(out, br#""a\u0001b\nc""#);
    }

    #[test]
    fn doubles_are_json_numbers_or_proto3_strings() {
        let cases: [(f64, &str); 9] = [
            (1.0, "1.0"),
            (-0.5, "-0.5"),
            (1e21, "1e21"),
            (1.5e-7, "1.5e-7"),
            (f64::MIN_POSITIVE / 4.0, "5.562684646268003e-309"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (value, text) in cases {
            let mut out = Vec::new();
            write_f64(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn base64_matches_the_standard_padded_encoding() {
        let data = [0xfbu8, 0xff, 0x00, 0x3e, 0x3f];
        for len in 0..=data.len() {
            let mut out = Vec::new();
            write_base64(&mut out, &data[..len]);
            assert_eq!(
                out,
                format!("\"{}\"", BASE64_STANDARD.encode(&data[..len])).into_bytes()
            );
        }
    }

    #[test]
    fn defaults_are_omitted_and_presence_fields_are_kept() {
        let mut out = Vec::new();
        let mut o = ObjectWriter::begin(&mut out);
        o.string("s", "");
        o.u64("u", 0);
        o.u32("n", 0);
        o.i32("e", 0);
        o.bool("b", false);
        o.f64("d", 0.0);
        o.hex("id", &[]);
        o.list::<u8>("l", &[], |_, _| {});
        o.f64_always("sum", 0.0);
        o.i64_always("asInt", 0);
        o.u64("count", u64::MAX);
        o.hex("spanId", &[0, 0xff]);
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"sum":0.0,"asInt":"0","count":"18446744073709551615","spanId":"00ff"}"#
        );
    }
}
