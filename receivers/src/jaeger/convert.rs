//! Jaeger batches (from Thrift or from the `api_v2` protobuf) and their translation to OTLP
//! with the OpenTelemetry Collector's rules (its `jaeger` translator):
//!
//! - the process becomes the resource: `serviceName` as `service.name`, its tags as
//!   attributes, `hostname` renamed `host.name` (unless that is set), `jaeger.version` turned
//!   into `opencensus.exporterversion: Jaeger-<version>`;
//! - span tags become attributes; `span.kind` (client, server, producer, consumer,
//!   internal) becomes the kind; the status comes from a boolean `error: true` (with
//!   `otel.status_description` or `http.status_message`), else `otel.status_code` (OK/ERROR,
//!   any case), else `http.status_code` (5xx, and 4xx on clients, are errors);
//! - logs become events, named by their `event` field;
//! - the parent is `parentSpanId` (Thrift) or the first CHILD_OF reference of the same trace
//!   (Thrift falls back to a FOLLOWS_FROM one, as Jaeger does); every other reference
//!   becomes a link with `opentracing.ref_type` (`child_of`, `follows_from`);
//! - the sampled bit of `flags` becomes the span's W3C sampled flag;
//! - protobuf only (as in the Collector): `w3c.tracestate` becomes the trace state,
//!   `otel.scope.name`/`otel.scope.version` the scope, spans carrying their own process are
//!   grouped under it, and a process named `OTLPResourceNoServiceName` gives an empty resource.

use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

/// A tag value.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    /// `STRING`.
    Str(String),
    /// `BOOL`.
    Bool(bool),
    /// `LONG` / `INT64`.
    Long(i64),
    /// `DOUBLE` / `FLOAT64`.
    Double(f64),
    /// `BINARY`.
    Binary(Vec<u8>),
    /// A type number Jaeger does not define.
    Unknown(i32),
}

/// A tag (key and typed value).
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: TagValue,
}

/// A span log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Log {
    /// Epoch nanoseconds.
    pub time_ns: u64,
    /// Fields.
    pub fields: Vec<Tag>,
}

/// A span reference.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRef {
    /// 0 CHILD_OF, 1 FOLLOWS_FROM.
    pub ref_type: i32,
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
}

/// A process.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Process {
    /// Service name.
    pub service_name: String,
    /// Tags (`None`: absent, which differs from an empty list for an empty service name).
    pub tags: Option<Vec<Tag>>,
}

/// A Jaeger span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JaegerSpan {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Thrift's `parentSpanId` (0: none).
    pub parent_span_id: [u8; 8],
    /// Operation name.
    pub operation_name: String,
    /// References.
    pub references: Vec<SpanRef>,
    /// Flags (bit 0: sampled).
    pub flags: u32,
    /// Start, epoch nanoseconds.
    pub start_ns: u64,
    /// Duration, nanoseconds.
    pub duration_ns: u64,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Logs.
    pub logs: Vec<Log>,
    /// The span's own process (protobuf only).
    pub process: Option<Process>,
}

/// A Jaeger batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The process of the spans.
    pub process: Option<Process>,
    /// The spans.
    pub spans: Vec<JaegerSpan>,
}

/// Where a batch came from: the Collector's two translators differ slightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Thrift (thrift_http, thrift_compact, thrift_binary).
    Thrift,
    /// `jaeger.api_v2` protobuf (grpc).
    Proto,
}

/// The marker process name of spans without a service name.
const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";
/// The W3C sampled bit of OTLP span flags.
const SAMPLED: u32 = 1;

fn value_of(v: &TagValue) -> any_value::Value {
    match v {
        TagValue::Str(s) => any_value::Value::StringValue(s.clone()),
        TagValue::Bool(b) => any_value::Value::BoolValue(*b),
        TagValue::Long(i) => any_value::Value::IntValue(*i),
        TagValue::Double(d) => any_value::Value::DoubleValue(*d),
        TagValue::Binary(b) => any_value::Value::BytesValue(b.clone()),
        TagValue::Unknown(t) => {
            any_value::Value::StringValue(format!("<Unknown Jaeger TagType \"{t}\">"))
        }
    }
}

fn put(attrs: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    let value = Some(AnyValue { value: Some(value) });
    match attrs.iter_mut().find(|a| a.key == key) {
        Some(a) => a.value = value,
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value,
            ..Default::default()
        }),
    }
}

fn attributes(tags: &[Tag]) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(tags.len());
    for t in tags {
        put(&mut attrs, &t.key, value_of(&t.value));
    }
    attrs
}

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn remove(attrs: &mut Vec<KeyValue>, key: &str) -> Option<any_value::Value> {
    let i = attrs.iter().position(|a| a.key == key)?;
    attrs.remove(i).value.and_then(|v| v.value)
}

/// The text of a value as pdata's `Str()`: the string, or "" for other types.
fn str_of(v: Option<&any_value::Value>) -> String {
    match v {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => String::new(),
    }
}

