//! Zipkin v2 spans (as decoded from JSON or protobuf) and their translation to OTLP, with the
//! OpenTelemetry Collector's rules (its `zipkinv2` translator):
//!
//! - spans are grouped into one resource per local service name (`localEndpoint.serviceName`
//!   becomes `service.name`, or the key named by the `otlp.service.name.source` tag); a span
//!   without one gets an empty resource. Tags that are resource semantic conventions
//!   (`host.name`, `telemetry.sdk.language`, ...) move to the resource.
//! - within a resource, one scope per `otel.library.name` / `otel.library.version` tag.
//! - ids are big-endian (a 64-bit trace id fills the low half); a parent id equal to the
//!   span's own id is dropped.
//! - `kind` CLIENT/SERVER/PRODUCER/CONSUMER map to the same OTLP kinds; without one, a
//!   `span.kind: internal` tag gives INTERNAL, else UNSPECIFIED.
//! - `otel.status_code` (`STATUS_CODE_*` or `Ok`/`Error`/`Unset`) and
//!   `otel.status_description` become the status; an `error` tag makes the status ERROR (the
//!   tag is kept as an attribute unless its value is `true`).
//! - `w3c.tracestate` becomes the trace state; `otlp.link.N` tags become links.
//! - annotations become events; an annotation written as `name|{json attributes}|dropped`
//!   (how the Collector's exporter writes events with attributes) is split back.
//! - other tags become string attributes (ints, doubles and booleans when
//!   `parse_string_tags` is on); endpoints add `net.host.ip`/`net.host.port` and
//!   `peer.service`/`net.peer.ip`/`net.peer.port`.
//! - timestamps are microseconds; a span without one starts at 0 and carries
//!   `otel.zipkin.absentField.startTime: true`.
//! - `debug` and `shared` have no OTLP counterpart and are dropped.

use std::net::{Ipv4Addr, Ipv6Addr};

use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

/// The local service name of spans without one (the Collector's marker; the exporter sends
/// it for resources without a service name and the receiver turns it back into none).
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";
/// Tag naming the resource key the local service name came from.
pub const TAG_SERVICE_NAME_SOURCE: &str = "otlp.service.name.source";
/// Attribute set on spans that had no start timestamp.
pub const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";

/// Zipkin's span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// No kind given.
    #[default]
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

/// A Zipkin endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    /// The service name ("" when absent).
    pub service_name: String,
    /// The IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// The IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// The port (0: absent).
    pub port: i32,
}

impl Endpoint {
    /// Whether nothing is set (Zipkin treats such an endpoint as absent).
    pub fn is_empty(&self) -> bool {
        self.service_name.is_empty() && self.ipv4.is_none() && self.ipv6.is_none() && self.port == 0
    }
}

/// A Zipkin v2 span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZipkinSpan {
    /// 128-bit trace id (a 64-bit one in the low half).
    pub trace_id: [u8; 16],
    /// Span id.
    pub id: [u8; 8],
    /// Parent span id.
    pub parent_id: Option<[u8; 8]>,
    /// Operation name.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// Start, epoch microseconds (0: absent).
    pub timestamp_us: u64,
    /// Duration, microseconds.
    pub duration_us: u64,
    /// The service that recorded the span.
    pub local_endpoint: Option<Endpoint>,
    /// The other side.
    pub remote_endpoint: Option<Endpoint>,
    /// `(epoch microseconds, value)` pairs.
    pub annotations: Vec<(u64, String)>,
    /// Tags, in the order received (a later duplicate key wins).
    pub tags: Vec<(String, String)>,
}

