//! Validation and compilation of one policy (specification section 8.2). Every problem is
//! collected and worded `<target>: <path>: <message>`; a policy with any problem is inert.

use std::cmp::Ordering;
use std::time::Duration;

use regex::{Regex, RegexBuilder};

use crate::matcher::{Literal, LiteralKind, Matcher, Number, Subject, Test};
use crate::proto::{self, log_matcher, metric_matcher, numeric_value, trace_matcher, value};
use crate::record::{decode_hex, Field, WellKnown};
use crate::sampling::RateLimiter;

/// Compiled regexes are capped so a hostile pattern cannot eat memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Builds a regex the way policies need it (search semantics, size-capped).
pub fn build_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// The `keep` of a log policy.
#[derive(Debug)]
pub enum LogKeep {
    /// Keep every matching record.
    All,
    /// Drop every matching record.
    None,
    /// Keep about `percent` % (0 < percent < 100); keep iff randomness >= `threshold`.
    Percent {
        /// The percentage.
        percent: f64,
        /// The 56-bit rejection threshold.
        threshold: u64,
    },
    /// At most N per window (per sample-key value when a sample key is set).
    Rate(RateLimiter),
}

impl LogKeep {
    /// Restrictiveness order: lower sorts first and wins. `none` < lower percentages <
    /// rate limits < `all`. Rate limits rank after percentages because their effective
    /// fraction is unknown; a percentage is a promise about volume, a rate limit a cap.
    pub fn rank(&self) -> (u8, f64) {
        match self {
            LogKeep::None => (0, 0.0),
            LogKeep::Percent { percent, .. } => (1, *percent),
            LogKeep::Rate(_) => (2, 0.0),
            LogKeep::All => (3, 0.0),
        }
    }
}

/// One log transform step.
#[derive(Debug)]
pub enum TransformOp {
    /// Delete the field.
    Remove(Field),
    /// Replace the value, or every regex match in it.
    Redact {
        /// The field.
        field: Field,
        /// Replacement text, a template when `regex` is set.
        replacement: String,
        /// Pattern of the parts to replace.
        regex: Option<Regex>,
    },
    /// Move the value to the attribute `to` (same map for attributes; the record's
    /// attributes for a well-known field).
    Rename {
        /// Source.
        from: Field,
        /// Target key.
        to: String,
        /// Overwrite an existing target.
        upsert: bool,
    },
    /// Set a string value.
    Add {
        /// The field.
        field: Field,
        /// The value.
        value: String,
        /// Overwrite an existing value.
        upsert: bool,
    },
}

/// A log policy's transforms, each list in its normative stage.
#[derive(Debug, Default)]
pub struct LogTransform {
    /// Stage 1.
    pub remove: Vec<TransformOp>,
    /// Stage 2.
    pub redact: Vec<TransformOp>,
    /// Stage 3.
    pub rename: Vec<TransformOp>,
    /// Stage 4.
    pub add: Vec<TransformOp>,
}

impl LogTransform {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.redact.is_empty()
            && self.rename.is_empty()
            && self.add.is_empty()
    }
}

/// Trace sampling mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingMode {
    /// Trace-id (or `rv`) randomness, or a seeded hash of the trace id.
    HashSeed,
    /// Multiply the incoming probability.
    Proportional,
    /// Bring every span to the same probability.
    Equalizing,
}

/// The `keep` of a trace policy.
#[derive(Debug, Clone)]
pub struct TraceKeep {
    /// 0..=100.
    pub percent: f64,
    /// Mode.
    pub mode: SamplingMode,
    /// Hex digits of `th` (1-14).
    pub precision: u32,
    /// Seed for hash_seed mode (0: use the trace id's own randomness).
    pub seed: u32,
    /// Drop when no randomness can be found.
    pub fail_closed: bool,
}

/// What one compiled policy does, per signal.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per policy, never moved on the hot path
pub enum Target {
    /// A log policy.
    Log {
        /// ANDed matchers.
        matchers: Vec<Matcher>,
        /// Keep.
        keep: LogKeep,
        /// Consistent-sampling key.
        sample_key: Option<Field>,
        /// Transforms.
        transform: LogTransform,
    },
    /// A metric policy.
    Metric {
        /// ANDed matchers.
        matchers: Vec<Matcher>,
        /// `false` drops.
        keep: bool,
    },
    /// A trace policy.
    Trace {
        /// ANDed matchers.
        matchers: Vec<Matcher>,
        /// Sampling.
        keep: TraceKeep,
    },
}

