//! `service.telemetry`: Weir's own logs and metrics, in the collector's format.
//!
//! ```yaml
//! service:
//!   telemetry:
//!     logs:
//!       level: info          # debug | info | warn | error
//!       encoding: console    # console | json
//!     metrics:
//!       level: normal        # none disables the metrics endpoint
//!       readers:
//!         - pull:
//!             exporter:
//!               prometheus:
//!                 host: localhost
//!                 port: 8888
//! ```
//!
//! The older `metrics.address: host:port` form is accepted too. Collector settings that do not
//! apply to Weir (log sampling, output paths, views, resource) are accepted and ignored so that
//! collector configs start unchanged; logs always go to stderr.

use serde::Deserialize;
use serde_json::Value;
use weir_api::{parse_component_config, ConfigErrors, Exposition};

/// The metrics endpoint when none is configured (the collector's default).
pub const DEFAULT_METRICS_ADDRESS: &str = "localhost:8888";

/// `service.telemetry` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TelemetryConfig {
    /// Weir's own logs. Default: level info, console encoding.
    logs: LogsConfig,
    /// Weir's own metrics. Default: served at localhost:8888/metrics.
    metrics: MetricsConfig,
    /// Collector trace settings for its own spans. Default: none. Accepted, ignored.
    traces: Option<Value>,
    /// Resource attributes of Weir's own telemetry (`target_info`, pushed metrics); a `null`
    /// value removes a default one. Default: `service.name: weir`, `service.version`,
    /// `service.instance.id` (random per process).
    resource: Option<serde_json::Map<String, Value>>,
}

/// Log level names as the collector spells them.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    #[serde(alias = "DEBUG")]
    Debug,
    /// The default.
    #[default]
    #[serde(alias = "INFO")]
    Info,
    /// Warnings and errors.
    #[serde(alias = "WARN")]
    Warn,
    /// Errors only.
    #[serde(alias = "ERROR")]
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    /// Human-readable lines (the default).
    #[default]
    Console,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct LogsConfig {
    /// Minimum level logged. Default: info.
    level: LogLevel,
    /// console or json. Default: console.
    encoding: LogEncoding,
    /// Collector development mode. Default: false. Accepted, ignored.
    development: bool,
    /// Default: false. Accepted, ignored.
    disable_caller: bool,
    /// Default: false. Accepted, ignored.
    disable_stacktrace: bool,
    /// Default: [stderr]. Accepted, ignored: Weir logs to stderr.
    output_paths: Vec<String>,
    /// Default: [stderr]. Accepted, ignored.
    error_output_paths: Vec<String>,
    /// Default: none. Accepted, ignored.
    initial_fields: Option<Value>,
    /// Default: collector sampling. Accepted, ignored.
    sampling: Option<Value>,
    /// Default: none. Accepted, ignored.
    processors: Option<Value>,
}

