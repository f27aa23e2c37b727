//! `zipkin`: sends traces to a Zipkin server (`POST /api/v2/spans`) as Zipkin v2 JSON or
//! protobuf, translated from OTLP with the OpenTelemetry Collector's rules.
//!
//! ```yaml
//! exporters:
//!   zipkin:
//!     endpoint: http://zipkin:9411/api/v2/spans    # required
//!     format: json                                  # json (default) | proto
//!     default_service_name: <missing service name>  # default
//!     headers: { X-Scope-OrgID: acme }
//!     timeout: 5s                                   # default
//!     retry_on_failure: { enabled: true }
//!     sending_queue: { enabled: true, queue_size: 1000 }
//!     tls: { ca_file: ca.pem }                      # for https:// endpoints
//! ```
//!
//! Translation, per span (the Collector's `zipkinv2` "from traces" rules):
//!
//! - the local endpoint's service name is the resource's `service.name`, else `faas.name`,
//!   `k8s.deployment.name` or `process.executable.name` (named in the
//!   `otlp.service.name.source` tag), else `default_service_name`;
//! - every other resource attribute, the scope (`otel.library.name`/`otel.library.version`)
//!   and the span's attributes become string tags (the span's win on a clash);
//!   `net.host.ip`/`net.host.port` fill the local endpoint, `peer.service`/`net.peer.ip`/
//!   `net.peer.port` the remote one (and leave the tags);
//! - kinds CLIENT/SERVER/PRODUCER/CONSUMER are kept, INTERNAL becomes the tag
//!   `span.kind: internal`;
//! - status ERROR sets `error: true`; a status other than UNSET sets `otel.status_code`
//!   (`Ok`/`Error`) and, with a message, `otel.status_description`;
//! - the trace state becomes `w3c.tracestate`, links `otlp.link.N` tags
//!   (`trace|span|state|{json attributes}|dropped`), events annotations (`name`, or
//!   `name|{json attributes}|dropped` when they have attributes);
//! - times are rounded to microseconds; a start before 1970-01-01T00:00:01 is left out.
//!
//! A span with an empty trace or span id fails the batch for good (as in the Collector).
//! 5xx and 429 answers, timeouts and connection failures are retried; other 4xx are not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prost::Message;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::trace::v1::{span, status, Span};
use weir_api::zipkin_proto;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, Payload, Signal, SignalSet, Stage,
};

use crate::delivery::{Delivered, Delivery, QueueSettings, RetrySettings, Sender};
use crate::otlp_settings::{header_map, http_endpoint_uri, validate_headers, TlsSettings};
use crate::SendError;

/// Default `default_service_name`.
pub const DEFAULT_SERVICE_NAME: &str = "<missing service name>";

/// Body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Zipkin v2 JSON (`application/json`), the default.
    #[default]
    Json,
    /// Zipkin v2 protobuf `ListOfSpans` (`application/x-protobuf`).
    Proto,
}

/// The `zipkin` exporter's config (the Collector's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZipkinSettings {
    /// Full URL, e.g. `http://zipkin:9411/api/v2/spans`. Required.
    #[serde(default)]
    pub endpoint: String,
    /// `json` or `proto`. Default `json`.
    #[serde(default)]
    pub format: Format,
    /// Local service name of spans whose resource names none. Default
    /// `<missing service name>`.
    #[serde(default = "default_service_name")]
    pub default_service_name: String,
    /// HTTP headers sent with every request. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time allowed for one attempt. Default `5s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS client settings for `https://` endpoints.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Retries of retryable failures.
    #[serde(default)]
    pub retry_on_failure: RetrySettings,
    /// The sending queue.
    #[serde(default)]
    pub sending_queue: QueueSettings,
}

