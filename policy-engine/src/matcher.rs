//! Compiled matchers: one field test each, evaluated against a [`Record`].

use std::cmp::Ordering;

use regex::Regex;

use crate::record::Field;
use crate::record::{hex_into, FieldValue, Record};

/// A typed literal for `equals`, decoded once at compile time.
#[derive(Debug, Clone)]
pub enum Literal {
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value` / `hex_value`.
    Bytes(Vec<u8>),
    /// `string_value`; `as_bytes` holds its hex decoding, used on bytes fields (coercion).
    Str {
        /// The string.
        value: String,
        /// The bytes it spells when it is valid hex.
        as_bytes: Option<Vec<u8>>,
    },
}

/// A numeric operand of gt/gte/lt/lte.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    /// `int_value`, compared without going through f64.
    Int(i64),
    /// `double_value`.
    Double(f64),
}

/// How a literal string is compared (case-sensitive; case-insensitive ones compile to regex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    /// Whole value equal.
    Exact,
    /// Prefix.
    StartsWith,
    /// Suffix.
    EndsWith,
    /// Substring.
    Contains,
}

/// The test a matcher applies to a field value.
#[derive(Debug, Clone)]
pub enum Test {
    /// Field present (`true`) or absent (`false`).
    Exists(bool),
    /// Case-sensitive literal comparison. `as_bytes`: an `exact` operand's hex decoding, used
    /// on bytes fields.
    Literal {
        /// Kind of comparison.
        kind: LiteralKind,
        /// The operand.
        text: String,
        /// Hex decoding of the operand, for `exact` on bytes fields.
        as_bytes: Option<Vec<u8>>,
    },
    /// RE2-style regex search (also used for case-insensitive literals).
    Regex(Regex),
    /// Typed equality.
    Equals(Literal),
    /// Numeric comparison: the field compared to the operand must give one of `accept`.
    Compare {
        /// The operand.
        operand: Number,
        /// Accepted orderings of `field.cmp(operand)`.
        accept: [Option<Ordering>; 2],
    },
}

/// What a matcher looks at.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A field and a test on its value.
    Field(Field, Test),
    /// Metric type equals (implicit equality).
    MetricType(i32),
    /// Aggregation temporality equals (0 for metrics without one).
    Temporality(i32),
    /// Span kind equals.
    SpanKind(i32),
    /// Span status code equals (0 = unset).
    SpanStatus(i32),
    /// The span has an event of this name.
    EventName(String),
    /// Some span event's attribute passes the test.
    EventAttribute(Vec<String>, Test),
    /// The span links to this trace id.
    LinkTraceId(Vec<u8>),
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// What it tests.
    pub subject: Subject,
    /// Inverts the result.
    pub negate: bool,
}

fn cmp_int_double(i: i64, d: f64) -> Option<Ordering> {
    // Exact comparison of an i64 with an f64 without rounding the integer.
    if d.is_nan() {
        return None;
    }
    if d >= 9_223_372_036_854_775_808.0 {
        return Some(Ordering::Less);
    }
    if d < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    let t = d.trunc();
    let ti = t as i64;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = d - t;
            if frac > 0.0 {
                Some(Ordering::Less)
            } else if frac < 0.0 {
                Some(Ordering::Greater)
            } else {
                Some(Ordering::Equal)
            }
        }
        o => Some(o),
    }
}

fn compare(v: FieldValue<'_>, n: Number) -> Option<Ordering> {
    match (v, n) {
        (FieldValue::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
        (FieldValue::Int(a), Number::Double(b)) => cmp_int_double(a, b),
        (FieldValue::Double(a), Number::Int(b)) => cmp_int_double(b, a).map(Ordering::reverse),
        (FieldValue::Double(a), Number::Double(b)) => a.partial_cmp(&b),
        _ => None,
    }
}

fn literal(kind: LiteralKind, value: &str, text: &str) -> bool {
    match kind {
        LiteralKind::Exact => value == text,
        LiteralKind::StartsWith => value.starts_with(text),
        LiteralKind::EndsWith => value.ends_with(text),
        LiteralKind::Contains => value.contains(text),
    }
}

impl Test {
    /// Applies the test to a field value (`None`: field absent).
    pub fn check(&self, v: Option<FieldValue<'_>>) -> bool {
        let Some(v) = v else {
            return matches!(self, Test::Exists(false));
        };
        match self {
            Test::Exists(want) => *want,
            Test::Literal {
                kind,
                text,
                as_bytes,
            } => match v {
                FieldValue::Str(s) => literal(*kind, s, text),
                FieldValue::Bytes(b) => {
                    if let (LiteralKind::Exact, Some(want)) = (kind, as_bytes) {
                        return b == want.as_slice();
                    }
                    let mut buf = [0u8; 128];
                    literal(*kind, hex_into(b, &mut buf), text)
                }
                _ => false,
            },
            Test::Regex(re) => match v {
                FieldValue::Str(s) => re.is_match(s),
                FieldValue::Bytes(b) => {
                    let mut buf = [0u8; 128];
                    re.is_match(hex_into(b, &mut buf))
                }
                _ => false,
            },
            Test::Equals(lit) => match (lit, v) {
                (Literal::Bool(a), FieldValue::Bool(b)) => *a == b,
                (Literal::Int(a), FieldValue::Int(b)) => *a == b,
                (Literal::Int(a), FieldValue::Double(b)) => {
                    cmp_int_double(*a, b) == Some(Ordering::Equal)
                }
                (Literal::Double(a), FieldValue::Double(b)) => *a == b,
                (Literal::Double(a), FieldValue::Int(b)) => {
                    cmp_int_double(b, *a) == Some(Ordering::Equal)
                }
                (Literal::Bytes(a), FieldValue::Bytes(b)) => a.as_slice() == b,
                (Literal::Str { value, .. }, FieldValue::Str(s)) => value == s,
                (
                    Literal::Str {
                        as_bytes: Some(a), ..
                    },
                    FieldValue::Bytes(b),
                ) => a.as_slice() == b,
                _ => false,
            },
            Test::Compare { operand, accept } => {
                let o = compare(v, *operand);
                o.is_some() && accept.contains(&o)
            }
        }
    }
}

/// What a record offers beyond plain fields: metric type, span kind and so on.
pub trait Facets {
    /// Metric type number (0 when not a metric).
    fn metric_type(&self) -> i32 {
        0
    }
    /// Aggregation temporality number (0 when none).
    fn temporality(&self) -> i32 {
        0
    }
    /// Span kind number.
    fn span_kind(&self) -> i32 {
        0
    }
    /// Span status code number (0 = unset).
    fn span_status(&self) -> i32 {
        0
    }
    /// Whether the span has an event named `name`.
    fn has_event(&self, _name: &str) -> bool {
        false
    }
    /// Whether some event attribute at `path` passes `test` (any event).
    fn event_attribute(&self, _path: &[String], _test: &Test) -> bool {
        false
    }
    /// Whether the span links to `trace_id`.
    fn links_to(&self, _trace_id: &[u8]) -> bool {
        false
    }
}

impl Matcher {
    /// Evaluates the matcher (including `negate`).
    pub fn matches<R: Record + Facets>(&self, r: &R) -> bool {
        let raw = match &self.subject {
            Subject::Field(f, t) => t.check(r.value(f)),
            Subject::MetricType(t) => r.metric_type() == *t,
            Subject::Temporality(t) => r.temporality() == *t,
            Subject::SpanKind(k) => r.span_kind() == *k,
            Subject::SpanStatus(s) => r.span_status() == *s,
            Subject::EventName(n) => r.has_event(n),
            Subject::EventAttribute(p, t) => r.event_attribute(p, t),
            Subject::LinkTraceId(id) => r.links_to(id),
        };
        raw != self.negate
    }

    /// Whether this matcher reads a bytes field (not indexed by the string prefilter).
    pub fn reads_bytes(&self) -> bool {
        matches!(&self.subject, Subject::Field(Field::Well(w), _) if w.is_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_double_comparison_is_exact() {
        assert_eq!(cmp_int_double(3, 3.0), Some(Ordering::Equal));
        assert_eq!(cmp_int_double(3, 3.5), Some(Ordering::Less));
        assert_eq!(cmp_int_double(-3, -3.5), Some(Ordering::Greater));
        // 2^53 + 1 is not representable as f64; it must still compare greater than 2^53.
        let big = (1i64 << 53) + 1;
        assert_eq!(
            cmp_int_double(big, (1u64 << 53) as f64),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_int_double(1, f64::NAN), None);
    }

    #[test]
    fn typed_equality_never_crosses_types() {
        let t = Test::Equals(Literal::Int(200));
        assert!(t.check(Some(FieldValue::Int(200))));
        assert!(t.check(Some(FieldValue::Double(200.0))));
        assert!(!t.check(Some(FieldValue::Str("200"))));
        let t = Test::Equals(Literal::Str {
            value: "true".into(),
            as_bytes: None,
        });
        assert!(!t.check(Some(FieldValue::Bool(true))));
        assert!(t.check(Some(FieldValue::Str("true"))));
        assert!(!t.check(None));
    }

    #[test]
    fn string_matchers_use_hex_on_bytes() {
        let t = Test::Literal {
            kind: LiteralKind::StartsWith,
            text: "4bf9".into(),
            as_bytes: None,
        };
        assert!(t.check(Some(FieldValue::Bytes(&[0x4b, 0xf9, 0x01]))));
        assert!(!t.check(Some(FieldValue::Int(4))));
    }
}