/// Detail of the own metrics; `none` turns the endpoint off. Read without regard to case,
/// as the collector does (`Detailed`, `normal`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum MetricsLevel {
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
struct MetricsConfig {
    /// none | basic | normal | detailed. Default: normal.
    level: MetricsLevel,
    /// Older form of the endpoint, `host:port`. Default: unset (localhost:8888).
    address: Option<String>,
    /// Metric readers; Weir serves pull (Prometheus) readers. Default: none (localhost:8888).
    readers: Vec<ReaderConfig>,
    /// Default: none. Accepted, ignored.
    views: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ReaderConfig {
    /// A Prometheus pull endpoint. Default: unset.
    pull: Option<PullReader>,
    /// A push reader: Weir's own metrics sent over OTLP every interval. Default: unset.
    periodic: Option<PeriodicConfig>,
}

/// `readers[].periodic` (the OpenTelemetry configuration schema's periodic reader).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
// `producers` and `cardinality_limits` are accepted so that collector configs load.
#[allow(dead_code)]
struct PeriodicConfig {
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

fn periodic_exporter(
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
struct PullReader {
    /// Required.
    exporter: PullExporter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PullExporter {
    /// Required.
    prometheus: PrometheusEndpoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusEndpoint {
    /// Default: localhost.
    #[serde(default = "default_host")]
    host: String,
    /// Default: 8888.
    #[serde(default = "default_port")]
    port: u16,
    /// Default: false. Counters without the `_total` suffix.
    #[serde(default)]
    without_type_suffix: bool,
    /// Default: false. Names without the unit suffix (`_seconds`, `_bytes`).
    #[serde(default)]
    without_units: bool,
    /// Default: false. No `otel_scope_name` / `otel_scope_version` labels.
    #[serde(default)]
    without_scope_info: bool,
    /// Default: none. Resource attributes written as labels on every `otelcol_*` series.
    #[serde(default)]
    with_resource_constant_labels: Option<IncludeExclude>,
}

/// `with_resource_constant_labels`: which resource attributes become labels.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct IncludeExclude {
    /// Attribute keys to include (none: all).
    #[serde(deserialize_with = "weir_api::config::string_list")]
    included: Vec<String>,
    /// Attribute keys to leave out.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    excluded: Vec<String>,
}

fn default_host() -> String {
    "localhost".to_string()
}
fn default_port() -> u16 {
    8888
}

/// What the engine does with `service.telemetry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// Minimum level of Weir's own logs.
    pub log_level: LogLevel,
    /// Console or JSON log lines.
    pub log_encoding: LogEncoding,
    /// `host:port` addresses serving `/metrics`; empty when metrics are off.
    pub metrics_addresses: Vec<String>,
    /// How each of `metrics_addresses` writes the Collector's metrics (same order).
    pub metrics_expositions: Vec<Exposition>,
    /// The resource of Weir's own telemetry, as `(key, value)` pairs.
    pub resource: Vec<(String, String)>,
    /// Push readers of Weir's own metrics.
    pub periodic_readers: Vec<PeriodicReader>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        let resource = default_resource();
        TelemetrySettings {
            log_level: LogLevel::Info,
            log_encoding: LogEncoding::Console,
            metrics_addresses: vec![DEFAULT_METRICS_ADDRESS.to_string()],
            metrics_expositions: vec![Exposition {
                resource: resource.clone(),
                ..Default::default()
            }],
            resource,
            periodic_readers: Vec::new(),
        }
    }
}

/// The id of this process's telemetry (`service.instance.id`): a random UUID, the same for
/// the life of the process.
pub fn instance_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                format!("{:032x}", t ^ (u128::from(std::process::id()) << 64))
            })
    })
    .clone()
}

