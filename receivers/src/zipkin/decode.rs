//! Decoders of the three Zipkin bodies the receiver takes: v2 JSON, v2 protobuf
//! (`zipkin.proto3.ListOfSpans`) and v1 JSON. Every error names the span (by position) and
//! the field that could not be read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use weir_api::zipkin_proto;

use super::model::{self, kv_str, put, tag_value, Endpoint, Kind, ZipkinSpan};

/// Parses a hex id of 1 to 16 digits as Zipkin does (leading zeros may be left out).
/// Only hex digits are taken: no sign (`from_str_radix` would take a leading `+`).
fn hex_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// A v2 JSON trace id: up to 32 hex digits, the last 16 the low half.
fn json_trace_id(s: &str) -> Result<[u8; 16], String> {
    if s.len() > 32 || s.is_empty() {
        return Err(format!("traceId {s:?} must be 1 to 32 hex digits"));
    }
    // ASCII before splitting (a multi-byte character would put the split inside it);
    // `hex_u64` checks the digits of each half.
    if !s.is_ascii() {
        return Err(format!("traceId {s:?} is not hex"));
    }
    let (high, low) = if s.len() > 16 {
        s.split_at(s.len() - 16)
    } else {
        ("0", s)
    };
    let bad = || format!("traceId {s:?} is not hex");
    let (h, l) = (
        hex_u64(high).ok_or_else(bad)?,
        hex_u64(low).ok_or_else(bad)?,
    );
    if h == 0 && l == 0 {
        return Err("traceId is zero (a valid traceId is required)".to_string());
    }
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&h.to_be_bytes());
    id[8..].copy_from_slice(&l.to_be_bytes());
    Ok(id)
}

fn json_span_id(field: &str, s: &str) -> Result<[u8; 8], String> {
    let v = hex_u64(s).ok_or_else(|| format!("{field} {s:?} must be 1 to 16 hex digits"))?;
    if v == 0 {
        return Err(format!("{field} is zero (a valid {field} is required)"));
    }
    Ok(v.to_be_bytes())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonEndpoint {
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<i32>,
}

impl JsonEndpoint {
    fn convert(self, field: &str) -> Result<Option<Endpoint>, String> {
        let ip = |s: Option<String>| -> Result<Option<IpAddr>, String> {
            match s.as_deref() {
                None | Some("") => Ok(None),
                Some(text) => text
                    .parse::<IpAddr>()
                    .map(Some)
                    .map_err(|_| format!("{field}: {text:?} is not an IP address")),
            }
        };
        let mut e = Endpoint {
            service_name: self.service_name.unwrap_or_default(),
            port: self.port.unwrap_or(0),
            ..Default::default()
        };
        // An address in the other family's field is taken as what it is, as Go's net.IP.
        for a in [ip(self.ipv4)?, ip(self.ipv6)?].into_iter().flatten() {
            match a {
                IpAddr::V4(v4) => e.ipv4 = Some(v4),
                IpAddr::V6(v6) => e.ipv6 = Some(v6),
            }
        }
        Ok((!e.is_empty()).then_some(e))
    }
}

#[derive(Deserialize)]
struct JsonAnnotation {
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpanV2 {
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    local_endpoint: Option<JsonEndpoint>,
    #[serde(default)]
    remote_endpoint: Option<JsonEndpoint>,
    #[serde(default)]
    annotations: Option<Vec<JsonAnnotation>>,
    #[serde(default)]
    tags: Option<serde_json::Map<String, serde_json::Value>>,
}

fn kind_of(s: Option<&str>) -> Kind {
    match s.unwrap_or("") {
        "CLIENT" => Kind::Client,
        "SERVER" => Kind::Server,
        "PRODUCER" => Kind::Producer,
        "CONSUMER" => Kind::Consumer,
        _ => Kind::Undetermined,
    }
}

fn convert_v2(s: JsonSpanV2) -> Result<ZipkinSpan, String> {
    let mut tags = Vec::new();
    for (k, v) in s.tags.unwrap_or_default() {
        match v {
            serde_json::Value::String(v) => tags.push((k, v)),
            other => return Err(format!("tags.{k}: {other} is not a string")),
        }
    }
    Ok(ZipkinSpan {
        trace_id: json_trace_id(&s.trace_id)?,
        id: json_span_id("id", &s.id)?,
        parent_id: match s.parent_id.as_deref() {
            None | Some("") => None,
            Some(p) => Some(json_span_id("parentId", p)?),
        },
        name: s.name.unwrap_or_default(),
        kind: kind_of(s.kind.as_deref()),
        timestamp_us: s.timestamp.unwrap_or(0).max(0) as u64,
        duration_us: s.duration.unwrap_or(0).max(0) as u64,
        local_endpoint: match s.local_endpoint {
            Some(e) => e.convert("localEndpoint")?,
            None => None,
        },
        remote_endpoint: match s.remote_endpoint {
            Some(e) => e.convert("remoteEndpoint")?,
            None => None,
        },
        annotations: s
            .annotations
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.timestamp.max(0) as u64, a.value))
            .collect(),
        tags,
    })
}

