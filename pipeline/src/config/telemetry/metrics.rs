//! `service.telemetry.metrics`: the level, and the readers that export Weir's own metrics
//! (periodic OTLP push over gRPC or HTTP, or a Prometheus pull endpoint), with their
//! defaults and checks.

use serde::Deserialize;
use serde_json::Value;
use weir_api::ConfigErrors;

/// Detail of the own metrics; `none` turns the endpoint off. Read without regard to case,
/// as the collector does (`Detailed`, `normal`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum MetricsLevel {
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
}

impl<'de> Deserialize<'de> for MetricsLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(MetricsLevel::None),
            "basic" => Ok(MetricsLevel::Basic),
            "normal" => Ok(MetricsLevel::Normal),
            "detailed" => Ok(MetricsLevel::Detailed),
            _ => Err(serde::de::Error::custom(format!(
                "unknown level {s:?}: expected none, basic, normal or detailed"
            ))),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct MetricsConfig {
    /// none | basic | normal | detailed. Default: normal.
    pub(super) level: MetricsLevel,
    /// Older form of the endpoint, `host:port`. Default: unset (localhost:8888).
    pub(super) address: Option<String>,
    /// Metric readers; Weir serves pull (Prometheus) readers. Default: none (localhost:8888).
    pub(super) readers: Vec<ReaderConfig>,
    /// Default: none. Accepted, ignored.
    views: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ReaderConfig {
    /// A Prometheus pull endpoint. Default: unset.
    pub(super) pull: Option<PullReader>,
    /// A push reader: Weir's own metrics sent over OTLP every interval. Default: unset.
    pub(super) periodic: Option<PeriodicConfig>,
}

/// `readers[].periodic` (the OpenTelemetry configuration schema's periodic reader).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
// `producers` and `cardinality_limits` are accepted so that collector configs load.
#[allow(dead_code)]
pub(super) struct PeriodicConfig {
    /// Milliseconds between pushes. Default: 60000.
    #[serde(default = "default_interval")]
    interval: u64,
    /// Milliseconds a push may take. Default: 30000.
    #[serde(default = "default_push_timeout")]
    timeout: u64,
    /// Required: where to push.
    exporter: PushExporter,
    /// Default: none. Accepted, ignored (no producers besides Weir's own metrics).
    #[serde(default)]
    producers: Option<Value>,
    /// Default: none. Accepted, ignored.
    #[serde(default)]
    cardinality_limits: Option<Value>,
}

fn default_interval() -> u64 {
    60_000
}

fn default_push_timeout() -> u64 {
    30_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushExporter {
    /// OTLP over HTTP or gRPC, as `protocol` says.
    #[serde(default)]
    otlp: Option<OtlpPush>,
    /// OTLP over HTTP (the configuration schema's later name).
    #[serde(default)]
    otlp_http: Option<OtlpPush>,
    /// OTLP over gRPC (the configuration schema's later name).
    #[serde(default)]
    otlp_grpc: Option<OtlpPush>,
}

/// `exporter.otlp` of a periodic reader.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
// `default_histogram_aggregation` is accepted so that collector configs load.
#[allow(dead_code)]
struct OtlpPush {
    /// `http/protobuf` (default), `http/json` or `grpc`.
    #[serde(default)]
    protocol: Option<String>,
    /// HTTP: the full URL (`http://host:4318/v1/metrics`); gRPC: `http://host:4317`.
    endpoint: String,
    /// Extra headers, as `[{name, value}]` or (the older form) a map.
    #[serde(default)]
    headers: Headers,
    /// Extra headers as `k=v,k2=v2`.
    #[serde(default)]
    headers_list: Option<String>,
    /// `gzip` or `none`. Default: none.
    #[serde(default)]
    compression: Option<String>,
    /// Milliseconds per export. Default: 10000.
    #[serde(default)]
    timeout: Option<u64>,
    /// Plain-text gRPC. Default: false.
    #[serde(default)]
    insecure: Option<bool>,
    /// CA file for the server's certificate.
    #[serde(default)]
    certificate: Option<String>,
    /// Client certificate (mutual TLS).
    #[serde(default)]
    client_certificate: Option<String>,
    /// Client key (mutual TLS).
    #[serde(default)]
    client_key: Option<String>,
    /// Only `cumulative` (the default) is what Weir pushes; others are refused.
    #[serde(default)]
    temporality_preference: Option<String>,
    /// Default: explicit. Accepted, ignored (Weir's own metrics have no histograms).
    #[serde(default)]
    default_histogram_aggregation: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderPair {
    name: String,
    value: String,
}

/// Headers in either form of the configuration schema.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Headers {
    /// `[{name, value}]` (schema 0.3 and later).
    List(Vec<HeaderPair>),
    /// `{name: value}` (schema 0.2).
    Map(std::collections::BTreeMap<String, String>),
}

impl Default for Headers {
    fn default() -> Self {
        Headers::List(Vec::new())
    }
}

/// The URL an HTTP periodic reader posts to: `endpoint` as written when it is a URL with a
/// path; without a scheme, `http://` when `insecure` and `https://` otherwise; without a
/// path, the OTLP default `/v1/metrics`.
fn http_metrics_url(endpoint: &str, insecure: Option<bool>) -> String {
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_string()
    } else if insecure == Some(true) {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
    };
    let after_scheme = with_scheme.split_once("://").map_or("", |(_, r)| r);
    if after_scheme.contains('/') {
        with_scheme
    } else {
        format!("{with_scheme}/v1/metrics")
    }
}

/// A periodic reader: push Weir's own metrics with an exporter of this type and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodicReader {
    /// Time between pushes.
    pub interval: std::time::Duration,
    /// The Weir exporter type (`otlphttp` or `otlp`).
    pub exporter_type: String,
    /// Its config, in that exporter's fields.
    pub exporter_config: Value,
    /// Where the reader is in the config (for errors).
    pub path: String,
}