fn default_service_name() -> String {
    DEFAULT_SERVICE_NAME.to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Factory of the `zipkin` exporter.
pub struct ZipkinFactory;

/// A validated `zipkin` config.
#[derive(Debug, Clone)]
pub struct ZipkinConfig {
    settings: ZipkinSettings,
    url: http::Uri,
    headers: HeaderMap,
}

impl ExporterFactory for ZipkinFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Traces])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let s: ZipkinSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let url = if s.endpoint.is_empty() {
            errors.push(format!("{path}.endpoint"), "is required");
            None
        } else {
            http_endpoint_uri(&s.endpoint, &format!("{path}.endpoint"), &mut errors)
        };
        errors.0.extend(s.tls.validate(&format!("{path}.tls")).0);
        validate_headers(&s.headers, &format!("{path}.headers"), &mut errors);
        if s.timeout.is_zero() {
            errors.push(format!("{path}.timeout"), "must be greater than 0");
        }
        s.retry_on_failure
            .validate(&format!("{path}.retry_on_failure"), &mut errors);
        s.sending_queue
            .validate(&format!("{path}.sending_queue"), &mut errors);
        let headers = header_map(&s.headers);
        errors.into_result(())?;
        Ok(Box::new(ZipkinConfig {
            settings: s,
            url: url.expect("checked above"),
            headers,
        }))
    }
}

impl ExporterConfig for ZipkinConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.settings.timeout));
        let tls = if self.url.scheme_str() == Some("https") {
            self.settings
                .tls
                .load(&format!("exporters.{}.tls", ctx.id), |p| {
                    ctx.resolve_path(p)
                })
                .map_err(|e| BuildError::caused_by(&ctx.id, e))?
        } else {
            weir_tls::ClientTls::plaintext()
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(tls.https_connector_with(connector, weir_tls::HttpVersions::Http1And2));
        let sender = ZipkinSender {
            client,
            url: self.url.clone(),
            headers: self.headers.clone(),
            format: self.settings.format,
            default_service_name: self.settings.default_service_name.clone(),
            timeout: self.settings.timeout,
        };
        let delivery: Arc<dyn Stage> = Arc::new(Delivery::new(
            &ctx.id,
            Arc::new(sender),
            self.settings.retry_on_failure.clone(),
            self.settings.sending_queue.clone(),
            &ctx.telemetry,
        ));
        crate::delivery::with_queue_batch(ctx, &self.settings.sending_queue, delivery)
    }
}

struct ZipkinSender {
    client: Client<weir_tls::hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: http::Uri,
    headers: HeaderMap,
    format: Format,
    default_service_name: String,
    timeout: Duration,
}

/// Zipkin's span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipkinKind {
    /// None.
    Undetermined,
    /// `CLIENT`.
    Client,
    /// `SERVER`.
    Server,
    /// `PRODUCER`.
    Producer,
    /// `CONSUMER`.
    Consumer,
}

/// A Zipkin endpoint as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZipkinEndpoint {
    /// Service name.
    pub service_name: String,
    /// IP address (either family).
    pub ip: Option<std::net::IpAddr>,
    /// Port (0: none).
    pub port: u16,
}

/// A Zipkin v2 span as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipkinSpan {
    /// 16 bytes.
    pub trace_id: [u8; 16],
    /// 8 bytes.
    pub id: [u8; 8],
    /// Parent id.
    pub parent_id: Option<[u8; 8]>,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ZipkinKind,
    /// Epoch microseconds (None: absent).
    pub timestamp_us: Option<u64>,
    /// Microseconds.
    pub duration_us: u64,
    /// Local endpoint.
    pub local_endpoint: ZipkinEndpoint,
    /// Remote endpoint.
    pub remote_endpoint: Option<ZipkinEndpoint>,
    /// `(epoch microseconds, value)`.
    pub annotations: Vec<(u64, String)>,
    /// Tags, sorted by key.
    pub tags: BTreeMap<String, String>,
}

/// An attribute value as Zipkin tag text (the Collector's `AsString`): strings as they are,
/// numbers and booleans in their usual text, arrays and maps as JSON, bytes as base64.
pub fn value_text(v: Option<&AnyValue>) -> String {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => format_double(*d),
        Some(other) => raw_json(Some(other)).to_string(),
    }
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Shortest text that reads back to the same value, without an exponent.
        format!("{d}")
    }
}