/// Decodes a Zipkin v2 JSON body (an array of spans) into OTLP.
pub fn v2_json(body: &[u8], parse_string_tags: bool) -> Result<ExportTraceServiceRequest, String> {
    let raw: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("invalid Zipkin v2 JSON: {e} (the body must be an array of spans)"))?;
    let mut spans = Vec::with_capacity(raw.len());
    for (i, v) in raw.into_iter().enumerate() {
        let s: JsonSpanV2 = serde_json::from_value(v)
            .map_err(|e| format!("invalid Zipkin v2 JSON: span {i}: {e}"))?;
        spans.push(convert_v2(s).map_err(|e| format!("invalid Zipkin v2 JSON: span {i}: {e}"))?);
    }
    model::to_otlp(spans, parse_string_tags).map_err(|e| format!("invalid Zipkin v2 span: {e}"))
}

fn proto_endpoint(
    e: Option<zipkin_proto::Endpoint>,
    field: &str,
) -> Result<Option<Endpoint>, String> {
    let Some(e) = e else { return Ok(None) };
    let ipv4 = match e.ipv4.len() {
        0 => None,
        4 => Some(Ipv4Addr::new(e.ipv4[0], e.ipv4[1], e.ipv4[2], e.ipv4[3])),
        n => return Err(format!("{field}.ipv4 has {n} bytes (4 expected)")),
    };
    let ipv6 = match e.ipv6.len() {
        0 => None,
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&e.ipv6);
            Some(Ipv6Addr::from(b))
        }
        n => return Err(format!("{field}.ipv6 has {n} bytes (16 expected)")),
    };
    let e = Endpoint {
        service_name: e.service_name,
        ipv4,
        ipv6,
        port: e.port,
    };
    Ok((!e.is_empty()).then_some(e))
}