pub(super) fn periodic_exporter(
    p: &PeriodicConfig,
    path: &str,
    errors: &mut ConfigErrors,
) -> Option<PeriodicReader> {
    let e = &p.exporter;
    let (o, key, implied) = match (&e.otlp, &e.otlp_http, &e.otlp_grpc) {
        (Some(o), None, None) => (o, "otlp", None),
        (None, Some(o), None) => (o, "otlp_http", Some("http/protobuf")),
        (None, None, Some(o)) => (o, "otlp_grpc", Some("grpc")),
        _ => {
            errors.push(
                format!("{path}.exporter"),
                "a periodic reader needs exactly one exporter: otlp, otlp_http or otlp_grpc",
            );
            return None;
        }
    };
    let opath = format!("{path}.exporter.{key}");
    let protocol = match (implied, o.protocol.as_deref()) {
        (Some("grpc"), Some(p)) if p != "grpc" => {
            errors.push(
                format!("{opath}.protocol"),
                format!("otlp_grpc takes protocol grpc, found {p:?}"),
            );
            "grpc".to_string()
        }
        (_, Some(p)) => p.to_string(),
        (Some(i), None) => i.to_string(),
        (None, None) => "http/protobuf".to_string(),
    };
    let mut headers = serde_json::Map::new();
    match &o.headers {
        Headers::List(list) => {
            for h in list {
                headers.insert(h.name.clone(), Value::String(h.value.clone()));
            }
        }
        Headers::Map(map) => {
            for (k, v) in map {
                headers.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    for pair in o.headers_list.iter().flat_map(|l| l.split(',')) {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        match pair.split_once('=') {
            Some((k, v)) => {
                headers.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
            }
            None => errors.push(
                format!("{opath}.headers_list"),
                format!("expected name=value pairs separated by ',', found {pair:?}"),
            ),
        }
    }
    if let Some(t) = o.temporality_preference.as_deref() {
        if t != "cumulative" {
            errors.push(
                format!("{opath}.temporality_preference"),
                format!("only cumulative is supported for Weir's own metrics, found {t:?}"),
            );
        }
    }
    if p.interval == 0 {
        errors.push(
            format!("{path}.interval"),
            "must be a positive number of milliseconds",
        );
    }
    let mut cfg = serde_json::Map::new();
    let mut tls = serde_json::Map::new();
    if let Some(i) = o.insecure {
        tls.insert("insecure".into(), Value::Bool(i));
    }
    for (from, to) in [
        (&o.certificate, "ca_file"),
        (&o.client_certificate, "cert_file"),
        (&o.client_key, "key_file"),
    ] {
        if let Some(f) = from {
            tls.insert(to.into(), Value::String(f.clone()));
        }
    }
    if !tls.is_empty() {
        cfg.insert("tls".into(), Value::Object(tls));
    }
    if !headers.is_empty() {
        cfg.insert("headers".into(), Value::Object(headers));
    }
    // The configuration schema's default is no compression (the Collector's otlp
    // exporters default to gzip).
    cfg.insert(
        "compression".into(),
        Value::String(o.compression.clone().unwrap_or_else(|| "none".to_string())),
    );
    let timeout = o.timeout.unwrap_or(10_000).min(p.timeout);
    cfg.insert("timeout".into(), Value::String(format!("{timeout}ms")));
    // Own metrics are a snapshot: a failed push is not queued or retried; the next one
    // carries the totals.
    cfg.insert(
        "sending_queue".into(),
        serde_json::json!({"enabled": false}),
    );
    cfg.insert(
        "retry_on_failure".into(),
        serde_json::json!({"enabled": false}),
    );
    let exporter_type = match protocol.as_str() {
        "http/protobuf" | "http/json" => {
            cfg.insert(
                "metrics_endpoint".into(),
                Value::String(http_metrics_url(&o.endpoint, o.insecure)),
            );
            let encoding = if protocol == "http/json" {
                "json"
            } else {
                "proto"
            };
            cfg.insert("encoding".into(), Value::String(encoding.into()));
            "otlphttp"
        }
        "grpc" => {
            cfg.insert("endpoint".into(), Value::String(o.endpoint.clone()));
            "otlp"
        }
        other => {
            errors.push(
                format!("{opath}.protocol"),
                format!("unknown protocol {other:?}: expected http/protobuf, http/json or grpc"),
            );
            return None;
        }
    };
    Some(PeriodicReader {
        interval: std::time::Duration::from_millis(p.interval.max(1)),
        exporter_type: exporter_type.to_string(),
        exporter_config: Value::Object(cfg),
        path: opath,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PullReader {
    /// Required.
    pub(super) exporter: PullExporter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PullExporter {
    /// Required.
    pub(super) prometheus: PrometheusEndpoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PrometheusEndpoint {
    /// Default: localhost.
    #[serde(default = "default_host")]
    pub(super) host: String,
    /// Default: 8888.
    #[serde(default = "default_port")]
    pub(super) port: u16,
    /// Default: false. Counters without the `_total` suffix.
    #[serde(default)]
    pub(super) without_type_suffix: bool,
    /// Default: false. Names without the unit suffix (`_seconds`, `_bytes`).
    #[serde(default)]
    pub(super) without_units: bool,
    /// Default: false. No `otel_scope_name` / `otel_scope_version` labels.
    #[serde(default)]
    pub(super) without_scope_info: bool,
    /// Default: none. Resource attributes written as labels on every `otelcol_*` series.
    #[serde(default)]
    pub(super) with_resource_constant_labels: Option<IncludeExclude>,
}

/// `with_resource_constant_labels`: which resource attributes become labels.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct IncludeExclude {
    /// Attribute keys to include (none: all).
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub(super) included: Vec<String>,
    /// Attribute keys to leave out.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub(super) excluded: Vec<String>,
}

fn default_host() -> String {
    "localhost".to_string()
}

fn default_port() -> u16 {
    8888
}
