//! Compiling matchers: the field selectors of each signal and the match types they share.

use std::cmp::Ordering;

use super::{build_regex, Errors};
use crate::matcher::{Literal, LiteralKind, Matcher, Number, Subject, Test};
use crate::record::{decode_hex, Field, WellKnown};
use weir_policy_contract::proto::{
    self, log_matcher, metric_matcher, numeric_value, trace_matcher, value,
};

pub(super) fn path(p: &proto::AttributePath, place: &str, errs: &mut Errors) -> Vec<String> {
    if p.path.is_empty() {
        errs.push(place, "attribute has empty path");
    }
    p.path.clone()
}

pub(super) fn log_field(f: i32, place: &str, errs: &mut Errors) -> Field {
    use proto::LogField as L;
    let w = match L::try_from(f) {
        Ok(L::Body) => WellKnown::Body,
        Ok(L::SeverityText) => WellKnown::SeverityText,
        Ok(L::TraceId) => WellKnown::TraceId,
        Ok(L::SpanId) => WellKnown::SpanId,
        Ok(L::EventName) => WellKnown::EventName,
        Ok(L::ResourceSchemaUrl) => WellKnown::ResourceSchemaUrl,
        Ok(L::ScopeSchemaUrl) => WellKnown::ScopeSchemaUrl,
        Ok(L::Unspecified) | Err(_) => {
            errs.push(place, "log_field is unspecified");
            WellKnown::Body
        }
    };
    Field::Well(w)
}