fn resource(process: Option<&Process>, dialect: Dialect) -> Resource {
    let mut r = Resource::default();
    let Some(p) = process else { return r };
    if dialect == Dialect::Proto && p.service_name == NO_SERVICE_NAME {
        return r;
    }
    if p.service_name.is_empty() && p.tags.is_none() {
        return r;
    }
    let mut attrs = Vec::new();
    if !p.service_name.is_empty() {
        put(
            &mut attrs,
            "service.name",
            any_value::Value::StringValue(p.service_name.clone()),
        );
    }
    for t in p.tags.iter().flatten() {
        put(&mut attrs, &t.key, value_of(&t.value));
    }
    if get(&attrs, "hostname").is_some() && get(&attrs, "host.name").is_none() {
        let v = remove(&mut attrs, "hostname").expect("present");
        put(&mut attrs, "host.name", v);
    }
    if get(&attrs, "jaeger.version").is_some()
        && get(&attrs, "opencensus.exporterversion").is_none()
    {
        let v = str_of(get(&attrs, "jaeger.version"));
        put(
            &mut attrs,
            "opencensus.exporterversion",
            any_value::Value::StringValue(format!("Jaeger-{v}")),
        );
        remove(&mut attrs, "jaeger.version");
    }
    r.attributes = attrs;
    r
}

fn kind_of(s: &str) -> span::SpanKind {
    match s {
        "client" => span::SpanKind::Client,
        "server" => span::SpanKind::Server,
        "producer" => span::SpanKind::Producer,
        "consumer" => span::SpanKind::Consumer,
        "internal" => span::SpanKind::Internal,
        _ => span::SpanKind::Unspecified,
    }
}