fn convert_proto(s: zipkin_proto::Span) -> Result<ZipkinSpan, String> {
    let trace_id = match s.trace_id.len() {
        8 => {
            let mut t = [0u8; 16];
            t[8..].copy_from_slice(&s.trace_id);
            t
        }
        16 => {
            let mut t = [0u8; 16];
            t.copy_from_slice(&s.trace_id);
            t
        }
        n => return Err(format!("trace_id has {n} bytes (8 or 16 expected)")),
    };
    if trace_id == [0; 16] {
        return Err("trace_id is zero (a valid trace id is required)".to_string());
    }
    let id: [u8; 8] =
        s.id.as_slice()
            .try_into()
            .map_err(|_| format!("id has {} bytes (8 expected)", s.id.len()))?;
    if id == [0; 8] {
        return Err("id is zero (a valid span id is required)".to_string());
    }
    let parent_id = match s.parent_id.len() {
        0 => None,
        8 => Some(s.parent_id.as_slice().try_into().expect("8 bytes")),
        n => return Err(format!("parent_id has {n} bytes (8 expected)")),
    };
    let kind = match zipkin_proto::Kind::try_from(s.kind) {
        Ok(zipkin_proto::Kind::Client) => Kind::Client,
        Ok(zipkin_proto::Kind::Server) => Kind::Server,
        Ok(zipkin_proto::Kind::Producer) => Kind::Producer,
        Ok(zipkin_proto::Kind::Consumer) => Kind::Consumer,
        _ => Kind::Undetermined,
    };
    Ok(ZipkinSpan {
        trace_id,
        id,
        parent_id,
        name: s.name,
        kind,
        timestamp_us: s.timestamp,
        duration_us: s.duration,
        local_endpoint: proto_endpoint(s.local_endpoint, "local_endpoint")?,
        remote_endpoint: proto_endpoint(s.remote_endpoint, "remote_endpoint")?,
        annotations: s
            .annotations
            .into_iter()
            .map(|a| (a.timestamp, a.value))
            .collect(),
        tags: s.tags.into_iter().collect(),
    })
}