/// An attribute value as plain JSON (the Collector's `AsRaw` marshalled).
fn raw_json(v: Option<&any_value::Value>) -> Value {
    use any_value::Value as V;
    use base64::Engine;
    match v {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => json!(i),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(format_double(*d))),
        Some(V::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(V::ArrayValue(a)) => Value::Array(
            a.values
                .iter()
                .map(|v| raw_json(v.value.as_ref()))
                .collect(),
        ),
        Some(V::KvlistValue(l)) => Value::Object(attrs_json(&l.values)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

fn attrs_json(attrs: &[KeyValue]) -> Map<String, Value> {
    attrs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                raw_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
            )
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nanoseconds to microseconds, rounded to the nearest.
fn round_us(ns: u64) -> u64 {
    ns / 1000 + u64::from(ns % 1000 >= 500)
}

fn endpoint_from_tags(
    tags: &mut BTreeMap<String, String>,
    service: &str,
    remote: bool,
) -> Option<ZipkinEndpoint> {
    let mut service_name = service.to_string();
    if remote {
        if let Some(peer) = tags.remove("peer.service") {
            service_name = peer;
        }
    }
    let (ip_key, port_key) = if remote {
        ("net.peer.ip", "net.peer.port")
    } else {
        ("net.host.ip", "net.host.port")
    };
    let ip = tags.remove(ip_key).and_then(|s| s.parse().ok());
    let port = tags
        .remove(port_key)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    if service_name.is_empty() && ip.is_none() {
        return None;
    }
    Some(ZipkinEndpoint {
        service_name,
        ip,
        port,
    })
}

/// The local service name of a resource, and the resource's other attributes as tags.
fn resource_tags(
    attrs: &[KeyValue],
    default_service_name: &str,
) -> (String, BTreeMap<String, String>) {
    let mut tags: BTreeMap<String, String> = attrs
        .iter()
        .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
        .collect();
    if let Some(name) = tags.remove("service.name") {
        return (name, tags);
    }
    for key in [
        "faas.name",
        "k8s.deployment.name",
        "process.executable.name",
    ] {
        if let Some(name) = tags.remove(key) {
            tags.insert("otlp.service.name.source".to_string(), key.to_string());
            return (name, tags);
        }
    }
    (default_service_name.to_string(), tags)
}

fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id: [u8; N] = bytes.try_into().ok()?;
    (id != [0; N]).then_some(id)
}

fn convert_span(
    s: &Span,
    service: &str,
    base: &BTreeMap<String, String>,
) -> Result<ZipkinSpan, String> {
    let trace_id = id::<16>(&s.trace_id).ok_or("TraceID is invalid")?;
    let span_id = id::<8>(&s.span_id).ok_or("SpanID is invalid")?;
    let mut tags = base.clone();
    for kv in &s.attributes {
        tags.insert(kv.key.clone(), value_text(kv.value.as_ref()));
    }
    if !s.trace_state.is_empty() {
        tags.insert("w3c.tracestate".into(), s.trace_state.clone());
    }
    let kind = match span::SpanKind::try_from(s.kind) {
        Ok(span::SpanKind::Client) => ZipkinKind::Client,
        Ok(span::SpanKind::Server) => ZipkinKind::Server,
        Ok(span::SpanKind::Producer) => ZipkinKind::Producer,
        Ok(span::SpanKind::Consumer) => ZipkinKind::Consumer,
        Ok(span::SpanKind::Internal) => {
            tags.insert("span.kind".into(), "internal".into());
            ZipkinKind::Undetermined
        }
        _ => ZipkinKind::Undetermined,
    };
    let local_endpoint = endpoint_from_tags(&mut tags, service, false).unwrap_or_default();
    let remote_endpoint = endpoint_from_tags(&mut tags, "", true);
    let st = s.status.clone().unwrap_or_default();
    if st.code == status::StatusCode::Error as i32 {
        tags.insert("error".into(), "true".into());
    } else {
        tags.remove("error");
    }
    if st.code != status::StatusCode::Unset as i32 {
        let code = if st.code == status::StatusCode::Ok as i32 {
            "Ok"
        } else {
            "Error"
        };
        tags.insert("otel.status_code".into(), code.into());
        if !st.message.is_empty() {
            tags.insert("otel.status_description".into(), st.message.clone());
        }
    }
    let annotations = s
        .events
        .iter()
        .map(|e| {
            let value = if e.attributes.is_empty() && e.dropped_attributes_count == 0 {
                e.name.clone()
            } else {
                format!(
                    "{}|{}|{}",
                    e.name,
                    Value::Object(attrs_json(&e.attributes)),
                    e.dropped_attributes_count
                )
            };
            (round_us(e.time_unix_nano), value)
        })
        .collect();
    for (i, l) in s.links.iter().enumerate() {
        tags.insert(
            format!("otlp.link.{i}"),
            format!(
                "{}|{}|{}|{}|{}",
                hex(&l.trace_id),
                hex(&l.span_id),
                l.trace_state,
                Value::Object(attrs_json(&l.attributes)),
                l.dropped_attributes_count
            ),
        );
    }
    let start = s.start_time_unix_nano;
    let duration_ns = s.end_time_unix_nano.saturating_sub(start);
    let duration_us = if s.end_time_unix_nano == 0 {
        0
    } else if duration_ns > 0 && duration_ns < 1000 {
        1
    } else {
        round_us(duration_ns)
    };
    Ok(ZipkinSpan {
        trace_id,
        id: span_id,
        parent_id: id::<8>(&s.parent_span_id),
        name: s.name.clone(),
        kind,
        timestamp_us: (start >= 1_000_000_000).then(|| round_us(start)),
        duration_us,
        local_endpoint,
        remote_endpoint,
        annotations,
        tags,
    })
}

/// Translates an OTLP traces payload to Zipkin v2 spans.
pub fn to_zipkin(payload: &Payload, default_service_name: &str) -> Result<Vec<ZipkinSpan>, String> {
    let Payload::Traces(request) = payload else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let (service, mut base) = resource_tags(attrs, default_service_name);
        for ss in &rs.scope_spans {
            base.remove("otel.library.name");
            base.remove("otel.library.version");
            if let Some(scope) = &ss.scope {
                if !scope.name.is_empty() {
                    base.insert("otel.library.name".into(), scope.name.clone());
                }
                if !scope.version.is_empty() {
                    base.insert("otel.library.version".into(), scope.version.clone());
                }
            }
            for s in &ss.spans {
                out.push(convert_span(s, &service, &base)?);
            }
        }
    }
    Ok(out)
}

fn kind_name(k: ZipkinKind) -> Option<&'static str> {
    match k {
        ZipkinKind::Undetermined => None,
        ZipkinKind::Client => Some("CLIENT"),
        ZipkinKind::Server => Some("SERVER"),
        ZipkinKind::Producer => Some("PRODUCER"),
        ZipkinKind::Consumer => Some("CONSUMER"),
    }
}

