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