/// The default resource of Weir's own telemetry, as the Collector sets its own (its
/// command name, version and a random instance id).
fn default_resource() -> Vec<(String, String)> {
    vec![
        ("service.name".to_string(), "weir".to_string()),
        (
            "service.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("service.instance.id".to_string(), instance_id()),
    ]
}

/// Parses `service.telemetry` found at `path`.
pub fn parse_telemetry(value: &Value, path: &str) -> Result<TelemetrySettings, ConfigErrors> {
    let cfg: TelemetryConfig = parse_component_config(value, path)?;
    let mut errors = ConfigErrors::default();
    let mut resource = default_resource();
    for (k, v) in cfg.resource.iter().flatten() {
        resource.retain(|(key, _)| key != k);
        match v {
            Value::Null => {}
            Value::String(s) => resource.push((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => resource.push((k.clone(), v.to_string())),
            _ => errors.push(
                format!("{path}.resource.{k}"),
                "a resource attribute must be a string, a number, a boolean or null (to remove it)",
            ),
        }
    }
    let mut addresses = Vec::new();
    let mut expositions = Vec::new();
    let mut periodic = Vec::new();
    let plain = Exposition {
        resource: resource.clone(),
        ..Default::default()
    };
    for (i, reader) in cfg.metrics.readers.iter().enumerate() {
        let reader_path = format!("{path}.metrics.readers[{i}]");
        match (&reader.pull, &reader.periodic) {
            (Some(pull), None) => {
                let p = &pull.exporter.prometheus;
                addresses.push(format!("{}:{}", p.host, p.port));
                let constant_labels = match &p.with_resource_constant_labels {
                    None => Vec::new(),
                    Some(f) => resource
                        .iter()
                        .filter(|(k, _)| f.included.is_empty() || f.included.contains(k))
                        .filter(|(k, _)| !f.excluded.contains(k))
                        .map(|(k, v)| (weir_api::telemetry_label_name(k), v.clone()))
                        .collect(),
                };
                expositions.push(Exposition {
                    without_units: p.without_units,
                    without_type_suffix: p.without_type_suffix,
                    without_scope_info: p.without_scope_info,
                    resource: resource.clone(),
                    constant_labels,
                });
            }
            (None, Some(p)) => {
                if let Some(r) =
                    periodic_exporter(p, &format!("{reader_path}.periodic"), &mut errors)
                {
                    periodic.push(r);
                }
            }
            _ => errors.push(
                reader_path,
                "a reader needs exactly one of pull or periodic",
            ),
        }
    }
    if let Some(address) = &cfg.metrics.address {
        addresses.push(address.clone());
        expositions.push(plain.clone());
    }
    if addresses.is_empty() && cfg.metrics.readers.is_empty() {
        addresses.push(DEFAULT_METRICS_ADDRESS.to_string());
        expositions.push(plain);
    }
    if cfg.metrics.level == MetricsLevel::None {
        addresses.clear();
        expositions.clear();
        periodic.clear();
    }
    errors.into_result(TelemetrySettings {
        log_level: cfg.logs.level,
        log_encoding: cfg.logs.encoding,
        metrics_addresses: addresses,
        metrics_expositions: expositions,
        resource,
        periodic_readers: periodic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults() {
        assert_eq!(
            parse_telemetry(&Value::Null, "service.telemetry").unwrap(),
            TelemetrySettings::default()
        );
    }

    #[test]
    fn readers_address_level_and_logs() {
        let v = json!({
            "logs": {"level": "debug", "encoding": "json", "sampling": {"initial": 10}},
            "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 9999}}}}]}
        });
        let t = parse_telemetry(&v, "service.telemetry").unwrap();
        assert_eq!(t.log_level, LogLevel::Debug);
        assert_eq!(t.log_encoding, LogEncoding::Json);
        assert_eq!(t.metrics_addresses, vec!["0.0.0.0:9999"]);
        let t = parse_telemetry(
            &json!({"metrics": {"address": "127.0.0.1:1234", "level": "detailed"}}),
            "s",
        )
        .unwrap();
        assert_eq!(t.metrics_addresses, vec!["127.0.0.1:1234"]);
        let t = parse_telemetry(&json!({"metrics": {"level": "none"}}), "s").unwrap();
        assert!(t.metrics_addresses.is_empty());
    }

    #[test]
    fn errors_have_paths() {
        let e =
            parse_telemetry(&json!({"logs": {"level": "loud"}}), "service.telemetry").unwrap_err();
        assert_eq!(e.0[0].path, "service.telemetry.logs.level");
        assert!(
            e.0[0].message.starts_with("unknown variant `loud`"),
            "{}",
            e.0[0].message
        );
        let e = parse_telemetry(
            &json!({"metrics": {"readers": [{"periodic": {"exporter": {"otlp": {"protocol": "udp", "endpoint": "x", "temporality_preference": "delta"}}}}]}}),
            "service.telemetry",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "service.telemetry.metrics.readers[0].periodic.exporter.otlp.temporality_preference: only cumulative is supported for Weir's own metrics, found \"delta\"\nservice.telemetry.metrics.readers[0].periodic.exporter.otlp.protocol: unknown protocol \"udp\": expected http/protobuf, http/json or grpc"
        );
    }

    #[test]
    fn periodic_readers_become_otlp_exporters() {
        let v = json!({"metrics": {"readers": [
            {"periodic": {"interval": 5000, "exporter": {"otlp": {
                "protocol": "http/protobuf", "endpoint": "https://m.example:4318/v1/metrics",
                "headers": [{"name": "x-key", "value": "k"}], "headers_list": "a=1, b=2",
                "compression": "gzip", "timeout": 2000, "certificate": "/ca.pem"}}}},
            {"periodic": {"exporter": {"otlp": {"protocol": "grpc", "endpoint": "http://127.0.0.1:4317", "insecure": true}}}}
        ]}});
        let t = parse_telemetry(&v, "service.telemetry").unwrap();
        assert!(
            t.metrics_addresses.is_empty(),
            "readers given: no default endpoint"
        );
        assert_eq!(t.periodic_readers.len(), 2);
        let http = &t.periodic_readers[0];
        assert_eq!(http.interval, std::time::Duration::from_secs(5));
        assert_eq!(http.exporter_type, "otlphttp");
        assert_eq!(
            http.exporter_config,
            json!({"metrics_endpoint": "https://m.example:4318/v1/metrics", "encoding": "proto",
                   "headers": {"x-key": "k", "a": "1", "b": "2"}, "compression": "gzip",
                   "timeout": "2000ms", "tls": {"ca_file": "/ca.pem"},
                   "sending_queue": {"enabled": false}, "retry_on_failure": {"enabled": false}})
        );
        let grpc = &t.periodic_readers[1];
        assert_eq!(grpc.interval, std::time::Duration::from_secs(60));
        assert_eq!(grpc.exporter_type, "otlp");
        assert_eq!(grpc.exporter_config["endpoint"], "http://127.0.0.1:4317");
        assert_eq!(grpc.exporter_config["tls"], json!({"insecure": true}));
        assert_eq!(grpc.exporter_config["compression"], "none");
    }

    #[test]
    fn the_collectors_migration_test_data_loads() {
        // service/telemetry/otelconftelemetry/internal/migration/testdata: schema 0.2 (headers
        // as a map) and 0.3 (a list), a capitalised level, an endpoint without a scheme.
        let v02 = json!({"readers": [
            {"periodic": {"exporter": {"otlp": {"protocol": "http/protobuf", "endpoint": "127.0.0.1:4317",
                "headers": {"key1": "value1", "key2": "value2"}}}}},
            {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 8902}}}}]});
        let t = parse_telemetry(&json!({"metrics": v02}), "service.telemetry").unwrap();
        let r = &t.periodic_readers[0];
        assert_eq!(
            r.exporter_config["metrics_endpoint"],
            "https://127.0.0.1:4317/v1/metrics"
        );
        assert_eq!(
            r.exporter_config["headers"],
            json!({"key1": "value1", "key2": "value2"})
        );
        assert_eq!(t.metrics_addresses, vec!["127.0.0.1:8902"]);
        let v03 = json!({"level": "Detailed", "readers": [
            {"periodic": {"exporter": {"otlp": {"protocol": "http/protobuf", "endpoint": "https://127.0.0.1:4317",
                "headers": [{"name": "key1", "value": "value1"}]}}}},
            {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 8902,
                "without_scope_info": true, "without_type_suffix": true, "without_units": true}}}}]});
        let t = parse_telemetry(&json!({"metrics": v03}), "service.telemetry").unwrap();
        assert_eq!(
            t.periodic_readers[0].exporter_config["metrics_endpoint"],
            "https://127.0.0.1:4317/v1/metrics"
        );
        assert_eq!(
            t.periodic_readers[0].exporter_config["headers"],
            json!({"key1": "value1"})
        );
        assert!(t.metrics_expositions[0].without_units);
        let t = parse_telemetry(
            &json!({"metrics": {"readers": [{"periodic": {"exporter": {"otlp_grpc": {"endpoint": "http://c:4317"}}}}]}}),
            "s",
        )
        .unwrap();
        assert_eq!(t.periodic_readers[0].exporter_type, "otlp");
        let e = parse_telemetry(
            &json!({"metrics": {"level": "loud", "readers": [{"periodic": {"exporter": {}}}]}}),
            "s",
        )
        .unwrap_err();
        assert_eq!(e.0[0].path, "s.metrics.level");
        assert!(
            e.0[0]
                .message
                .contains("expected none, basic, normal or detailed"),
            "{e}"
        );
    }

    #[test]
    fn pull_reader_settings_and_resource_shape_the_exposition() {
        let v = json!({
            "resource": {"service.name": "gw", "service.instance.id": null, "region": "eu", "n": 3},
            "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                "host": "127.0.0.1", "port": 9464, "without_units": true,
                "without_type_suffix": true, "without_scope_info": true,
                "with_resource_constant_labels": {"included": ["service.name", "region"], "excluded": ["region"]}}}}}]}
        });
        let t = parse_telemetry(&v, "service.telemetry").unwrap();
        let keys: Vec<&str> = t.resource.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["service.version", "n", "region", "service.name"]);
        assert_eq!(t.metrics_addresses, vec!["127.0.0.1:9464"]);
        let x = &t.metrics_expositions[0];
        assert!(x.without_units && x.without_type_suffix && x.without_scope_info);
        assert_eq!(
            x.constant_labels,
            vec![("service_name".to_string(), "gw".to_string())]
        );
        assert_eq!(x.resource, t.resource);
        let d = TelemetrySettings::default();
        assert!(!d.metrics_expositions[0].without_units);
        assert_eq!(
            d.resource[0],
            ("service.name".to_string(), "weir".to_string())
        );
        assert_eq!(d.resource[2].0, "service.instance.id");
        assert_eq!(d.resource[2].1.len(), 36, "a UUID");
        let e = parse_telemetry(&json!({"resource": {"k": [1]}}), "service.telemetry").unwrap_err();
        assert_eq!(e.0[0].path, "service.telemetry.resource.k");
    }
}