/// Resource semantic-convention keys (and the OpenCensus ones the Collector adds): tags with
/// these keys describe the resource, not the span.
const RESOURCE_KEYS: &[&str] = &[
    TAG_SERVICE_NAME_SOURCE,
    "otel.library.name",
    "otel.library.version",
    "opencensus.starttime",
    "opencensus.exporterversion",
    "opencensus.resourcetype",
    "cloud.provider",
    "cloud.account.id",
    "cloud.region",
    "cloud.availability_zone",
    "cloud.platform",
    "aws.ecs.container.arn",
    "aws.ecs.cluster.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.names",
    "aws.log.group.arns",
    "aws.log.stream.names",
    "aws.log.stream.arns",
    "container.name",
    "container.id",
    "container.runtime",
    "container.image.name",
    "container.image.tag",
    "deployment.environment",
    "device.id",
    "device.model.identifier",
    "device.model.name",
    "faas.name",
    "faas.id",
    "faas.version",
    "faas.instance",
    "faas.max_memory",
    "host.id",
    "host.name",
    "host.type",
    "host.arch",
    "host.image.name",
    "host.image.id",
    "host.image.version",
    "k8s.cluster.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.namespace.name",
    "k8s.pod.uid",
    "k8s.pod.name",
    "k8s.container.name",
    "k8s.replicaset.uid",
    "k8s.replicaset.name",
    "k8s.deployment.uid",
    "k8s.deployment.name",
    "k8s.statefulset.uid",
    "k8s.statefulset.name",
    "k8s.daemonset.uid",
    "k8s.daemonset.name",
    "k8s.job.uid",
    "k8s.job.name",
    "k8s.cronjob.uid",
    "k8s.cronjob.name",
    "os.type",
    "os.description",
    "os.name",
    "os.version",
    "process.pid",
    "process.executable.name",
    "process.executable.path",
    "process.command",
    "process.command_line",
    "process.command_args",
    "process.owner",
    "process.runtime.name",
    "process.runtime.version",
    "process.runtime.description",
    "service.name",
    "service.namespace",
    "service.instance.id",
    "service.version",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
    "telemetry.auto.version",
    "webengine.name",
    "webengine.version",
    "webengine.description",
];

/// Whether a tag key describes the resource (it never becomes a span attribute).
pub fn is_resource_key(key: &str) -> bool {
    RESOURCE_KEYS.contains(&key)
}

fn local_service_name(s: &ZipkinSpan) -> &str {
    match &s.local_endpoint {
        Some(e) if !e.service_name.is_empty() => &e.service_name,
        _ => NO_SERVICE_NAME,
    }
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn take(tags: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let value = tag(tags, key).map(str::to_string);
    if value.is_some() {
        tags.retain(|(k, _)| k != key);
    }
    value
}

fn library_name(s: &ZipkinSpan) -> &str {
    tag(&s.tags, "otel.library.name").unwrap_or("")
}

/// A string attribute.
pub fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

/// An attribute.
pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// Sets `key` (replacing an attribute of the same key).
pub fn put(attrs: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    match attrs.iter_mut().find(|a| a.key == key) {
        Some(a) => a.value = Some(AnyValue { value: Some(value) }),
        None => attrs.push(kv(key, value)),
    }
}

/// A tag value as an attribute value: typed when `parse_string_tags` is on and the value is
/// an integer, a decimal number or `true`/`false` (the Collector's patterns), else a string.
pub fn tag_value(value: &str, parse_string_tags: bool) -> any_value::Value {
    if parse_string_tags {
        let digits = value.strip_prefix('-').unwrap_or(value);
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if all_digits(digits) {
            // Out of range saturates, as Go's ParseInt does.
            let v = value.parse::<i64>().unwrap_or(if value.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            });
            return any_value::Value::IntValue(v);
        }
        if let Some((a, b)) = digits.split_once('.') {
            if all_digits(a) && all_digits(b) {
                if let Ok(v) = value.parse::<f64>() {
                    return any_value::Value::DoubleValue(v);
                }
            }
        }
        if value == "true" || value == "false" {
            return any_value::Value::BoolValue(value == "true");
        }
    }
    any_value::Value::StringValue(value.to_string())
}

fn status_code(value: &str) -> i32 {
    match value {
        "STATUS_CODE_OK" | "Ok" => status::StatusCode::Ok as i32,
        "STATUS_CODE_ERROR" | "Error" => status::StatusCode::Error as i32,
        _ => status::StatusCode::Unset as i32,
    }
}

/// Decodes a hex id of exactly `N` bytes.
pub fn hex_id<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// JSON attributes (of an event or link written by the Collector's exporter): strings,
/// numbers (integral ones as ints) and booleans; other values are left out.
fn json_attributes(text: &str) -> Result<Vec<KeyValue>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("attributes are not a JSON object: {e}"))?;
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let value = match v {
            serde_json::Value::String(s) => any_value::Value::StringValue(s),
            serde_json::Value::Bool(b) => any_value::Value::BoolValue(b),
            serde_json::Value::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 9.3e18 {
                    any_value::Value::IntValue(n.as_i64().unwrap_or(f as i64))
                } else {
                    any_value::Value::DoubleValue(f)
                }
            }
            _ => continue,
        };
        out.push(kv(&k, value));
    }
    Ok(out)
}