fn http_code(v: &any_value::Value) -> Option<i64> {
    match v {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

fn span_status(attrs: &mut Vec<KeyValue>, kind: span::SpanKind) -> Option<Status> {
    let mut code = status::StatusCode::Unset;
    let mut message = String::new();
    let mut exists = false;
    if let Some(any_value::Value::BoolValue(true)) = get(attrs, "error") {
        code = status::StatusCode::Error;
        remove(attrs, "error");
        exists = true;
        if let Some(d) = remove(attrs, "otel.status_description") {
            message = str_of(Some(&d));
        } else if let Some(m) = get(attrs, "http.status_message") {
            message = str_of(Some(m));
        }
    }
    if let Some(c) = get(attrs, "otel.status_code").cloned() {
        if !exists {
            exists = true;
            code = match str_of(Some(&c)).to_uppercase().as_str() {
                "OK" => status::StatusCode::Ok,
                "ERROR" => status::StatusCode::Error,
                _ => status::StatusCode::Unset,
            };
            if let Some(d) = remove(attrs, "otel.status_description") {
                message = str_of(Some(&d));
            }
        }
        remove(attrs, "otel.status_code");
    } else if !exists {
        if let Some(c) = get(attrs, "http.status_code").and_then(http_code) {
            // 4xx: an error for clients, not for servers (other kinds: an error); 1xx-3xx
            // are not errors; anything else is.
            let unset = (100..400).contains(&c)
                || ((400..500).contains(&c) && kind == span::SpanKind::Server);
            let from_http = if unset {
                status::StatusCode::Unset
            } else {
                status::StatusCode::Error
            };
            if from_http != status::StatusCode::Unset {
                exists = true;
                code = from_http;
            }
            if let Some(m) = get(attrs, "http.status_message") {
                message = str_of(Some(m));
            }
        }
    }
    exists.then_some(Status {
        code: code as i32,
        message,
    })
}

/// The parent: Thrift's explicit parent, else (both dialects) the first CHILD_OF reference
/// of the same trace, else (Thrift only) the first FOLLOWS_FROM one.
fn parent_of(s: &JaegerSpan, dialect: Dialect) -> [u8; 8] {
    if dialect == Dialect::Thrift && s.parent_span_id != [0; 8] {
        return s.parent_span_id;
    }
    let same_trace = |r: &&SpanRef| r.trace_id == s.trace_id;
    if let Some(r) = s
        .references
        .iter()
        .filter(same_trace)
        .find(|r| r.ref_type == 0)
    {
        return r.span_id;
    }
    if dialect == Dialect::Thrift {
        if let Some(r) = s
            .references
            .iter()
            .filter(same_trace)
            .find(|r| r.ref_type == 1)
        {
            return r.span_id;
        }
    }
    [0; 8]
}

fn to_span(s: &JaegerSpan, dialect: Dialect) -> Span {
    let mut out = Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        name: s.operation_name.clone(),
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.start_ns.saturating_add(s.duration_ns),
        flags: if s.flags & 1 == 1 { SAMPLED } else { 0 },
        ..Default::default()
    };
    let parent = parent_of(s, dialect);
    if parent != [0; 8] {
        out.parent_span_id = parent.to_vec();
    }
    let mut attrs = attributes(&s.tags);
    let mut kind = span::SpanKind::Unspecified;
    if let Some(k) = remove(&mut attrs, "span.kind") {
        kind = kind_of(&str_of(Some(&k)));
    }
    out.kind = kind as i32;
    out.status = span_status(&mut attrs, kind);
    if dialect == Dialect::Proto {
        if let Some(ts) = remove(&mut attrs, "w3c.tracestate") {
            out.trace_state = str_of(Some(&ts));
        }
    }
    out.attributes = attrs;
    out.events = s
        .logs
        .iter()
        .map(|l| {
            let mut attributes = attributes(&l.fields);
            let name = remove(&mut attributes, "event")
                .map(|v| str_of(Some(&v)))
                .unwrap_or_default();
            span::Event {
                time_unix_nano: l.time_ns,
                name,
                attributes,
                ..Default::default()
            }
        })
        .collect();
    out.links = s
        .references
        .iter()
        .filter(|r| !(r.span_id == parent && r.ref_type == 0))
        .map(|r| span::Link {
            trace_id: r.trace_id.to_vec(),
            span_id: r.span_id.to_vec(),
            attributes: vec![KeyValue {
                key: "opentracing.ref_type".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(
                        if r.ref_type == 0 {
                            "child_of"
                        } else {
                            "follows_from"
                        }
                        .into(),
                    )),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    out
}

/// Takes `otel.scope.name` (and `otel.scope.version`) out of a span's tags.
fn take_scope(s: &mut JaegerSpan) -> (String, String) {
    let take = |tags: &mut Vec<Tag>, key: &str| -> Option<String> {
        let i = tags.iter().position(|t| t.key == key)?;
        Some(match tags.remove(i).value {
            TagValue::Str(s) => s,
            _ => String::new(),
        })
    };
    match take(&mut s.tags, "otel.scope.name") {
        Some(name) => {
            let version = take(&mut s.tags, "otel.scope.version").unwrap_or_default();
            (name, version)
        }
        None => (String::new(), String::new()),
    }
}

fn is_blank(s: &JaegerSpan) -> bool {
    *s == JaegerSpan::default()
}

/// Translates a Thrift batch: one resource (the process), one scope.
pub fn thrift_to_otlp(batch: Batch) -> ExportTraceServiceRequest {
    let mut request = ExportTraceServiceRequest::default();
    if batch.process.is_none() && batch.spans.is_empty() {
        return request;
    }
    let mut rs = ResourceSpans {
        resource: Some(resource(batch.process.as_ref(), Dialect::Thrift)),
        ..Default::default()
    };
    if !batch.spans.is_empty() {
        rs.scope_spans.push(ScopeSpans {
            scope: Some(InstrumentationScope::default()),
            spans: batch
                .spans
                .iter()
                .filter(|s| !is_blank(s))
                .map(|s| to_span(s, Dialect::Thrift))
                .collect(),
            ..Default::default()
        });
    }
    request.resource_spans.push(rs);
    request
}

/// Translates `api_v2` batches: spans grouped by process (a span's own process wins over
/// its batch's), in order of first appearance; scopes from `otel.scope.*` tags.
pub fn proto_to_otlp(batches: Vec<Batch>) -> ExportTraceServiceRequest {
    let mut groups: Vec<(Option<Process>, Vec<JaegerSpan>)> = Vec::new();
    let mut group_of = |p: Option<Process>| -> usize {
        match groups.iter().position(|(q, _)| *q == p) {
            Some(i) => i,
            None => {
                groups.push((p, Vec::new()));
                groups.len() - 1
            }
        }
    };
    let mut placed: Vec<(usize, JaegerSpan)> = Vec::new();
    for b in batches {
        let own = group_of(b.process.clone());
        for s in b.spans {
            let g = match &s.process {
                None => own,
                Some(p) => group_of(Some(p.clone())),
            };
            placed.push((g, s));
        }
    }
    for (g, s) in placed {
        groups[g].1.push(s);
    }
    let mut request = ExportTraceServiceRequest::default();
    for (process, spans) in groups {
        if process.is_none() && spans.is_empty() {
            continue;
        }
        let mut rs = ResourceSpans {
            resource: Some(resource(process.as_ref(), Dialect::Proto)),
            ..Default::default()
        };
        for mut s in spans {
            if is_blank(&s) {
                continue;
            }
            let (name, version) = take_scope(&mut s);
            let span = to_span(&s, Dialect::Proto);
            let at = rs.scope_spans.iter().position(|ss| {
                ss.scope
                    .as_ref()
                    .is_some_and(|sc| sc.name == name && sc.version == version)
            });
            match at {
                Some(i) => rs.scope_spans[i].spans.push(span),
                None => rs.scope_spans.push(ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name,
                        version,
                        ..Default::default()
                    }),
                    spans: vec![span],
                    ..Default::default()
                }),
            }
        }
        request.resource_spans.push(rs);
    }
    request
}