fn trace_id_hex(t: &[u8; 16]) -> String {
    if t[..8] == [0; 8] {
        hex(&t[8..])
    } else {
        hex(t)
    }
}

fn endpoint_json(e: &ZipkinEndpoint) -> Value {
    let mut m = Map::new();
    if !e.service_name.is_empty() {
        m.insert("serviceName".into(), Value::String(e.service_name.clone()));
    }
    match e.ip {
        Some(std::net::IpAddr::V4(ip)) => {
            m.insert("ipv4".into(), Value::String(ip.to_string()));
        }
        Some(std::net::IpAddr::V6(ip)) => {
            m.insert("ipv6".into(), Value::String(ip.to_string()));
        }
        None => {}
    }
    if e.port != 0 {
        m.insert("port".into(), json!(e.port));
    }
    Value::Object(m)
}

/// Zipkin v2 JSON (an array of spans).
pub fn encode_json(spans: &[ZipkinSpan]) -> Vec<u8> {
    let list: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("traceId".into(), Value::String(trace_id_hex(&s.trace_id)));
            m.insert("id".into(), Value::String(hex(&s.id)));
            if let Some(p) = s.parent_id {
                m.insert("parentId".into(), Value::String(hex(&p)));
            }
            if !s.name.is_empty() {
                m.insert("name".into(), Value::String(s.name.clone()));
            }
            if let Some(k) = kind_name(s.kind) {
                m.insert("kind".into(), Value::String(k.into()));
            }
            if let Some(ts) = s.timestamp_us {
                m.insert("timestamp".into(), json!(ts));
            }
            if s.duration_us > 0 {
                m.insert("duration".into(), json!(s.duration_us));
            }
            m.insert("localEndpoint".into(), endpoint_json(&s.local_endpoint));
            if let Some(r) = &s.remote_endpoint {
                m.insert("remoteEndpoint".into(), endpoint_json(r));
            }
            if !s.annotations.is_empty() {
                m.insert(
                    "annotations".into(),
                    Value::Array(
                        s.annotations
                            .iter()
                            .map(|(ts, v)| json!({"timestamp": ts, "value": v}))
                            .collect(),
                    ),
                );
            }
            if !s.tags.is_empty() {
                m.insert("tags".into(), json!(s.tags));
            }
            Value::Object(m)
        })
        .collect();
    serde_json::to_vec(&list).expect("JSON values always serialize")
}