/// Decodes a Zipkin v2 protobuf body (`ListOfSpans`) into OTLP.
pub fn v2_proto(body: &[u8], parse_string_tags: bool) -> Result<ExportTraceServiceRequest, String> {
    let list = zipkin_proto::decode(body)
        .map_err(|e| format!("invalid Zipkin v2 protobuf (zipkin.proto3.ListOfSpans): {e}"))?;
    let mut spans = Vec::with_capacity(list.spans.len());
    for (i, s) in list.spans.into_iter().enumerate() {
        spans.push(
            convert_proto(s).map_err(|e| format!("invalid Zipkin v2 protobuf: span {i}: {e}"))?,
        );
    }
    model::to_otlp(spans, parse_string_tags).map_err(|e| format!("invalid Zipkin v2 span: {e}"))
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct V1Endpoint {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    ipv4: String,
    #[serde(default)]
    ipv6: String,
    #[serde(default)]
    port: i32,
}

#[derive(Deserialize)]
struct V1Annotation {
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    value: String,
    #[serde(default)]
    endpoint: Option<V1Endpoint>,
}

#[derive(Deserialize)]
struct V1BinaryAnnotation {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    endpoint: Option<V1Endpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Span {
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    duration: i64,
    #[serde(default)]
    annotations: Vec<Option<V1Annotation>>,
    #[serde(default)]
    binary_annotations: Vec<Option<V1BinaryAnnotation>>,
}

/// The service name v1 spans without an endpoint are filed under.
const V1_UNKNOWN_SERVICE: &str = "unknown-service";

fn v1_trace_id(s: &str) -> Result<[u8; 16], String> {
    let mut id = [0u8; 16];
    match s.len() {
        16 => id[8..].copy_from_slice(
            &model::hex_id::<8>(s).ok_or_else(|| format!("traceId {s:?} is not hex"))?,
        ),
        32 => {
            id = model::hex_id::<16>(s).ok_or_else(|| format!("traceId {s:?} is not hex"))?;
        }
        _ => return Err(format!("traceId {s:?} must be 16 or 32 hex digits")),
    }
    if id == [0; 16] {
        return Err("traceId is zero".to_string());
    }
    Ok(id)
}

fn v1_span_id(field: &str, s: &str) -> Result<[u8; 8], String> {
    let id = model::hex_id::<8>(s).ok_or_else(|| format!("{field} {s:?} must be 16 hex digits"))?;
    if id == [0; 8] {
        return Err(format!("{field} is zero"));
    }
    Ok(id)
}

/// v1 status sources, in the Collector's order of preference.
#[derive(Default)]
struct V1Status {
    census: Option<i32>,
    census_message: String,
    otel: Option<i32>,
    otel_message: String,
    http: Option<i32>,
    http_message: String,
    error: bool,
}

impl V1Status {
    /// Takes a binary annotation; true when it is consumed (not kept as an attribute).
    fn take(&mut self, key: &str, value: &str) -> bool {
        let int = || {
            value
                .parse::<i64>()
                .ok()
                .and_then(|v| i32::try_from(v).ok())
        };
        match key {
            "census.status_code" => {
                if let Some(c) = int() {
                    self.census = Some(if c == 0 {
                        status::StatusCode::Ok as i32
                    } else {
                        status::StatusCode::Error as i32
                    });
                }
                true
            }
            "census.status_description" | "opencensus.status_description" => {
                self.census_message = value.to_string();
                true
            }
            "otel.status_code" => {
                if let Some(c) = int() {
                    self.otel = Some(c);
                }
                true
            }
            "otel.status_description" => {
                self.otel_message = value.to_string();
                true
            }
            "http.status_code" => {
                if let Some(c) = int() {
                    self.http = Some(if (100..400).contains(&c) {
                        status::StatusCode::Unset as i32
                    } else {
                        status::StatusCode::Error as i32
                    });
                }
                false
            }
            "http.status_message" => {
                self.http_message = value.to_string();
                false
            }
            "error" => {
                self.error = true;
                true
            }
            _ => false,
        }
    }

    fn status(self) -> Option<Status> {
        let (code, message) = if let Some(c) = self.census {
            (c, self.census_message)
        } else if let Some(c) = self.otel {
            (c, self.otel_message)
        } else if self.error {
            let m = if !self.census_message.is_empty() {
                self.census_message
            } else {
                self.otel_message
            };
            (status::StatusCode::Error as i32, m)
        } else if let Some(c) = self.http {
            (c, self.http_message)
        } else {
            return None;
        };
        Some(Status { code, message })
    }
}

fn v1_span(s: V1Span, parse_string_tags: bool) -> Result<(Span, V1Endpoint), String> {
    let mut span = Span {
        trace_id: v1_trace_id(&s.trace_id)?.to_vec(),
        span_id: v1_span_id("id", &s.id)?.to_vec(),
        name: s.name,
        ..Default::default()
    };
    if !s.parent_id.is_empty() {
        span.parent_span_id = v1_span_id("parentId", &s.parent_id)?.to_vec();
    }
    let micros = |us: i64| {
        if us <= 0 {
            0
        } else {
            (us as u64).saturating_mul(1000)
        }
    };
    // Annotations: the span kind from the first of cs/cr/ms/mr/ss/sr, the endpoint from the
    // first such annotation with a service name, start and end from the earliest and latest,
    // every other annotation an event.
    let mut endpoint: Option<V1Endpoint> = None;
    let mut kind_set = false;
    let (mut earliest, mut latest) = (i64::MAX, i64::MIN);
    for a in s.annotations.into_iter().flatten() {
        if a.value.is_empty() {
            continue;
        }
        let kind = match a.value.as_str() {
            "cs" | "cr" => Some(span::SpanKind::Client),
            "ms" => Some(span::SpanKind::Producer),
            "mr" => Some(span::SpanKind::Consumer),
            "ss" | "sr" => Some(span::SpanKind::Server),
            _ => None,
        };
        let named = a
            .endpoint
            .as_ref()
            .is_some_and(|e| !e.service_name.is_empty());
        if endpoint.is_none() && named && kind.is_some() {
            endpoint = a.endpoint.clone();
        }
        if let (false, Some(k)) = (kind_set, kind) {
            span.kind = k as i32;
            kind_set = true;
        }
        if a.timestamp < earliest {
            earliest = a.timestamp;
            span.start_time_unix_nano = micros(a.timestamp);
        }
        if a.timestamp > latest {
            latest = a.timestamp;
            span.end_time_unix_nano = micros(a.timestamp);
        }
        if kind.is_none() {
            span.events.push(span::Event {
                time_unix_nano: micros(a.timestamp),
                name: a.value,
                ..Default::default()
            });
        }
    }
    let mut endpoint = endpoint.unwrap_or_else(|| V1Endpoint {
        service_name: V1_UNKNOWN_SERVICE.to_string(),
        ..Default::default()
    });
    // Binary annotations: attributes, the status, and a fallback service name.
    let mut fallback_service = String::new();
    let mut local_component = String::new();
    let mut st = V1Status::default();
    let mut attrs: Vec<KeyValue> = Vec::new();
    let has_binary = !s.binary_annotations.is_empty();
    for b in s.binary_annotations.into_iter().flatten() {
        if let Some(e) = b.endpoint.as_ref().filter(|e| !e.service_name.is_empty()) {
            fallback_service = e.service_name.clone();
        }
        let mut key = b.key.as_str();
        if key == "lc" {
            key = "component";
            local_component = b.value.clone();
        }
        if st.take(key, &b.value) {
            continue;
        }
        put(&mut attrs, key, tag_value(&b.value, parse_string_tags));
    }
    if has_binary {
        if fallback_service.is_empty() {
            fallback_service = local_component;
        }
        span.status = st.status();
        if endpoint.service_name == V1_UNKNOWN_SERVICE && !fallback_service.is_empty() {
            endpoint.service_name = fallback_service;
        }
    }
    if s.timestamp != 0 {
        span.start_time_unix_nano = micros(s.timestamp);
        span.end_time_unix_nano = micros(s.timestamp.saturating_add(s.duration));
    }
    if span.start_time_unix_nano == 0 {
        // As the Collector: a span with no time at all is stamped "now" and marked.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        span.start_time_unix_nano = now;
        span.end_time_unix_nano = now;
        put(
            &mut attrs,
            model::START_TIME_ABSENT,
            weir_api::otlp::common::v1::any_value::Value::BoolValue(true),
        );
    }
    span.attributes = attrs;
    Ok((span, endpoint))
}

/// Decodes a Zipkin v1 JSON body (an array of v1 spans) into OTLP: one resource per distinct
/// endpoint (`service.name`, and `ipv4`/`ipv6`/`port` when known).
pub fn v1_json(body: &[u8], parse_string_tags: bool) -> Result<ExportTraceServiceRequest, String> {
    let raw: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("invalid Zipkin v1 JSON: {e} (the body must be an array of spans)"))?;
    let mut request = ExportTraceServiceRequest::default();
    let mut keys: Vec<String> = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let s: V1Span = serde_json::from_value(v)
            .map_err(|e| format!("invalid Zipkin v1 JSON: span {i}: {e}"))?;
        let (span, e) = v1_span(s, parse_string_tags)
            .map_err(|e| format!("invalid Zipkin v1 JSON: span {i}: {e}"))?;
        let key = format!("{}-{}-{}-{}", e.service_name, e.ipv4, e.ipv6, e.port);
        let index = match keys.iter().position(|k| *k == key) {
            Some(p) => p,
            None => {
                let mut resource = Resource::default();
                resource
                    .attributes
                    .push(kv_str("service.name", e.service_name.clone()));
                if !e.ipv4.is_empty() {
                    resource.attributes.push(kv_str("ipv4", e.ipv4.clone()));
                }
                if !e.ipv6.is_empty() {
                    resource.attributes.push(kv_str("ipv6", e.ipv6.clone()));
                }
                if e.port != 0 {
                    resource.attributes.push(kv_str("port", e.port.to_string()));
                }
                request.resource_spans.push(ResourceSpans {
                    resource: Some(resource),
                    scope_spans: vec![ScopeSpans::default()],
                    ..Default::default()
                });
                keys.push(key);
                keys.len() - 1
            }
        };
        request.resource_spans[index].scope_spans[0]
            .spans
            .push(span);
    }
    Ok(request)
}