/// Splits `name|json|dropped` (the json may itself hold `|`).
fn split_encoded(value: &str, min_parts: usize) -> Option<(Vec<&str>, &str, &str)> {
    let parts: Vec<&str> = value.split('|').collect();
    if parts.len() < min_parts {
        return None;
    }
    let last = parts[parts.len() - 1];
    let head = parts[..min_parts - 2].to_vec();
    let json_start: usize = head.iter().map(|p| p.len() + 1).sum();
    let json = &value[json_start..value.len() - last.len() - 1];
    Some((head, json, last))
}

fn links(tags: &mut Vec<(String, String)>) -> Result<Vec<span::Link>, String> {
    let mut out = Vec::new();
    for i in 0..128 {
        let key = format!("otlp.link.{i}");
        let Some(value) = take(tags, &key) else {
            break;
        };
        let Some((head, json, dropped)) = split_encoded(&value, 5) else {
            continue;
        };
        let id = |s: &str, n: usize| -> Result<Vec<u8>, String> {
            let s = s.trim_matches('"');
            if s.is_empty() {
                return Ok(vec![0; n]);
            }
            let bytes = match n {
                16 => hex_id::<16>(s).map(|b| b.to_vec()),
                _ => hex_id::<8>(s).map(|b| b.to_vec()),
            };
            bytes.ok_or_else(|| format!("tag {key}: {s:?} is not a {n}-byte hex id"))
        };
        out.push(span::Link {
            trace_id: id(head[0], 16)?,
            span_id: id(head[1], 8)?,
            trace_state: head[2].to_string(),
            attributes: json_attributes(json).map_err(|e| format!("tag {key}: {e}"))?,
            dropped_attributes_count: dropped
                .parse()
                .map_err(|_| format!("tag {key}: dropped count {dropped:?} is not a number"))?,
            flags: 0,
        });
    }
    Ok(out)
}

