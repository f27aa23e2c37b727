//! Values seen by conditions, and the collector's comparison rules for them.
//!
//! Rules (from OTTL's `compare.go`): `nil == nil`; `nil` equals nothing else; ints and
//! floats compare as floats when mixed; strings and bytes compare bytewise; `false < true`;
//! maps and lists only compare for (deep) equality; values of different types are only
//! ever "not equal" (every other operator is false).

use std::borrow::Cow;
use std::cmp::Ordering;

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};

use super::lexer::CmpOp;

/// A value read from a record or written in a condition. Borrows from the record where it
/// can, so evaluating a condition does not allocate for plain field and attribute reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// Bytes of an id field or a `0x..` literal (as a string: lower-case hex).
    Bytes(Cow<'a, [u8]>),
    /// A bytes attribute value (as a string: base64, like the collector's `AsString`).
    AttrBytes(&'a [u8]),
    /// A map attribute (borrowed) or a converter's result (`ParseJSON`, owned).
    Map(Cow<'a, [KeyValue]>),
    /// A list attribute (borrowed) or a converter's result (`Split`, owned).
    List(Cow<'a, [AnyValue]>),
}

impl<'a> Val<'a> {
    /// The value of an OTLP `AnyValue`; an empty value is `nil`.
    pub fn from_any(v: &'a AnyValue) -> Val<'a> {
        Self::from_opt(v.value.as_ref())
    }

    pub fn from_opt(v: Option<&'a any_value::Value>) -> Val<'a> {
        match v {
            None | Some(any_value::Value::StringValueStrindex(_)) => Val::Nil,
            Some(any_value::Value::StringValue(s)) => Val::Str(Cow::Borrowed(s)),
            Some(any_value::Value::BoolValue(b)) => Val::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Val::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Val::Float(*d),
            Some(any_value::Value::BytesValue(b)) => Val::AttrBytes(b),
            Some(any_value::Value::ArrayValue(a)) => Val::List(Cow::Borrowed(&a.values)),
            Some(any_value::Value::KvlistValue(m)) => Val::Map(Cow::Borrowed(&m.values)),
        }
    }

    /// The type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::Bytes(_) | Val::AttrBytes(_) => "bytes",
            Val::Map(_) => "map",
            Val::List(_) => "list",
        }
    }
}

/// Looks a key up in an attribute list (the first entry wins, as in pdata).
pub fn map_get<'a>(map: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    map.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// Whether a map holds `key`, even with an empty value.
pub fn map_has(map: &[KeyValue], key: &str) -> bool {
    map.iter().any(|kv| kv.key == key)
}

/// Applies `op` to `a` and `b` under the collector's comparison rules.
pub fn compare(a: &Val<'_>, b: &Val<'_>, op: CmpOp) -> bool {
    use Val::*;
    let invalid = op == CmpOp::Ne;
    match (a, b) {
        (Nil, Nil) => matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge),
        (Nil, _) | (_, Nil) => invalid,
        (Bool(x), Bool(y)) => ordered(x.cmp(y), op),
        (Int(x), Int(y)) => ordered(x.cmp(y), op),
        (Int(x), Float(y)) => float_cmp(*x as f64, *y, op),
        (Float(x), Int(y)) => float_cmp(*x, *y as f64, op),
        (Float(x), Float(y)) => float_cmp(*x, *y, op),
        (Str(x), Str(y)) => ordered(x.as_bytes().cmp(y.as_bytes()), op),
        (Bytes(_) | AttrBytes(_), Bytes(_) | AttrBytes(_)) => {
            ordered(bytes_of(a).cmp(bytes_of(b)), op)
        }
        (Map(x), Map(y)) => equality(maps_equal(x, y), op),
        (List(x), List(y)) => equality(lists_equal(x, y), op),
        _ => invalid,
    }
}

fn bytes_of<'v>(v: &'v Val<'_>) -> &'v [u8] {
    match v {
        Val::Bytes(b) => b,
        Val::AttrBytes(b) => b,
        _ => &[],
    }
}

fn ordered(o: Ordering, op: CmpOp) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

// IEEE semantics, as Go's operators on float64 (NaN compares false except !=).
fn float_cmp(x: f64, y: f64, op: CmpOp) -> bool {
    match op {
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
    }
}

fn equality(equal: bool, op: CmpOp) -> bool {
    match op {
        CmpOp::Eq => equal,
        CmpOp::Ne => !equal,
        _ => false,
    }
}

fn maps_equal(a: &[KeyValue], b: &[KeyValue]) -> bool {
    a.len() == b.len()
        && a.iter().all(|kv| match b.iter().find(|o| o.key == kv.key) {
            Some(o) => any_equal(kv.value.as_ref(), o.value.as_ref()),
            None => false,
        })
}

fn lists_equal(a: &[AnyValue], b: &[AnyValue]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| any_equal(Some(x), Some(y)))
}

fn any_equal(a: Option<&AnyValue>, b: Option<&AnyValue>) -> bool {
    use any_value::Value as V;
    let a = a.and_then(|v| v.value.as_ref());
    let b = b.and_then(|v| v.value.as_ref());
    match (a, b) {
        (None, None) => true,
        (Some(V::StringValue(x)), Some(V::StringValue(y))) => x == y,
        (Some(V::BoolValue(x)), Some(V::BoolValue(y))) => x == y,
        (Some(V::IntValue(x)), Some(V::IntValue(y))) => x == y,
        (Some(V::DoubleValue(x)), Some(V::DoubleValue(y))) => x == y,
        (Some(V::BytesValue(x)), Some(V::BytesValue(y))) => x == y,
        (Some(V::ArrayValue(x)), Some(V::ArrayValue(y))) => lists_equal(&x.values, &y.values),
        (Some(V::KvlistValue(x)), Some(V::KvlistValue(y))) => maps_equal(&x.values, &y.values),
        _ => false,
    }
}

/// The value as a string the way the collector's "string-like" arguments convert it
/// (`IsMatch`, `String`, `Concat`): `None` for nil.
pub fn to_string_like<'v>(v: &'v Val<'_>) -> Option<Cow<'v, str>> {
    Some(match v {
        Val::Nil => return None,
        Val::Str(s) => Cow::Borrowed(s.as_ref()),
        Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Val::Int(i) => Cow::Owned(i.to_string()),
        Val::Float(f) => Cow::Owned(format_float(*f)),
        Val::Bytes(b) => Cow::Owned(hex_lower(b)),
        Val::AttrBytes(b) => Cow::Owned(base64_std(b)),
        Val::Map(m) => {
            let mut out = String::new();
            json_map(m, &mut out);
            Cow::Owned(out)
        }
        Val::List(l) => {
            let mut out = String::new();
            json_list(l, &mut out);
            Cow::Owned(out)
        }
    })
}

/// An OTLP value as a string the way pdata's `Value.AsString` renders it (used for
/// `body.string` and for sampling on an attribute).
pub fn any_as_string(v: Option<&AnyValue>) -> String {
    match v {
        None => String::new(),
        Some(v) => match Val::from_any(v) {
            Val::Nil => String::new(),
            other => to_string_like(&other)
                .map(Cow::into_owned)
                .unwrap_or_default(),
        },
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits, never an exponent.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

pub fn hex_lower(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

fn base64_std(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                s.push(T[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

// JSON as Go's encoding/json writes a map[string]any: keys sorted, HTML characters escaped.
fn json_map(m: &[KeyValue], out: &mut String) {
    let mut entries: Vec<&KeyValue> = m.iter().collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries.dedup_by(|a, b| a.key == b.key);
    out.push('{');
    for (i, kv) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(&kv.key, out);
        out.push(':');
        json_any(kv.value.as_ref(), out);
    }
    out.push('}');
}

fn json_list(l: &[AnyValue], out: &mut String) {
    out.push('[');
    for (i, v) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_any(Some(v), out);
    }
    out.push(']');
}

fn json_any(v: Option<&AnyValue>, out: &mut String) {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(V::StringValueStrindex(_)) => out.push_str("null"),
        Some(V::StringValue(s)) => json_str(s, out),
        Some(V::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(V::IntValue(i)) => out.push_str(&i.to_string()),
        Some(V::DoubleValue(d)) => out.push_str(&format_float(*d)),
        Some(V::BytesValue(b)) => json_str(&base64_std(b), out),
        Some(V::ArrayValue(a)) => json_list(&a.values, out),
        Some(V::KvlistValue(m)) => json_map(&m.values, out),
    }
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::common::v1::KeyValueList;

    fn s(x: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(x))
    }

    #[test]
    fn comparison_rules_match_the_collector() {
        use CmpOp::*;
        // nil
        assert!(compare(&Val::Nil, &Val::Nil, Eq));
        assert!(compare(&Val::Nil, &Val::Nil, Le));
        assert!(!compare(&Val::Nil, &Val::Nil, Lt));
        assert!(!compare(&Val::Nil, &s("a"), Eq));
        assert!(compare(&Val::Nil, &s("a"), Ne));
        assert!(!compare(&Val::Int(0), &Val::Nil, Ge));
        // mixed numbers compare as floats
        assert!(compare(&Val::Int(1), &Val::Float(1.0), Eq));
        assert!(compare(&Val::Float(0.5), &Val::Int(1), Lt));
        assert!(compare(&Val::Int(2), &Val::Float(1.5), Ge));
        // different types: only "not equal"
        assert!(!compare(&s("1"), &Val::Int(1), Eq));
        assert!(compare(&s("1"), &Val::Int(1), Ne));
        assert!(!compare(&s("1"), &Val::Int(1), Lt));
        assert!(!compare(&Val::Bool(true), &Val::Int(1), Gt));
        // strings, bools, bytes order
        assert!(compare(&s("abc"), &s("abd"), Lt));
        assert!(compare(&Val::Bool(false), &Val::Bool(true), Lt));
        assert!(compare(
            &Val::Bytes(Cow::Borrowed(&[1, 2])),
            &Val::AttrBytes(&[1, 3]),
            Lt
        ));
    }

    #[test]
    fn maps_compare_deeply_and_without_order() {
        let kv = |k: &str, v: i64| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(v)),
            }),
            ..Default::default()
        };
        let a = vec![kv("x", 1), kv("y", 2)];
        let b = vec![kv("y", 2), kv("x", 1)];
        let c = vec![kv("y", 2), kv("x", 3)];
        assert!(compare(
            &Val::Map(Cow::Borrowed(&a)),
            &Val::Map(Cow::Borrowed(&b)),
            CmpOp::Eq
        ));
        assert!(compare(
            &Val::Map(Cow::Borrowed(&a)),
            &Val::Map(Cow::Borrowed(&c)),
            CmpOp::Ne
        ));
        assert!(!compare(
            &Val::Map(Cow::Borrowed(&a)),
            &Val::Map(Cow::Borrowed(&b)),
            CmpOp::Le
        ));
    }

    #[test]
    fn string_conversion_like_the_collector() {
        let nested = vec![
            KeyValue {
                key: "b".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("<x>".into())),
                }),
                ..Default::default()
            },
            KeyValue {
                key: "a".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![],
                    })),
                }),
                ..Default::default()
            },
        ];
        assert_eq!(
            to_string_like(&Val::Map(Cow::Borrowed(&nested))).unwrap(),
            r#"{"a":{},"b":"\u003cx\u003e"}"#
        );
        assert_eq!(to_string_like(&Val::Float(1.0)).unwrap(), "1");
        assert_eq!(to_string_like(&Val::Float(0.25)).unwrap(), "0.25");
        assert_eq!(
            to_string_like(&Val::Bytes(Cow::Borrowed(&[0xab, 1]))).unwrap(),
            "ab01"
        );
        assert_eq!(
            to_string_like(&Val::AttrBytes(b"hello")).unwrap(),
            "aGVsbG8="
        );
        assert_eq!(to_string_like(&Val::AttrBytes(b"hi")).unwrap(), "aGk=");
        assert_eq!(to_string_like(&Val::Nil), None);
    }
}
