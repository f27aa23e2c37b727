//! Jaeger's `api_v2` protobuf messages (`model.proto`, `collector.proto`) that the gRPC
//! `CollectorService.PostSpans` call carries, written by hand as prost messages (as the
//! repository's other small schemas are), and their reading into [`super::convert`]'s model.

use prost::Message;

use super::convert::{Batch, JaegerSpan, Log, Process, SpanRef, Tag, TagValue};

/// `google.protobuf.Timestamp` (and, same shape, `Duration`).
#[derive(Clone, PartialEq, Message)]
pub struct Time {
    /// Seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `jaeger.api_v2.KeyValue`.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// STRING 0, BOOL 1, INT64 2, FLOAT64 3, BINARY 4.
    #[prost(int32, tag = "2")]
    pub v_type: i32,
    /// String value.
    #[prost(string, tag = "3")]
    pub v_str: String,
    /// Bool value.
    #[prost(bool, tag = "4")]
    pub v_bool: bool,
    /// Int value.
    #[prost(int64, tag = "5")]
    pub v_int64: i64,
    /// Double value.
    #[prost(double, tag = "6")]
    pub v_float64: f64,
    /// Binary value.
    #[prost(bytes = "vec", tag = "7")]
    pub v_binary: Vec<u8>,
}

/// `jaeger.api_v2.Log`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoLog {
    /// When.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Time>,
    /// Fields.
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<KeyValue>,
}

/// `jaeger.api_v2.SpanRef`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoSpanRef {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// CHILD_OF 0, FOLLOWS_FROM 1.
    #[prost(int32, tag = "3")]
    pub ref_type: i32,
}

/// `jaeger.api_v2.Process`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoProcess {
    /// Service name.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// Tags.
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<KeyValue>,
}

/// `jaeger.api_v2.Span`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoSpan {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// Operation name.
    #[prost(string, tag = "3")]
    pub operation_name: String,
    /// References.
    #[prost(message, repeated, tag = "4")]
    pub references: Vec<ProtoSpanRef>,
    /// Flags.
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    /// Start.
    #[prost(message, optional, tag = "6")]
    pub start_time: Option<Time>,
    /// Duration.
    #[prost(message, optional, tag = "7")]
    pub duration: Option<Time>,
    /// Tags.
    #[prost(message, repeated, tag = "8")]
    pub tags: Vec<KeyValue>,
    /// Logs.
    #[prost(message, repeated, tag = "9")]
    pub logs: Vec<ProtoLog>,
    /// The span's own process.
    #[prost(message, optional, tag = "10")]
    pub process: Option<ProtoProcess>,
    /// Process id (not used).
    #[prost(string, tag = "11")]
    pub process_id: String,
    /// Warnings (not used).
    #[prost(string, repeated, tag = "12")]
    pub warnings: Vec<String>,
}

/// `jaeger.api_v2.Batch`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoBatch {
    /// Spans.
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<ProtoSpan>,
    /// Process.
    #[prost(message, optional, tag = "2")]
    pub process: Option<ProtoProcess>,
}

/// `jaeger.api_v2.PostSpansRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PostSpansRequest {
    /// The batch.
    #[prost(message, optional, tag = "1")]
    pub batch: Option<ProtoBatch>,
}

/// `jaeger.api_v2.PostSpansResponse` (empty).
#[derive(Clone, PartialEq, Message)]
pub struct PostSpansResponse {}

fn tag(kv: KeyValue) -> Tag {
    let value = match kv.v_type {
        0 => TagValue::Str(kv.v_str),
        1 => TagValue::Bool(kv.v_bool),
        2 => TagValue::Long(kv.v_int64),
        3 => TagValue::Double(kv.v_float64),
        4 => TagValue::Binary(kv.v_binary),
        other => TagValue::Unknown(other),
    };
    Tag { key: kv.key, value }
}

fn time_ns(t: Option<&Time>) -> u64 {
    let Some(t) = t else { return 0 };
    let ns = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
}

fn trace_id(b: &[u8], path: &str) -> Result<[u8; 16], String> {
    match b.len() {
        0 => Ok([0; 16]),
        16 => Ok(b.try_into().expect("16 bytes")),
        n => Err(format!("{path} has {n} bytes (16 expected)")),
    }
}

fn span_id(b: &[u8], path: &str) -> Result<[u8; 8], String> {
    match b.len() {
        0 => Ok([0; 8]),
        8 => Ok(b.try_into().expect("8 bytes")),
        n => Err(format!("{path} has {n} bytes (8 expected)")),
    }
}

fn process(p: ProtoProcess) -> Process {
    Process {
        service_name: p.service_name,
        // An empty repeated field cannot be told from an absent one in proto3.
        tags: (!p.tags.is_empty()).then(|| p.tags.into_iter().map(tag).collect()),
    }
}

/// Decodes a `PostSpansRequest` into the batch model. Errors name the span and field.
pub fn decode_post_spans(body: &[u8]) -> Result<Batch, String> {
    decode_checked(body).map_err(|e| format!("invalid jaeger.api_v2.PostSpansRequest: {e}"))
}

fn decode_checked(body: &[u8]) -> Result<Batch, String> {
    let request = PostSpansRequest::decode(body).map_err(|e| e.to_string())?;
    let b = request.batch.unwrap_or_default();
    let mut spans = Vec::with_capacity(b.spans.len());
    for (i, s) in b.spans.into_iter().enumerate() {
        let p = |f: &str| format!("batch.spans[{i}].{f}");
        let mut references = Vec::with_capacity(s.references.len());
        for (j, r) in s.references.into_iter().enumerate() {
            references.push(SpanRef {
                ref_type: r.ref_type,
                trace_id: trace_id(&r.trace_id, &p(&format!("references[{j}].trace_id")))?,
                span_id: span_id(&r.span_id, &p(&format!("references[{j}].span_id")))?,
            });
        }
        spans.push(JaegerSpan {
            trace_id: trace_id(&s.trace_id, &p("trace_id"))?,
            span_id: span_id(&s.span_id, &p("span_id"))?,
            parent_span_id: [0; 8],
            operation_name: s.operation_name,
            references,
            flags: s.flags,
            start_ns: time_ns(s.start_time.as_ref()),
            duration_ns: time_ns(s.duration.as_ref()),
            tags: s.tags.into_iter().map(tag).collect(),
            logs: s
                .logs
                .into_iter()
                .map(|l| Log {
                    time_ns: time_ns(l.timestamp.as_ref()),
                    fields: l.fields.into_iter().map(tag).collect(),
                })
                .collect(),
            process: s.process.map(process),
        });
    }
    Ok(Batch {
        process: b.process.map(process),
        spans,
    })
}
