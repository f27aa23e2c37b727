//! Single values as the collector prints them: ids in hex, timestamps and floats as Go
//! formats them, enum names (severity, span kind, status code, temporality), and attribute
//! values with maps and lists as Go's JSON.

use std::fmt::Write as _;

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};

/// A trace or span id in hex; all zeros (or absent) is empty, as pdata prints it.
pub(super) fn id_hex(id: &[u8]) -> String {
    if id.iter().all(|b| *b == 0) {
        return String::new();
    }
    id.iter()
        .fold(String::with_capacity(id.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Go's `time.Time.String()` of the UTC time `nanos` after the epoch:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`, trailing zeros of the fraction left out.
pub fn timestamp(nanos: u64) -> String {
    // pdata converts to a signed nanosecond count first.
    let nanos = nanos as i64;
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's `%f`: six decimals; `+Inf`, `-Inf`, `NaN`.
pub(super) fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}

/// pdata's double as text (ECMAScript number form): shortest digits, exponent form below
/// 1e-6 and from 1e21 (`1e-7`, `1e+21`).
pub(super) fn go_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else {
        format!("{v}")
    }
}

pub(super) fn severity_name(n: i32) -> &'static str {
    const NAMES: [&str; 25] = [
        "Unspecified",
        "Trace",
        "Trace2",
        "Trace3",
        "Trace4",
        "Debug",
        "Debug2",
        "Debug3",
        "Debug4",
        "Info",
        "Info2",
        "Info3",
        "Info4",
        "Warn",
        "Warn2",
        "Warn3",
        "Warn4",
        "Error",
        "Error2",
        "Error3",
        "Error4",
        "Fatal",
        "Fatal2",
        "Fatal3",
        "Fatal4",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("")
}

pub(super) fn span_kind(k: i32) -> &'static str {
    match k {
        0 => "Unspecified",
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => "",
    }
}

pub(super) fn status_code(c: i32) -> &'static str {
    match c {
        0 => "Unset",
        1 => "Ok",
        2 => "Error",
        _ => "",
    }
}

pub(super) fn temporality(t: i32) -> &'static str {
    match t {
        1 => "Delta",
        2 => "Cumulative",
        _ => "Unspecified",
    }
}

/// `Type(text)` of one value, as the collector prints attributes and bodies.
pub(super) fn value_string(v: Option<&AnyValue>) -> String {
    let value = v.and_then(|v| v.value.as_ref());
    let (kind, text) = match value {
        None => ("Empty", String::new()),
        Some(any_value::Value::StringValue(s)) => ("Str", s.clone()),
        Some(any_value::Value::BoolValue(b)) => ("Bool", b.to_string()),
        Some(any_value::Value::IntValue(i)) => ("Int", i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => ("Double", go_double(*d)),
        Some(any_value::Value::BytesValue(b)) => ("Bytes", base64(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            let mut s = String::new();
            json_array(&a.values, &mut s);
            ("Slice", s)
        }
        Some(any_value::Value::KvlistValue(l)) => {
            let mut s = String::new();
            json_map(&l.values, &mut s);
            ("Map", s)
        }
        Some(any_value::Value::StringValueStrindex(i)) => ("Int", i.to_string()),
    };
    format!("{kind}({text})")
}

/// Go's JSON of a map: keys sorted, no spaces, `<>&` not escaped.
fn json_map(kvs: &[KeyValue], out: &mut String) {
    let sorted: std::collections::BTreeMap<&str, Option<&AnyValue>> = kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_ref()))
        .collect();
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(k, out);
        out.push(':');
        json_value(v, out);
    }
    out.push('}');
}

fn json_array(values: &[AnyValue], out: &mut String) {
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_value(Some(v), out);
    }
    out.push(']');
}

fn json_value(v: Option<&AnyValue>, out: &mut String) {
    match v.and_then(|v| v.value.as_ref()) {
        None => out.push_str("null"),
        Some(any_value::Value::StringValue(s)) => json_string(s, out),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => out.push_str(&go_double(*d)),
        Some(any_value::Value::BytesValue(b)) => json_string(&base64(b), out),
        Some(any_value::Value::ArrayValue(a)) => json_array(&a.values, out),
        Some(any_value::Value::KvlistValue(l)) => json_map(&l.values, out),
        Some(any_value::Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
    }
}

/// A JSON string as Go's encoder writes it (HTML characters left as they are).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