impl Target {
    /// The matchers.
    pub fn matchers(&self) -> &[Matcher] {
        match self {
            Target::Log { matchers, .. }
            | Target::Metric { matchers, .. }
            | Target::Trace { matchers, .. } => matchers,
        }
    }
}

struct Errors {
    list: Vec<String>,
}

impl Errors {
    fn push(&mut self, place: &str, msg: impl std::fmt::Display) {
        self.list.push(format!("{place}: {msg}"));
    }
}

fn path(p: &proto::AttributePath, place: &str, errs: &mut Errors) -> Vec<String> {
    if p.path.is_empty() {
        errs.push(place, "attribute has empty path");
    }
    p.path.clone()
}

fn log_field(f: i32, place: &str, errs: &mut Errors) -> Field {
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

fn log_matcher(m: &proto::LogMatcher, place: &str, errs: &mut Errors) -> Matcher {
    use log_matcher::Field as F;
    let field = match &m.field {
        None => {
            errs.push(place, "missing field selector");
            Field::Well(WellKnown::Body)
        }
        Some(F::LogField(f)) => log_field(*f, place, errs),
        Some(F::LogAttribute(p)) => Field::Record(path(p, place, errs)),
        Some(F::ResourceAttribute(p)) => Field::Resource(path(p, place, errs)),
        Some(F::ScopeAttribute(p)) => Field::Scope(path(p, place, errs)),
    };
    let raw = raw_match!(log_matcher, m.r#match);
    field_matcher(field, raw, m.case_insensitive, m.negate, place, errs)
}

fn metric_matcher(m: &proto::MetricMatcher, place: &str, errs: &mut Errors) -> Matcher {
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

fn trace_matcher(m: &proto::TraceMatcher, place: &str, errs: &mut Errors) -> Matcher {
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

/// Parses a log `keep` string.
pub fn parse_keep(keep: &str) -> Option<LogKeep> {
    let k = keep.trim();
    if k.is_empty() || k.eq_ignore_ascii_case("all") {
        return Some(LogKeep::All);
    }
    if k.eq_ignore_ascii_case("none") {
        return Some(LogKeep::None);
    }
    if let Some(p) = k.strip_suffix('%') {
        let p = p.trim();
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return None;
        }
        let percent: f64 = p.parse().ok()?;
        if !(0.0..=100.0).contains(&percent) {
            return None;
        }
        return Some(if percent >= 100.0 {
            LogKeep::All
        } else if percent <= 0.0 {
            LogKeep::None
        } else {
            LogKeep::Percent {
                percent,
                threshold: crate::sampling::threshold_for_percent(percent, 14),
            }
        });
    }
    let (n, window) = k.split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let n = n.trim();
    if !digits(n) {
        return None;
    }
    let limit: u64 = n.parse().ok()?;
    let window = window.trim();
    let (d, unit) = window.split_at(window.len().checked_sub(1)?);
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        _ => return None,
    };
    let d: u64 = if d.is_empty() {
        1
    } else if digits(d) {
        d.parse().ok()?
    } else {
        return None;
    };
    if limit == 0 || d == 0 {
        return None;
    }
    Some(LogKeep::Rate(RateLimiter::new(
        limit,
        Duration::from_secs(d.checked_mul(secs_per)?),
    )))
}

fn transform(t: &proto::LogTransform, errs: &mut Errors) -> LogTransform {
    use proto::{log_add, log_redact, log_remove, log_rename};
    let mut out = LogTransform::default();
    macro_rules! sel {
        ($m:ident, $f:expr, $place:expr) => {
            match $f {
                None => {
                    errs.push(&$place, "missing field selector");
                    Field::Well(WellKnown::Body)
                }
                Some($m::Field::LogField(f)) => log_field(*f, &$place, errs),
                Some($m::Field::LogAttribute(p)) => Field::Record(path(p, &$place, errs)),
                Some($m::Field::ResourceAttribute(p)) => Field::Resource(path(p, &$place, errs)),
                Some($m::Field::ScopeAttribute(p)) => Field::Scope(path(p, &$place, errs)),
            }
        };
    }
    for (i, r) in t.remove.iter().enumerate() {
        let place = format!("log: transform: remove[{i}]");
        out.remove
            .push(TransformOp::Remove(sel!(log_remove, &r.field, place)));
    }
    for (i, r) in t.redact.iter().enumerate() {
        let place = format!("log: transform: redact[{i}]");
        let field = sel!(log_redact, &r.field, place);
        let regex = r.regex.as_ref().and_then(|p| match build_regex(p) {
            Ok(re) => Some(re),
            Err(_) => {
                errs.push(&place, format!("invalid regex {p:?}"));
                None
            }
        });
        out.redact.push(TransformOp::Redact {
            field,
            replacement: r.replacement.clone(),
            regex,
        });
    }
    for (i, r) in t.rename.iter().enumerate() {
        let place = format!("log: transform: rename[{i}]");
        let from = match &r.from {
            None => {
                errs.push(&place, "missing field selector");
                Field::Well(WellKnown::Body)
            }
            Some(log_rename::From::FromLogField(f)) => log_field(*f, &place, errs),
            Some(log_rename::From::FromLogAttribute(p)) => Field::Record(path(p, &place, errs)),
            Some(log_rename::From::FromResourceAttribute(p)) => {
                Field::Resource(path(p, &place, errs))
            }
            Some(log_rename::From::FromScopeAttribute(p)) => Field::Scope(path(p, &place, errs)),
        };
        if r.to.is_empty() {
            errs.push(&place, "to must not be empty");
        }
        out.rename.push(TransformOp::Rename {
            from,
            to: r.to.clone(),
            upsert: r.upsert,
        });
    }
    for (i, a) in t.add.iter().enumerate() {
        let place = format!("log: transform: add[{i}]");
        out.add.push(TransformOp::Add {
            field: sel!(log_add, &a.field, place),
            value: a.value.clone(),
            upsert: a.upsert,
        });
    }
    out
}

fn sample_key(k: &proto::LogSampleKey, errs: &mut Errors) -> Field {
    use proto::log_sample_key::Field as F;
    let place = "log: sample_key";
    match &k.field {
        None => {
            errs.push(place, "missing field selector");
            Field::Well(WellKnown::TraceId)
        }
        Some(F::LogField(f)) => log_field(*f, place, errs),
        Some(F::LogAttribute(p)) => Field::Record(path(p, place, errs)),
        Some(F::ResourceAttribute(p)) => Field::Resource(path(p, place, errs)),
        Some(F::ScopeAttribute(p)) => Field::Scope(path(p, place, errs)),
    }
}

fn trace_keep(k: Option<&proto::TraceSamplingConfig>, errs: &mut Errors) -> TraceKeep {
    let place = "trace: keep";
    let Some(k) = k else {
        errs.push(place, "required");
        return TraceKeep {
            percent: 100.0,
            mode: SamplingMode::HashSeed,
            precision: 4,
            seed: 0,
            fail_closed: true,
        };
    };
    let percent = f64::from(k.percentage);
    if !(0.0..=100.0).contains(&percent) {
        errs.push(place, format!("percentage {percent} is outside 0..=100"));
    }
    let mode = match k.mode.map(proto::SamplingMode::try_from) {
        None
        | Some(Ok(proto::SamplingMode::Unspecified))
        | Some(Ok(proto::SamplingMode::HashSeed)) => SamplingMode::HashSeed,
        Some(Ok(proto::SamplingMode::Proportional)) => SamplingMode::Proportional,
        Some(Ok(proto::SamplingMode::Equalizing)) => SamplingMode::Equalizing,
        Some(Err(_)) => {
            errs.push(place, "unknown sampling mode");
            SamplingMode::HashSeed
        }
    };
    let precision = k.sampling_precision.unwrap_or(4);
    if !(1..=14).contains(&precision) {
        errs.push(
            place,
            format!("sampling_precision {precision} is outside 1..=14"),
        );
    }
    TraceKeep {
        percent,
        mode,
        precision: precision.clamp(1, 14),
        seed: k.hash_seed.unwrap_or(0),
        fail_closed: k.fail_closed.unwrap_or(true),
    }
}

fn matchers<M>(
    list: &[M],
    target: &str,
    errs: &mut Errors,
    one: fn(&M, &str, &mut Errors) -> Matcher,
) -> Vec<Matcher> {
    if list.is_empty() {
        errs.push(
            &format!("{target}: match"),
            "at least one matcher is required",
        );
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| one(m, &format!("{target}: match[{i}]"), errs))
        .collect()
}

/// Validates and compiles a policy's target. Errors are worded as the specification's
/// section 8.4 shows (`log: match[0]: invalid regex "([bad"`).
pub fn compile(policy: &proto::Policy) -> Result<Target, Vec<String>> {
    let mut errs = Errors { list: vec![] };
    let target = match &policy.target {
        None => {
            errs.list.push("policy has no target".to_string());
            None
        }
        Some(proto::policy::Target::Log(l)) => {
            let matchers = matchers(&l.r#match, "log", &mut errs, log_matcher);
            let keep = parse_keep(&l.keep).unwrap_or_else(|| {
                errs.push("log: keep", format!("invalid value {:?}", l.keep));
                LogKeep::All
            });
            let sample_key = l.sample_key.as_ref().map(|k| sample_key(k, &mut errs));
            let transform = l
                .transform
                .as_ref()
                .map(|t| transform(t, &mut errs))
                .unwrap_or_default();
            Some(Target::Log {
                matchers,
                keep,
                sample_key,
                transform,
            })
        }
        Some(proto::policy::Target::Metric(m)) => Some(Target::Metric {
            matchers: matchers(&m.r#match, "metric", &mut errs, metric_matcher),
            keep: m.keep,
        }),
        Some(proto::policy::Target::Trace(t)) => Some(Target::Trace {
            matchers: matchers(&t.r#match, "trace", &mut errs, trace_matcher),
            keep: trace_keep(t.keep.as_ref(), &mut errs),
        }),
    };
    match target {
        Some(t) if errs.list.is_empty() => Ok(t),
        _ => Err(errs.list),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_document;

    fn errors(doc: &str) -> Vec<String> {
        let p = parse_document(doc, "t").unwrap().remove(0).policy.unwrap();
        compile(&p).unwrap_err()
    }

    #[test]
    fn keep_grammar() {
        for ok in [
            "all", "none", "", "50%", ".01%", "0%", "100%", "1/s", "100/s", "1/5s", "1/300s",
            "10/5m", "1/m",
        ] {
            assert!(parse_keep(ok).is_some(), "{ok}");
        }
        for bad in [
            "banana", "1.5/s", "1/0.5m", "101%", "-1%", "0/s", "1/0s", "5/h", "50", "%",
        ] {
            assert!(parse_keep(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_error_of_a_policy_is_reported_with_its_place() {
        let errs = errors(
            r#"{"id":"x","name":"x","log":{"match":[
                {"log_field":"body","regex":"([bad"},
                {"log_attribute":[],"exists":true},
                {"log_attribute":"k","equals":{"hex_value":"xyz"}},
                {"log_field":"body"}],
              "keep":"1.5/s",
              "transform":{"redact":[{"log_field":"body","regex":"(["}],"rename":[{"from_log_attribute":"a","to":""}]}}}"#,
        );
        assert_eq!(
            errs,
            vec![
                r#"log: match[0]: invalid regex "([bad""#,
                "log: match[1]: attribute has empty path",
                r#"log: match[2]: invalid hex_value "xyz""#,
                "log: match[3]: missing match type",
                r#"log: keep: invalid value "1.5/s""#,
                r#"log: transform: redact[0]: invalid regex "([""#,
                "log: transform: rename[0]: to must not be empty",
            ]
        );
    }

    #[test]
    fn trace_keep_validation() {
        let errs = errors(
            r#"{"id":"x","name":"x","trace":{"match":[{"span_kind":"unspecified"}],"keep":{"percentage":150,"sampling_precision":20}}}"#,
        );
        assert_eq!(
            errs,
            vec![
                "trace: match[0]: span_kind is unspecified",
                "trace: keep: percentage 150 is outside 0..=100",
                "trace: keep: sampling_precision 20 is outside 1..=14",
            ]
        );
    }
}