fn endpoint_proto(e: &ZipkinEndpoint) -> zipkin_proto::Endpoint {
    let (ipv4, ipv6) = match e.ip {
        Some(std::net::IpAddr::V4(ip)) => (ip.octets().to_vec(), Vec::new()),
        Some(std::net::IpAddr::V6(ip)) => (Vec::new(), ip.octets().to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    zipkin_proto::Endpoint {
        service_name: e.service_name.clone(),
        ipv4,
        ipv6,
        port: i32::from(e.port),
    }
}

/// Zipkin v2 protobuf (`ListOfSpans`).
pub fn encode_proto(spans: &[ZipkinSpan]) -> Vec<u8> {
    let list = zipkin_proto::ListOfSpans {
        spans: spans
            .iter()
            .map(|s| zipkin_proto::Span {
                trace_id: if s.trace_id[..8] == [0; 8] {
                    s.trace_id[8..].to_vec()
                } else {
                    s.trace_id.to_vec()
                },
                parent_id: s.parent_id.map(|p| p.to_vec()).unwrap_or_default(),
                id: s.id.to_vec(),
                kind: match s.kind {
                    ZipkinKind::Undetermined => zipkin_proto::Kind::SpanKindUnspecified,
                    ZipkinKind::Client => zipkin_proto::Kind::Client,
                    ZipkinKind::Server => zipkin_proto::Kind::Server,
                    ZipkinKind::Producer => zipkin_proto::Kind::Producer,
                    ZipkinKind::Consumer => zipkin_proto::Kind::Consumer,
                } as i32,
                name: s.name.clone(),
                timestamp: s.timestamp_us.unwrap_or(0),
                duration: s.duration_us,
                local_endpoint: Some(endpoint_proto(&s.local_endpoint)),
                remote_endpoint: s.remote_endpoint.as_ref().map(endpoint_proto),
                annotations: s
                    .annotations
                    .iter()
                    .map(|(ts, v)| zipkin_proto::Annotation {
                        timestamp: *ts,
                        value: v.clone(),
                    })
                    .collect(),
                tags: s.tags.clone(),
                debug: false,
                shared: false,
            })
            .collect(),
    };
    list.encode_to_vec()
}

#[async_trait]
impl Sender for ZipkinSender {
    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let url = self.url.to_string();
        let spans = to_zipkin(batch.payload(), &self.default_service_name).map_err(|reason| {
            SendError::Request {
                endpoint: url.clone(),
                reason: format!("cannot translate the batch to Zipkin: {reason}"),
                source: None,
            }
        })?;
        if spans.is_empty() {
            return Ok(Delivered::default());
        }
        let (body, content_type) = match self.format {
            Format::Json => (encode_json(&spans), "application/json"),
            Format::Proto => (encode_proto(&spans), "application/x-protobuf"),
        };
        let mut request = http::Request::post(self.url.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Request {
                endpoint: url.clone(),
                reason: "invalid request".into(),
                source: Some(Box::new(e)),
            })?;
        let h = request.headers_mut();
        h.extend(self.headers.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.entry(http::header::USER_AGENT)
            .or_insert(HeaderValue::from_static(concat!(
                "weir/",
                env!("CARGO_PKG_VERSION")
            )));
        let attempt = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| SendError::Transport {
                        endpoint: url.clone(),
                        source: Box::new(e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, 64 * 1024).collect().await.map_err(|e| {
                SendError::Transport {
                    endpoint: url.clone(),
                    source: e,
                }
            })?;
            Ok::<_, SendError>((parts, body.to_bytes()))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout {
                endpoint: url.clone(),
                timeout: self.timeout,
            })??;
        if parts.status.is_success() {
            return Ok(Delivered::default());
        }
        let text = String::from_utf8_lossy(&body);
        let message: String = text.trim().chars().take(200).collect();
        Err(SendError::RemoteWriteStatus {
            url,
            status: parts.status.as_u16(),
            message,
            retry_after: parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::otlp_http::parse_retry_after(v, std::time::SystemTime::now())),
        })
    }
}