/// The match-type part, common to the three matcher kinds.
enum RawMatch<'a> {
    Exact(&'a str),
    Regex(&'a str),
    Exists(bool),
    StartsWith(&'a str),
    EndsWith(&'a str),
    Contains(&'a str),
    Equals(&'a proto::Value),
    Cmp(&'a proto::NumericValue, [Option<Ordering>; 2]),
}

const GT: [Option<Ordering>; 2] = [Some(Ordering::Greater), None];
const GTE: [Option<Ordering>; 2] = [Some(Ordering::Greater), Some(Ordering::Equal)];
const LT: [Option<Ordering>; 2] = [Some(Ordering::Less), None];
const LTE: [Option<Ordering>; 2] = [Some(Ordering::Less), Some(Ordering::Equal)];

macro_rules! raw_match {
    ($m:ident, $x:expr) => {
        $x.as_ref().map(|m| match m {
            $m::Match::Exact(s) => RawMatch::Exact(s),
            $m::Match::Regex(s) => RawMatch::Regex(s),
            $m::Match::Exists(b) => RawMatch::Exists(*b),
            $m::Match::StartsWith(s) => RawMatch::StartsWith(s),
            $m::Match::EndsWith(s) => RawMatch::EndsWith(s),
            $m::Match::Contains(s) => RawMatch::Contains(s),
            $m::Match::Equals(v) => RawMatch::Equals(v),
            $m::Match::Gt(v) => RawMatch::Cmp(v, GT),
            $m::Match::Gte(v) => RawMatch::Cmp(v, GTE),
            $m::Match::Lt(v) => RawMatch::Cmp(v, LT),
            $m::Match::Lte(v) => RawMatch::Cmp(v, LTE),
        })
    };
}

fn ci_regex(kind: LiteralKind, text: &str) -> String {
    let lit = regex::escape(text);
    match kind {
        LiteralKind::Exact => format!("(?i)^(?:{lit})$"),
        LiteralKind::StartsWith => format!("(?i)^(?:{lit})"),
        LiteralKind::EndsWith => format!("(?i)(?:{lit})$"),
        LiteralKind::Contains => format!("(?i){lit}"),
    }
}

fn literal_test(kind: LiteralKind, text: &str, ci: bool, place: &str, errs: &mut Errors) -> Test {
    if ci {
        match build_regex(&ci_regex(kind, text)) {
            Ok(re) => Test::Regex(re),
            Err(e) => {
                errs.push(place, format!("invalid operand {text:?}: {e}"));
                Test::Exists(false)
            }
        }
    } else {
        Test::Literal {
            kind,
            text: text.to_string(),
            as_bytes: (kind == LiteralKind::Exact)
                .then(|| decode_hex(text))
                .flatten(),
        }
    }
}

fn test(raw: RawMatch<'_>, ci: bool, place: &str, errs: &mut Errors) -> Test {
    match raw {
        RawMatch::Exists(b) => Test::Exists(b),
        RawMatch::Exact(s) => literal_test(LiteralKind::Exact, s, ci, place, errs),
        RawMatch::StartsWith(s) => literal_test(LiteralKind::StartsWith, s, ci, place, errs),
        RawMatch::EndsWith(s) => literal_test(LiteralKind::EndsWith, s, ci, place, errs),
        RawMatch::Contains(s) => literal_test(LiteralKind::Contains, s, ci, place, errs),
        RawMatch::Regex(s) => {
            let pattern = if ci {
                format!("(?i){s}")
            } else {
                s.to_string()
            };
            match build_regex(&pattern) {
                Ok(re) => Test::Regex(re),
                Err(_) => {
                    errs.push(place, format!("invalid regex {s:?}"));
                    Test::Exists(false)
                }
            }
        }
        RawMatch::Equals(v) => match &v.value {
            None => {
                errs.push(place, "equals: no value set");
                Test::Exists(false)
            }
            Some(value::Value::BoolValue(b)) => Test::Equals(Literal::Bool(*b)),
            Some(value::Value::IntValue(i)) => Test::Equals(Literal::Int(*i)),
            Some(value::Value::DoubleValue(d)) => Test::Equals(Literal::Double(*d)),
            Some(value::Value::BytesValue(b)) => Test::Equals(Literal::Bytes(b.clone())),
            Some(value::Value::HexValue(h)) => match decode_hex(h) {
                Some(b) => Test::Equals(Literal::Bytes(b)),
                None => {
                    errs.push(place, format!("invalid hex_value {h:?}"));
                    Test::Exists(false)
                }
            },
            Some(value::Value::StringValue(s)) if ci => {
                literal_test(LiteralKind::Exact, s, true, place, errs)
            }
            Some(value::Value::StringValue(s)) => Test::Equals(Literal::Str {
                value: s.clone(),
                as_bytes: decode_hex(s),
            }),
        },
        RawMatch::Cmp(n, accept) => match n.value {
            None => {
                errs.push(place, "comparison: no value set");
                Test::Exists(false)
            }
            Some(numeric_value::Value::IntValue(i)) => Test::Compare {
                operand: Number::Int(i),
                accept,
            },
            Some(numeric_value::Value::DoubleValue(d)) => Test::Compare {
                operand: Number::Double(d),
                accept,
            },
        },
    }
}

fn field_matcher(
    field: Field,
    raw: Option<RawMatch<'_>>,
    ci: bool,
    negate: bool,
    place: &str,
    errs: &mut Errors,
) -> Matcher {
    let t = match raw {
        Some(r) => test(r, ci, place, errs),
        None => {
            errs.push(place, "missing match type");
            Test::Exists(false)
        }
    };
    Matcher {
        subject: Subject::Field(field, t),
        negate,
    }
}

/// Implicit-equality selectors take no match type, or `exists` (false inverts).
fn implicit(
    subject: Subject,
    raw: Option<RawMatch<'_>>,
    negate: bool,
    what: &str,
    place: &str,
    errs: &mut Errors,
) -> Matcher {
    let negate = match raw {
        None | Some(RawMatch::Exists(true)) => negate,
        Some(RawMatch::Exists(false)) => !negate,
        Some(_) => {
            errs.push(
                place,
                format!("{what} takes no match type other than exists"),
            );
            negate
        }
    };
    Matcher { subject, negate }
}

pub(super) fn log_matcher(m: &proto::LogMatcher, place: &str, errs: &mut Errors) -> Matcher {
    let field = log_selector!(
        log_matcher,
        &m.field,
        Field::Well(WellKnown::Body),
        place,
        errs
    );
    let raw = raw_match!(log_matcher, m.r#match);
    field_matcher(field, raw, m.case_insensitive, m.negate, place, errs)
}

pub(super) fn metric_matcher(m: &proto::MetricMatcher, place: &str, errs: &mut Errors) -> Matcher {
    use metric_matcher::Field as F;
    let raw = raw_match!(metric_matcher, m.r#match);
    let field = match &m.field {
        None => {
            errs.push(place, "missing field selector");
            Field::Well(WellKnown::Name)
        }
        Some(F::MetricField(f)) => {
            use proto::MetricField as M;
            Field::Well(match M::try_from(*f) {
                Ok(M::Name) => WellKnown::Name,
                Ok(M::Description) => WellKnown::Description,
                Ok(M::Unit) => WellKnown::Unit,
                Ok(M::ResourceSchemaUrl) => WellKnown::ResourceSchemaUrl,
                Ok(M::ScopeSchemaUrl) => WellKnown::ScopeSchemaUrl,
                Ok(M::ScopeName) => WellKnown::ScopeName,
                Ok(M::ScopeVersion) => WellKnown::ScopeVersion,
                Ok(M::Unspecified) | Err(_) => {
                    errs.push(place, "metric_field is unspecified");
                    WellKnown::Name
                }
            })
        }
        Some(F::DatapointAttribute(p)) => Field::Record(path(p, place, errs)),
        Some(F::ResourceAttribute(p)) => Field::Resource(path(p, place, errs)),
        Some(F::ScopeAttribute(p)) => Field::Scope(path(p, place, errs)),
        Some(F::MetricType(t)) => {
            if *t <= 0 || proto::MetricType::try_from(*t).is_err() {
                errs.push(place, "metric_type is unspecified");
            }
            return implicit(
                Subject::MetricType(*t),
                raw,
                m.negate,
                "metric_type",
                place,
                errs,
            );
        }
        Some(F::AggregationTemporality(t)) => {
            if proto::AggregationTemporality::try_from(*t).is_err() {
                errs.push(place, "aggregation_temporality is invalid");
            }
            return implicit(
                Subject::Temporality(*t),
                raw,
                m.negate,
                "aggregation_temporality",
                place,
                errs,
            );
        }
    };
    field_matcher(field, raw, m.case_insensitive, m.negate, place, errs)
}

pub(super) fn trace_matcher(m: &proto::TraceMatcher, place: &str, errs: &mut Errors) -> Matcher {
    use trace_matcher::Field as F;
    let raw = raw_match!(trace_matcher, m.r#match);
    let field = match &m.field {
        None => {
            errs.push(place, "missing field selector");
            Field::Well(WellKnown::Name)
        }
        Some(F::TraceField(f)) => {
            use proto::TraceField as T;
            Field::Well(match T::try_from(*f) {
                Ok(T::Name) => WellKnown::Name,
                Ok(T::TraceId) => WellKnown::TraceId,
                Ok(T::SpanId) => WellKnown::SpanId,
                Ok(T::ParentSpanId) => WellKnown::ParentSpanId,
                Ok(T::TraceState) => WellKnown::TraceState,
                Ok(T::ResourceSchemaUrl) => WellKnown::ResourceSchemaUrl,
                Ok(T::ScopeSchemaUrl) => WellKnown::ScopeSchemaUrl,
                Ok(T::ScopeName) => WellKnown::ScopeName,
                Ok(T::ScopeVersion) => WellKnown::ScopeVersion,
                Ok(T::Unspecified) | Err(_) => {
                    errs.push(place, "trace_field is unspecified");
                    WellKnown::Name
                }
            })
        }
        Some(F::SpanAttribute(p)) => Field::Record(path(p, place, errs)),
        Some(F::ResourceAttribute(p)) => Field::Resource(path(p, place, errs)),
        Some(F::ScopeAttribute(p)) => Field::Scope(path(p, place, errs)),
        Some(F::SpanKind(k)) => {
            if *k <= 0 || proto::SpanKind::try_from(*k).is_err() {
                errs.push(place, "span_kind is unspecified");
            }
            return implicit(
                Subject::SpanKind(*k),
                raw,
                m.negate,
                "span_kind",
                place,
                errs,
            );
        }
        Some(F::SpanStatus(s)) => {
            // SPAN_STATUS_CODE_UNSPECIFIED is matchable: it means "status not set".
            if proto::SpanStatusCode::try_from(*s).is_err() {
                errs.push(place, "span_status is invalid");
            }
            return implicit(
                Subject::SpanStatus(*s),
                raw,
                m.negate,
                "span_status",
                place,
                errs,
            );
        }
        Some(F::EventName(n)) => {
            if n.is_empty() {
                errs.push(place, "event_name is empty");
            }
            return implicit(
                Subject::EventName(n.clone()),
                raw,
                m.negate,
                "event_name",
                place,
                errs,
            );
        }
        Some(F::LinkTraceId(h)) => {
            let id = decode_hex(h).unwrap_or_else(|| {
                errs.push(place, format!("invalid link_trace_id {h:?}"));
                vec![]
            });
            return implicit(
                Subject::LinkTraceId(id),
                raw,
                m.negate,
                "link_trace_id",
                place,
                errs,
            );
        }
        Some(F::EventAttribute(p)) => {
            let p = path(p, place, errs);
            let t = match raw {
                Some(r) => test(r, m.case_insensitive, place, errs),
                None => Test::Exists(true),
            };
            return Matcher {
                subject: Subject::EventAttribute(p, t),
                negate: m.negate,
            };
        }
    };
    field_matcher(field, raw, m.case_insensitive, m.negate, place, errs)
}
