//! Read access to the fields a policy can select, on the OTLP types of a batch.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

/// A well-known (non-attribute) field of a record, its resource or its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WellKnown {
    /// Log body.
    Body,
    /// Log severity text.
    SeverityText,
    /// Trace id of a log record or span (bytes).
    TraceId,
    /// Span id of a log record or span (bytes).
    SpanId,
    /// Parent span id of a span (bytes).
    ParentSpanId,
    /// Event name of a log record.
    EventName,
    /// W3C tracestate of a span.
    TraceState,
    /// Span or metric name.
    Name,
    /// Metric description.
    Description,
    /// Metric unit.
    Unit,
    /// Schema URL of the resource entry.
    ResourceSchemaUrl,
    /// Schema URL of the scope entry.
    ScopeSchemaUrl,
    /// Instrumentation scope name.
    ScopeName,
    /// Instrumentation scope version.
    ScopeVersion,
}

impl WellKnown {
    /// Whether the field holds bytes (identifiers), matched by string matchers as lowercase hex.
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            WellKnown::TraceId | WellKnown::SpanId | WellKnown::ParentSpanId
        )
    }
}

/// Where a matcher, sample key or transform reads a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// A well-known field.
    Well(WellKnown),
    /// An attribute of the record itself (log record, data point or span).
    Record(Vec<String>),
    /// A resource attribute.
    Resource(Vec<String>),
    /// A scope attribute.
    Scope(Vec<String>),
}

/// A field's value as matchers see it. Absent fields (and empty well-known strings or ids)
/// are `None` at the call site.
#[derive(Debug, Clone, Copy)]
pub enum FieldValue<'a> {
    /// A string.
    Str(&'a str),
    /// Bytes (ids, bytes attributes).
    Bytes(&'a [u8]),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array or map: present, but matched by nothing except `exists`.
    Other,
}

/// Walks a (possibly nested) attribute path.
pub fn lookup<'a>(attrs: &'a [KeyValue], path: &[String]) -> Option<&'a AnyValue> {
    let (first, rest) = path.split_first()?;
    let kv = attrs.iter().find(|kv| kv.key == *first)?;
    let v = kv.value.as_ref()?;
    if rest.is_empty() {
        return Some(v);
    }
    match &v.value {
        Some(any_value::Value::KvlistValue(list)) => lookup(&list.values, rest),
        _ => None,
    }
}

/// An OTLP value as a [`FieldValue`]; `None` for an empty AnyValue.
pub fn any_value(v: &AnyValue) -> Option<FieldValue<'_>> {
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => FieldValue::Str(s),
        any_value::Value::BoolValue(b) => FieldValue::Bool(*b),
        any_value::Value::IntValue(i) => FieldValue::Int(*i),
        any_value::Value::DoubleValue(d) => FieldValue::Double(*d),
        any_value::Value::BytesValue(b) => FieldValue::Bytes(b),
        _ => FieldValue::Other,
    })
}

pub(crate) fn non_empty(s: &str) -> Option<FieldValue<'_>> {
    (!s.is_empty()).then_some(FieldValue::Str(s))
}

pub(crate) fn non_empty_bytes(b: &[u8]) -> Option<FieldValue<'_>> {
    (!b.is_empty()).then_some(FieldValue::Bytes(b))
}

/// The resource and scope a record sits under.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The resource, if set.
    pub resource: Option<&'a Resource>,
    /// The schema URL of the resource entry.
    pub resource_schema_url: &'a str,
    /// The scope, if set.
    pub scope: Option<&'a InstrumentationScope>,
    /// The schema URL of the scope entry.
    pub scope_schema_url: &'a str,
}

impl<'a> Context<'a> {
    /// The resource and scope fields every signal shares.
    pub(crate) fn common(&self, field: &Field) -> Option<FieldValue<'a>> {
        match field {
            Field::Resource(p) => lookup(&self.resource?.attributes, p).and_then(any_value),
            Field::Scope(p) => lookup(&self.scope?.attributes, p).and_then(any_value),
            Field::Well(WellKnown::ResourceSchemaUrl) => non_empty(self.resource_schema_url),
            Field::Well(WellKnown::ScopeSchemaUrl) => non_empty(self.scope_schema_url),
            Field::Well(WellKnown::ScopeName) => non_empty(&self.scope?.name),
            Field::Well(WellKnown::ScopeVersion) => non_empty(&self.scope?.version),
            _ => None,
        }
    }
}

