//! The compiled form of a condition and its evaluation against one record.

use std::borrow::Cow;

use regex::Regex;
use weir_api::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
    NumberDataPoint, SummaryDataPoint,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, Span};

use super::lexer::CmpOp;
use super::parser::Key;
use super::value::{any_as_string, compare, hex_lower, map_get, map_has, to_string_like, Val};

/// What a condition is evaluated against: one item and its resource and scope.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub resource: Option<&'a Resource>,
    pub scope: Option<&'a InstrumentationScope>,
    pub item: Item<'a>,
}

/// The item of a record.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// Resource or scope context: no item.
    None,
    Log(&'a LogRecord),
    Span(&'a Span),
    SpanEvent(&'a Span, &'a Event),
    Metric(&'a Metric),
    DataPoint(&'a Metric, Point<'a>),
}

/// One data point of any metric type.
#[derive(Debug, Clone, Copy)]
pub enum Point<'a> {
    Number(&'a NumberDataPoint),
    Histogram(&'a HistogramDataPoint),
    ExpHistogram(&'a ExponentialHistogramDataPoint),
    Summary(&'a SummaryDataPoint),
}

impl<'a> Point<'a> {
    fn attributes(self) -> &'a [KeyValue] {
        match self {
            Point::Number(p) => &p.attributes,
            Point::Histogram(p) => &p.attributes,
            Point::ExpHistogram(p) => &p.attributes,
            Point::Summary(p) => &p.attributes,
        }
    }
}

/// A runtime failure of a condition (a converter given a value it cannot take).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition {condition:?} failed: {message}")]
pub struct EvalError {
    pub condition: String,
    pub message: String,
}

/// A readable field, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ResourceAttributes,
    ResourceDroppedAttributesCount,
    ScopeName,
    ScopeVersion,
    ScopeAttributes,
    ScopeDroppedAttributesCount,
    LogBody,
    LogBodyString,
    LogAttributes,
    LogSeverityNumber,
    LogSeverityText,
    LogTime,
    LogObservedTime,
    LogTraceId,
    LogTraceIdString,
    LogSpanId,
    LogSpanIdString,
    LogFlags,
    LogDroppedAttributesCount,
    LogEventName,
    SpanName,
    SpanKind,
    SpanKindString,
    SpanStatusCode,
    SpanStatusMessage,
    SpanAttributes,
    SpanTraceId,
    SpanTraceIdString,
    SpanSpanId,
    SpanSpanIdString,
    SpanParentSpanId,
    SpanParentSpanIdString,
    SpanTraceState,
    SpanStart,
    SpanEnd,
    SpanFlags,
    SpanDroppedAttributesCount,
    SpanDroppedEventsCount,
    SpanDroppedLinksCount,
    EventName,
    EventAttributes,
    EventTime,
    EventDroppedAttributesCount,
    MetricName,
    MetricDescription,
    MetricUnit,
    MetricType,
    MetricAggregationTemporality,
    MetricIsMonotonic,
    PointAttributes,
    PointValueInt,
    PointValueDouble,
    PointStart,
    PointTime,
    PointFlags,
    PointCount,
    PointSum,
}

/// A compiled boolean expression.
#[derive(Debug)]
pub enum CBool {
    Const(bool),
    Not(Box<CBool>),
    And(Vec<CBool>),
    Or(Vec<CBool>),
    Cmp(CVal, CmpOp, CVal),
    IsMatch(CVal, Regex),
    IsRootSpan,
    HasAttrKeyOnDatapoint(String),
    HasAttrOnDatapoint(String, String),
    /// `HasPrefix` (true) / `HasSuffix` (false).
    Affix(CVal, String, bool),
    /// `IsString`, `IsInt`, `IsDouble`, `IsBool`, `IsMap`, `IsList`.
    IsType(CVal, TypeCheck),
}

/// The type an `Is*` converter tests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeCheck {
    Str,
    Int,
    Double,
    Bool,
    Map,
    List,
}

/// The target case of `ConvertCase`, `ToLowerCase`, `ToUpperCase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Lower,
    Upper,
    Snake,
    Camel,
}

/// A compiled value expression.
#[derive(Debug)]
pub enum CVal {
    Lit(Val<'static>),
    Path(Field, Vec<Key>),
    Bool(Box<CBool>),
    Len(Box<CVal>),
    Concat(Vec<CVal>, String),
    String(Box<CVal>),
    Int(Box<CVal>),
    Double(Box<CVal>),
    Case(Box<CVal>, Case),
    Sha256(Box<CVal>),
    Substring(Box<CVal>, i64, i64),
    Split(Box<CVal>, String),
    ParseJson(Box<CVal>),
}

/// One compiled condition, with its source text for error messages.
#[derive(Debug)]
pub struct Condition {
    pub(crate) expr: CBool,
    pub(crate) text: String,
}

impl Condition {
    /// The condition as configured.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the condition against one record.
    pub fn eval(&self, rec: &Record<'_>) -> Result<bool, EvalError> {
        eval_bool(&self.expr, rec).map_err(|message| EvalError {
            condition: self.text.clone(),
            message,
        })
    }
}

fn eval_bool(e: &CBool, rec: &Record<'_>) -> Result<bool, String> {
    Ok(match e {
        CBool::Const(b) => *b,
        CBool::Not(inner) => !eval_bool(inner, rec)?,
        CBool::And(items) => {
            for i in items {
                if !eval_bool(i, rec)? {
                    return Ok(false);
                }
            }
            true
        }
        CBool::Or(items) => {
            for i in items {
                if eval_bool(i, rec)? {
                    return Ok(true);
                }
            }
            false
        }
        CBool::Cmp(l, op, r) => {
            let a = eval_val(l, rec)?;
            let b = eval_val(r, rec)?;
            compare(&a, &b, *op)
        }
        CBool::IsMatch(target, re) => {
            let v = eval_val(target, rec)?;
            match to_string_like(&v) {
                Some(s) => re.is_match(&s),
                None => false,
            }
        }
        CBool::IsRootSpan => match rec.item {
            Item::Span(s) | Item::SpanEvent(s, _) => s.parent_span_id.iter().all(|b| *b == 0),
            _ => false,
        },
        CBool::Affix(target, affix, prefix) => match eval_val(target, rec)? {
            Val::Nil => false,
            Val::Str(s) => {
                if *prefix {
                    s.starts_with(affix.as_str())
                } else {
                    s.ends_with(affix.as_str())
                }
            }
            other => {
                return Err(format!(
                    "{}: expected a string, got {}",
                    if *prefix { "HasPrefix" } else { "HasSuffix" },
                    other.type_name()
                ))
            }
        },
        CBool::IsType(target, kind) => {
            let v = eval_val(target, rec)?;
            matches!(
                (kind, v),
                (TypeCheck::Str, Val::Str(_))
                    | (TypeCheck::Int, Val::Int(_))
                    | (TypeCheck::Double, Val::Float(_))
                    | (TypeCheck::Bool, Val::Bool(_))
                    | (TypeCheck::Map, Val::Map(_))
                    | (TypeCheck::List, Val::List(_))
            )
        }
        CBool::HasAttrKeyOnDatapoint(key) => any_point(rec, |attrs| map_has(attrs, key)),
        CBool::HasAttrOnDatapoint(key, value) => any_point(rec, |attrs| {
            map_get(attrs, key)
                .is_some_and(|v| matches!(Val::from_any(v), Val::Str(s) if s == value.as_str()))
        }),
    })
}

fn any_point(rec: &Record<'_>, f: impl Fn(&[KeyValue]) -> bool) -> bool {
    let Item::Metric(m) = rec.item else {
        return false;
    };
    match &m.data {
        None => false,
        Some(Data::Gauge(g)) => g.data_points.iter().any(|p| f(&p.attributes)),
        Some(Data::Sum(s)) => s.data_points.iter().any(|p| f(&p.attributes)),
        Some(Data::Histogram(h)) => h.data_points.iter().any(|p| f(&p.attributes)),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter().any(|p| f(&p.attributes)),
        Some(Data::Summary(s)) => s.data_points.iter().any(|p| f(&p.attributes)),
    }
}

/// Evaluates a compiled value against one record (the `transform` processor's editors read
/// their arguments with it).
pub fn eval_value<'x>(e: &'x CVal, rec: &Record<'x>) -> Result<Val<'x>, String> {
    eval_val(e, rec)
}

fn eval_val<'x>(e: &'x CVal, rec: &Record<'x>) -> Result<Val<'x>, String> {
    Ok(match e {
        // Borrow the literal: evaluating `body == "x"` must not copy "x" per record.
        CVal::Lit(v) => match v {
            Val::Str(s) => Val::Str(Cow::Borrowed(s.as_ref())),
            Val::Bytes(b) => Val::Bytes(Cow::Borrowed(b.as_ref())),
            other => other.clone(),
        },
        CVal::Path(field, keys) => {
            let mut v = read(*field, rec);
            for k in keys {
                v = index(v, k)?;
            }
            v
        }
        CVal::Bool(b) => Val::Bool(eval_bool(b, rec)?),
        CVal::Len(inner) => match eval_val(inner, rec)? {
            Val::Str(s) => Val::Int(s.len() as i64),
            Val::Map(m) => Val::Int(m.len() as i64),
            Val::List(l) => Val::Int(l.len() as i64),
            other => {
                return Err(format!(
                    "Len: unsupported type {} (want a string, map or list)",
                    other.type_name()
                ))
            }
        },
        CVal::Concat(items, delimiter) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(delimiter);
                }
                let v = eval_val(item, rec)?;
                match to_string_like(&v) {
                    Some(s) => out.push_str(&s),
                    None => out.push_str("<nil>"),
                }
            }
            Val::Str(Cow::Owned(out))
        }
        CVal::String(inner) => {
            let v = eval_val(inner, rec)?;
            match to_string_like(&v) {
                Some(s) => Val::Str(Cow::Owned(s.into_owned())),
                None => Val::Nil,
            }
        }
        CVal::Int(inner) => match eval_val(inner, rec)? {
            Val::Nil => Val::Nil,
            Val::Int(i) => Val::Int(i),
            // Go's int64(f): truncation toward zero.
            Val::Float(f) => Val::Int(f as i64),
            Val::Bool(b) => Val::Int(i64::from(b)),
            Val::Str(s) => match s.parse::<i64>() {
                Ok(i) => Val::Int(i),
                Err(_) => Val::Nil,
            },
            other => return Err(format!("Int: unsupported type {}", other.type_name())),
        },
        CVal::Double(inner) => match eval_val(inner, rec)? {
            Val::Nil => Val::Nil,
            Val::Int(i) => Val::Float(i as f64),
            Val::Float(f) => Val::Float(f),
            Val::Bool(b) => Val::Float(if b { 1.0 } else { 0.0 }),
            Val::Str(s) => match s.parse::<f64>() {
                Ok(f) => Val::Float(f),
                Err(_) => Val::Nil,
            },
            other => return Err(format!("Double: unsupported type {}", other.type_name())),
        },
        CVal::Case(inner, case) => match eval_val(inner, rec)? {
            Val::Nil => Val::Nil,
            Val::Str(s) => Val::Str(Cow::Owned(convert_case(&s, *case))),
            other => {
                return Err(format!(
                    "ConvertCase: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        CVal::Sha256(inner) => match eval_val(inner, rec)? {
            Val::Nil => Val::Nil,
            Val::Str(s) => {
                use sha2::Digest;
                Val::Str(Cow::Owned(hex_lower(&sha2::Sha256::digest(s.as_bytes()))))
            }
            other => {
                return Err(format!(
                    "SHA256: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        CVal::Split(inner, delimiter) => match eval_val(inner, rec)? {
            Val::Nil => Val::Nil,
            Val::Str(s) => {
                let item = |p: &str| AnyValue {
                    value: Some(weir_api::otlp::common::v1::any_value::Value::StringValue(
                        p.to_string(),
                    )),
                };
                // Go's strings.Split: an empty delimiter splits after each character.
                let items: Vec<AnyValue> = if delimiter.is_empty() {
                    s.chars()
                        .map(|c| item(c.encode_utf8(&mut [0; 4])))
                        .collect()
                } else {
                    s.split(delimiter.as_str()).map(item).collect()
                };
                Val::List(Cow::Owned(items))
            }
            other => {
                return Err(format!(
                    "Split: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        CVal::ParseJson(inner) => match eval_val(inner, rec)? {
            Val::Str(s) => parse_json(&s)?,
            other => {
                return Err(format!(
                    "ParseJSON: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
        CVal::Substring(inner, start, len) => match eval_val(inner, rec)? {
            Val::Nil => Val::Nil,
            Val::Str(s) => {
                let (start, end) = (*start as usize, (*start + *len) as usize);
                match s.get(start..end) {
                    Some(sub) => Val::Str(Cow::Owned(sub.to_string())),
                    None => {
                        return Err(format!(
                            "Substring: invalid range {start}..{end} for a string of {} bytes",
                            s.len()
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "Substring: expected a string, got {}",
                    other.type_name()
                ))
            }
        },
    })
}

/// `ConvertCase`: `snake` splits words at `_`, `-`, spaces, dots and lower-to-upper case
/// changes and joins them lower-case with `_`; `camel` joins them with each word
/// capitalised (`UpperCamelCase`, as the Collector's strcase does).
fn convert_case(s: &str, case: Case) -> String {
    match case {
        Case::Lower => s.to_lowercase(),
        Case::Upper => s.to_uppercase(),
        Case::Snake | Case::Camel => {
            let mut words: Vec<String> = Vec::new();
            let mut cur = String::new();
            let mut prev_lower = false;
            for c in s.chars() {
                if c == '_' || c == '-' || c == ' ' || c == '.' {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    prev_lower = false;
                    continue;
                }
                if c.is_uppercase() && prev_lower && !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                prev_lower = c.is_lowercase() || c.is_ascii_digit();
                cur.push(c);
            }
            if !cur.is_empty() {
                words.push(cur);
            }
            if case == Case::Snake {
                words
                    .iter()
                    .map(|w| w.to_lowercase())
                    .collect::<Vec<_>>()
                    .join("_")
            } else {
                words
                    .iter()
                    .map(|w| {
                        let lower = w.to_lowercase();
                        let mut cs = lower.chars();
                        match cs.next() {
                            Some(f) => f.to_uppercase().collect::<String>() + cs.as_str(),
                            None => String::new(),
                        }
                    })
                    .collect()
            }
        }
    }
}

fn index<'x>(v: Val<'x>, k: &Key) -> Result<Val<'x>, String> {
    match (v, k) {
        (Val::Nil, _) => Ok(Val::Nil),
        (Val::Map(Cow::Borrowed(m)), Key::Str(key)) => {
            Ok(map_get(m, key).map_or(Val::Nil, Val::from_any))
        }
        (Val::Map(Cow::Owned(_)), Key::Str(_)) => {
            Err("indexing a converter's result is not supported".into())
        }
        // Only paths are indexed (the parser refuses `F(...)[i]`), and paths borrow.
        (Val::List(Cow::Borrowed(l)), Key::Int(i)) => {
            match usize::try_from(*i).ok().and_then(|i| l.get(i)) {
                Some(item) => Ok(Val::from_any(item)),
                None => Err(format!(
                    "index {i} out of bounds (list has {} items)",
                    l.len()
                )),
            }
        }
        (Val::List(Cow::Owned(_)), Key::Int(_)) => {
            Err("indexing a converter's result is not supported".into())
        }
        (other, Key::Str(key)) => Err(format!(
            "cannot look up key {key:?} in a value of type {}",
            other.type_name()
        )),
        (other, Key::Int(i)) => Err(format!(
            "cannot index a value of type {} with [{i}]",
            other.type_name()
        )),
    }
}

fn str_val(s: &str) -> Val<'_> {
    Val::Str(Cow::Borrowed(s))
}

fn id_string(id: &[u8]) -> Val<'static> {
    // An all-zero (or empty) id has no string form: the collector returns "".
    if id.iter().all(|b| *b == 0) {
        Val::Str(Cow::Borrowed(""))
    } else {
        Val::Str(Cow::Owned(hex_lower(id)))
    }
}

fn u(x: u64) -> Val<'static> {
    Val::Int(x as i64)
}

fn read<'a>(field: Field, rec: &Record<'a>) -> Val<'a> {
    use Field::*;
    match field {
        ResourceAttributes => rec
            .resource
            .map_or(Val::Nil, |r| Val::Map(Cow::Borrowed(&r.attributes))),
        ResourceDroppedAttributesCount => Val::Int(
            rec.resource
                .map_or(0, |r| i64::from(r.dropped_attributes_count)),
        ),
        ScopeName => rec.scope.map_or(str_val(""), |s| str_val(&s.name)),
        ScopeVersion => rec.scope.map_or(str_val(""), |s| str_val(&s.version)),
        ScopeAttributes => rec
            .scope
            .map_or(Val::Nil, |s| Val::Map(Cow::Borrowed(&s.attributes))),
        ScopeDroppedAttributesCount => Val::Int(
            rec.scope
                .map_or(0, |s| i64::from(s.dropped_attributes_count)),
        ),
        _ => match rec.item {
            Item::Log(l) => read_log(field, l),
            Item::Span(s) => read_span(field, s),
            Item::SpanEvent(s, e) => match field {
                EventName => str_val(&e.name),
                EventAttributes => Val::Map(Cow::Borrowed(&e.attributes)),
                EventTime => u(e.time_unix_nano),
                EventDroppedAttributesCount => Val::Int(i64::from(e.dropped_attributes_count)),
                _ => read_span(field, s),
            },
            Item::Metric(m) => read_metric(field, m),
            Item::DataPoint(m, p) => read_point(field, p).unwrap_or_else(|| read_metric(field, m)),
            Item::None => Val::Nil,
        },
    }
}

fn read_log(field: Field, l: &LogRecord) -> Val<'_> {
    use Field::*;
    match field {
        LogBody => l.body.as_ref().map_or(Val::Nil, Val::from_any),
        LogBodyString => Val::Str(Cow::Owned(any_as_string(l.body.as_ref()))),
        LogAttributes => Val::Map(Cow::Borrowed(&l.attributes)),
        LogSeverityNumber => Val::Int(i64::from(l.severity_number)),
        LogSeverityText => str_val(&l.severity_text),
        LogTime => u(l.time_unix_nano),
        LogObservedTime => u(l.observed_time_unix_nano),
        LogTraceId => Val::Bytes(Cow::Borrowed(&l.trace_id)),
        LogTraceIdString => id_string(&l.trace_id),
        LogSpanId => Val::Bytes(Cow::Borrowed(&l.span_id)),
        LogSpanIdString => id_string(&l.span_id),
        LogFlags => Val::Int(i64::from(l.flags)),
        LogDroppedAttributesCount => Val::Int(i64::from(l.dropped_attributes_count)),
        LogEventName => str_val(&l.event_name),
        _ => Val::Nil,
    }
}

fn read_span(field: Field, s: &Span) -> Val<'_> {
    use Field::*;
    match field {
        SpanName => str_val(&s.name),
        SpanKind => Val::Int(i64::from(s.kind)),
        SpanKindString => str_val(match s.kind {
            1 => "Internal",
            2 => "Server",
            3 => "Client",
            4 => "Producer",
            5 => "Consumer",
            _ => "Unspecified",
        }),
        SpanStatusCode => Val::Int(s.status.as_ref().map_or(0, |st| i64::from(st.code))),
        SpanStatusMessage => s
            .status
            .as_ref()
            .map_or(str_val(""), |st| str_val(&st.message)),
        SpanAttributes => Val::Map(Cow::Borrowed(&s.attributes)),
        SpanTraceId => Val::Bytes(Cow::Borrowed(&s.trace_id)),
        SpanTraceIdString => id_string(&s.trace_id),
        SpanSpanId => Val::Bytes(Cow::Borrowed(&s.span_id)),
        SpanSpanIdString => id_string(&s.span_id),
        SpanParentSpanId => Val::Bytes(Cow::Borrowed(&s.parent_span_id)),
        SpanParentSpanIdString => id_string(&s.parent_span_id),
        SpanTraceState => str_val(&s.trace_state),
        SpanStart => u(s.start_time_unix_nano),
        SpanEnd => u(s.end_time_unix_nano),
        SpanFlags => Val::Int(i64::from(s.flags)),
        SpanDroppedAttributesCount => Val::Int(i64::from(s.dropped_attributes_count)),
        SpanDroppedEventsCount => Val::Int(i64::from(s.dropped_events_count)),
        SpanDroppedLinksCount => Val::Int(i64::from(s.dropped_links_count)),
        _ => Val::Nil,
    }
}

/// The `METRIC_DATA_TYPE_*` number of a metric (pmetric's `MetricType`).
pub fn metric_type(m: &Metric) -> i64 {
    match m.data {
        None => 0,
        Some(Data::Gauge(_)) => 1,
        Some(Data::Sum(_)) => 2,
        Some(Data::Histogram(_)) => 3,
        Some(Data::ExponentialHistogram(_)) => 4,
        Some(Data::Summary(_)) => 5,
    }
}

fn read_metric(field: Field, m: &Metric) -> Val<'_> {
    use Field::*;
    match field {
        MetricName => str_val(&m.name),
        MetricDescription => str_val(&m.description),
        MetricUnit => str_val(&m.unit),
        MetricType => Val::Int(metric_type(m)),
        MetricAggregationTemporality => Val::Int(i64::from(match &m.data {
            Some(Data::Sum(s)) => s.aggregation_temporality,
            Some(Data::Histogram(h)) => h.aggregation_temporality,
            Some(Data::ExponentialHistogram(h)) => h.aggregation_temporality,
            _ => 0,
        })),
        MetricIsMonotonic => Val::Bool(matches!(&m.data, Some(Data::Sum(s)) if s.is_monotonic)),
        _ => Val::Nil,
    }
}

fn read_point(field: Field, p: Point<'_>) -> Option<Val<'_>> {
    use Field::*;
    Some(match field {
        PointAttributes => Val::Map(Cow::Borrowed(p.attributes())),
        PointValueInt => match p {
            Point::Number(n) => Val::Int(match n.value {
                Some(number_data_point::Value::AsInt(i)) => i,
                _ => 0,
            }),
            _ => Val::Nil,
        },
        PointValueDouble => match p {
            Point::Number(n) => Val::Float(match n.value {
                Some(number_data_point::Value::AsDouble(d)) => d,
                _ => 0.0,
            }),
            _ => Val::Nil,
        },
        PointStart => u(match p {
            Point::Number(n) => n.start_time_unix_nano,
            Point::Histogram(h) => h.start_time_unix_nano,
            Point::ExpHistogram(h) => h.start_time_unix_nano,
            Point::Summary(s) => s.start_time_unix_nano,
        }),
        PointTime => u(match p {
            Point::Number(n) => n.time_unix_nano,
            Point::Histogram(h) => h.time_unix_nano,
            Point::ExpHistogram(h) => h.time_unix_nano,
            Point::Summary(s) => s.time_unix_nano,
        }),
        PointFlags => Val::Int(i64::from(match p {
            Point::Number(n) => n.flags,
            Point::Histogram(h) => h.flags,
            Point::ExpHistogram(h) => h.flags,
            Point::Summary(s) => s.flags,
        })),
        PointCount => match p {
            Point::Number(_) => Val::Nil,
            Point::Histogram(h) => u(h.count),
            Point::ExpHistogram(h) => u(h.count),
            Point::Summary(s) => u(s.count),
        },
        PointSum => match p {
            Point::Number(_) => Val::Nil,
            Point::Histogram(h) => Val::Float(h.sum.unwrap_or(0.0)),
            Point::ExpHistogram(h) => Val::Float(h.sum.unwrap_or(0.0)),
            Point::Summary(s) => Val::Float(s.sum),
        },
        _ => return None,
    })
}

/// `ParseJSON`: a JSON object becomes a map, an array a list (the collector's rule: every
/// number is a double, `null` an empty value); any other document is an error.
fn parse_json(text: &str) -> Result<Val<'static>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("ParseJSON: {e}"))?;
    match doc {
        serde_json::Value::Object(o) => Ok(Val::Map(Cow::Owned(json_entries(o)))),
        serde_json::Value::Array(a) => Ok(Val::List(Cow::Owned(
            a.into_iter().map(json_to_any).collect(),
        ))),
        other => Err(format!(
            "ParseJSON: the document is a {}, not an object or an array",
            match other {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Number(_) => "number",
                _ => "string",
            }
        )),
    }
}

fn json_entries(o: serde_json::Map<String, serde_json::Value>) -> Vec<KeyValue> {
    o.into_iter()
        .map(|(key, v)| KeyValue {
            key,
            value: Some(json_to_any(v)),
            ..Default::default()
        })
        .collect()
}

fn json_to_any(v: serde_json::Value) -> AnyValue {
    use weir_api::otlp::common::v1::{any_value::Value as V, ArrayValue, KeyValueList};
    let value = match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(V::BoolValue(b)),
        serde_json::Value::Number(n) => Some(V::DoubleValue(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Some(V::StringValue(s)),
        serde_json::Value::Array(a) => Some(V::ArrayValue(ArrayValue {
            values: a.into_iter().map(json_to_any).collect(),
        })),
        serde_json::Value::Object(o) => Some(V::KvlistValue(KeyValueList {
            values: json_entries(o),
        })),
    };
    AnyValue { value }
}