fn events(annotations: &[(u64, String)]) -> Result<Vec<span::Event>, String> {
    let mut out = Vec::with_capacity(annotations.len());
    for (i, (ts, value)) in annotations.iter().enumerate() {
        let mut event = span::Event {
            time_unix_nano: ts.saturating_mul(1000),
            ..Default::default()
        };
        match split_encoded(value, 3) {
            None => event.name = value.split('|').next().unwrap_or("").to_string(),
            Some((head, json, dropped)) => {
                event.name = head[0].to_string();
                event.attributes =
                    json_attributes(json).map_err(|e| format!("annotation {i}: {e}"))?;
                event.dropped_attributes_count = dropped.parse().map_err(|_| {
                    format!("annotation {i}: dropped count {dropped:?} is not a number")
                })?;
            }
        }
        out.push(event);
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_otlp_span(
    z: &ZipkinSpan,
    mut tags: Vec<(String, String)>,
    parse_string_tags: bool,
) -> Result<Span, String> {
    let mut s = Span {
        trace_id: z.trace_id.to_vec(),
        span_id: z.id.to_vec(),
        name: z.name.clone(),
        ..Default::default()
    };
    if let Some(ts) = take(&mut tags, "w3c.tracestate") {
        s.trace_state = ts;
    }
    if let Some(p) = z.parent_id.filter(|p| *p != z.id) {
        s.parent_span_id = p.to_vec();
    }
    s.kind = match z.kind {
        Kind::Client => span::SpanKind::Client,
        Kind::Server => span::SpanKind::Server,
        Kind::Producer => span::SpanKind::Producer,
        Kind::Consumer => span::SpanKind::Consumer,
        Kind::Undetermined => match take(&mut tags, "span.kind").as_deref() {
            Some("internal") => span::SpanKind::Internal,
            _ => span::SpanKind::Unspecified,
        },
    } as i32;
    let mut st = Status::default();
    if let Some(code) = take(&mut tags, "otel.status_code") {
        st.code = status_code(&code);
        if let Some(m) = take(&mut tags, "otel.status_description") {
            st.message = m;
        }
    }
    if let Some(e) = tag(&tags, "error") {
        st.code = status::StatusCode::Error as i32;
        if e == "true" {
            take(&mut tags, "error");
        }
    }
    if st != Status::default() {
        s.status = Some(st);
    }
    s.links = links(&mut tags)?;
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(tags.len() + 4);
    for (k, v) in &tags {
        if is_resource_key(k) {
            continue;
        }
        put(&mut attrs, k, tag_value(v, parse_string_tags));
    }
    if let Some(l) = &z.local_endpoint {
        if let Some(ip) = l.ipv4 {
            put(
                &mut attrs,
                "net.host.ip",
                any_value::Value::StringValue(ip.to_string()),
            );
        }
        if let Some(ip) = l.ipv6 {
            put(
                &mut attrs,
                "net.host.ip",
                any_value::Value::StringValue(ip.to_string()),
            );
        }
        if l.port > 0 {
            put(
                &mut attrs,
                "net.host.port",
                any_value::Value::IntValue(l.port.into()),
            );
        }
    }
    if let Some(r) = &z.remote_endpoint {
        if !r.service_name.is_empty() {
            put(
                &mut attrs,
                "peer.service",
                any_value::Value::StringValue(r.service_name.clone()),
            );
        }
        if let Some(ip) = r.ipv4 {
            put(
                &mut attrs,
                "net.peer.ip",
                any_value::Value::StringValue(ip.to_string()),
            );
        }
        if let Some(ip) = r.ipv6 {
            put(
                &mut attrs,
                "net.peer.ip",
                any_value::Value::StringValue(ip.to_string()),
            );
        }
        if r.port > 0 {
            put(
                &mut attrs,
                "net.peer.port",
                any_value::Value::IntValue(r.port.into()),
            );
        }
    }
    let duration_ns = z.duration_us.saturating_mul(1000);
    if z.timestamp_us == 0 {
        s.start_time_unix_nano = 0;
        s.end_time_unix_nano = duration_ns;
        put(
            &mut attrs,
            START_TIME_ABSENT,
            any_value::Value::BoolValue(true),
        );
    } else {
        s.start_time_unix_nano = z.timestamp_us.saturating_mul(1000);
        s.end_time_unix_nano = s.start_time_unix_nano.saturating_add(duration_ns);
    }
    s.attributes = attrs;
    s.events = events(&z.annotations)?;
    Ok(s)
}

fn resource_of(tags: &mut Vec<(String, String)>, service: &str) -> Resource {
    let mut resource = Resource::default();
    if service == NO_SERVICE_NAME {
        return resource;
    }
    let key = take(tags, TAG_SERVICE_NAME_SOURCE).unwrap_or_else(|| "service.name".to_string());
    let key = if key.is_empty() {
        "service.name".to_string()
    } else {
        key
    };
    resource.attributes.push(kv_str(&key, service));
    for k in RESOURCE_KEYS {
        if *k == "otel.library.name" || *k == "otel.library.version" {
            continue;
        }
        if let Some(v) = take(tags, k) {
            put(
                &mut resource.attributes,
                k,
                any_value::Value::StringValue(v),
            );
        }
    }
    resource
}

/// Translates Zipkin v2 spans to one OTLP export request. Errors name the span (by its
/// position and id) and what in it could not be read.
pub fn to_otlp(
    spans: Vec<ZipkinSpan>,
    parse_string_tags: bool,
) -> Result<ExportTraceServiceRequest, String> {
    // A stable sort: spans of one service (and library) keep their order.
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&spans[a], &spans[b]);
        local_service_name(a)
            .cmp(local_service_name(b))
            .then_with(|| library_name(a).cmp(library_name(b)))
    });
    let mut request = ExportTraceServiceRequest::default();
    let mut current: Option<(String, String)> = None;
    for i in order {
        let z = &spans[i];
        let mut tags = z.tags.clone();
        let service = local_service_name(z).to_string();
        let library = library_name(z).to_string();
        let new_resource = current.as_ref().is_none_or(|(s, _)| *s != service);
        if new_resource {
            request.resource_spans.push(ResourceSpans {
                resource: Some(resource_of(&mut tags, &service)),
                ..Default::default()
            });
        }
        let rs = request.resource_spans.last_mut().expect("pushed above");
        if new_resource || current.as_ref().is_some_and(|(_, l)| *l != library) {
            let mut scope = InstrumentationScope::default();
            if !library.is_empty() {
                scope.name = take(&mut tags, "otel.library.name").unwrap_or_default();
                scope.version = take(&mut tags, "otel.library.version").unwrap_or_default();
            }
            rs.scope_spans.push(ScopeSpans {
                scope: Some(scope),
                ..Default::default()
            });
        }
        current = Some((service, library));
        let span = to_otlp_span(z, tags, parse_string_tags)
            .map_err(|e| format!("span {i} (id {}): {e}", hex(&z.id)))?;
        rs.scope_spans
            .last_mut()
            .expect("pushed above")
            .spans
            .push(span);
    }
    Ok(request)
}