/// Anything whose fields policies can read.
pub trait Record {
    /// The value of `field`, `None` when absent.
    fn value(&self, field: &Field) -> Option<FieldValue<'_>>;
}

/// A log record in its context.
pub struct LogView<'a> {
    /// Resource and scope.
    pub ctx: Context<'a>,
    /// The record.
    pub record: &'a LogRecord,
}

impl Record for LogView<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        let r = self.record;
        match field {
            Field::Record(p) => lookup(&r.attributes, p).and_then(any_value),
            Field::Well(WellKnown::Body) => match r.body.as_ref().and_then(any_value)? {
                FieldValue::Str("") => None,
                v => Some(v),
            },
            Field::Well(WellKnown::SeverityText) => non_empty(&r.severity_text),
            Field::Well(WellKnown::TraceId) => non_empty_bytes(&r.trace_id),
            Field::Well(WellKnown::SpanId) => non_empty_bytes(&r.span_id),
            Field::Well(WellKnown::EventName) => non_empty(&r.event_name),
            other => self.ctx.common(other),
        }
    }
}

/// A metric data point (its attributes) in its metric and context.
pub struct MetricView<'a> {
    /// Resource and scope.
    pub ctx: Context<'a>,
    /// The metric.
    pub metric: &'a Metric,
    /// The data point's attributes (empty for a metric without points).
    pub point_attributes: &'a [KeyValue],
}

impl Record for MetricView<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        match field {
            Field::Record(p) => lookup(self.point_attributes, p).and_then(any_value),
            Field::Well(WellKnown::Name) => non_empty(&self.metric.name),
            Field::Well(WellKnown::Description) => non_empty(&self.metric.description),
            Field::Well(WellKnown::Unit) => non_empty(&self.metric.unit),
            other => self.ctx.common(other),
        }
    }
}

/// A span in its context.
pub struct SpanView<'a> {
    /// Resource and scope.
    pub ctx: Context<'a>,
    /// The span.
    pub span: &'a Span,
}

impl Record for SpanView<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        let s = self.span;
        match field {
            Field::Record(p) => lookup(&s.attributes, p).and_then(any_value),
            Field::Well(WellKnown::Name) => non_empty(&s.name),
            Field::Well(WellKnown::TraceId) => non_empty_bytes(&s.trace_id),
            Field::Well(WellKnown::SpanId) => non_empty_bytes(&s.span_id),
            Field::Well(WellKnown::ParentSpanId) => non_empty_bytes(&s.parent_span_id),
            Field::Well(WellKnown::TraceState) => non_empty(&s.trace_state),
            other => self.ctx.common(other),
        }
    }
}

/// Writes the lowercase hex rendering of `bytes` into `buf`, returning it as a str.
/// Identifiers fit the 64-byte buffer; longer byte strings are cut (they match nothing useful).
pub fn hex_into<'b>(bytes: &[u8], buf: &'b mut [u8; 128]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let n = bytes.len().min(buf.len() / 2);
    for (i, b) in bytes[..n].iter().enumerate() {
        buf[2 * i] = DIGITS[(b >> 4) as usize];
        buf[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(&buf[..2 * n]).unwrap_or("")
}

/// Decodes hex (either case, even length); `None` when not valid hex.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValueList;

    fn s(v: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }
    }

    #[test]
    fn nested_lookup_walks_kvlists_and_dotted_keys_stay_whole() {
        let attrs = vec![
            KeyValue {
                key: "http".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![KeyValue {
                            key: "method".into(),
                            value: Some(s("GET")),
                            ..Default::default()
                        }],
                    })),
                }),
                ..Default::default()
            },
            KeyValue {
                key: "http.method".into(),
                value: Some(s("POST")),
                ..Default::default()
            },
        ];
        let path = |p: &[&str]| p.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(lookup(&attrs, &path(&["http", "method"])), Some(&s("GET")));
        assert_eq!(lookup(&attrs, &path(&["http.method"])), Some(&s("POST")));
        assert_eq!(lookup(&attrs, &path(&["http", "status"])), None);
        assert_eq!(lookup(&attrs, &path(&["http.method", "x"])), None);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(decode_hex("4BF9ab"), Some(vec![0x4b, 0xf9, 0xab]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        let mut buf = [0u8; 128];
        assert_eq!(hex_into(&[0x4b, 0xf9, 0x0a], &mut buf), "4bf90a");
    }
}
