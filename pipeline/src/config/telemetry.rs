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
use weir_api::{parse_component_config, ConfigErrors};

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
    /// Resource attributes of the collector's own telemetry. Default: none. Accepted, ignored.
    resource: Option<Value>,
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

/// Detail of the own metrics; `none` turns the endpoint off.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum MetricsLevel {
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
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
    /// A push reader (not supported). Default: unset.
    periodic: Option<Value>,
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
// The `without_*` and label settings are accepted so collector configs load; Weir's
// exposition format is fixed.
#[allow(dead_code)]
struct PrometheusEndpoint {
    /// Default: localhost.
    #[serde(default = "default_host")]
    host: String,
    /// Default: 8888.
    #[serde(default = "default_port")]
    port: u16,
    /// Default: false. Accepted, ignored.
    #[serde(default)]
    without_type_suffix: bool,
    /// Default: false. Accepted, ignored.
    #[serde(default)]
    without_units: bool,
    /// Default: false. Accepted, ignored.
    #[serde(default)]
    without_scope_info: bool,
    /// Default: none. Accepted, ignored.
    #[serde(default)]
    with_resource_constant_labels: Option<Value>,
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
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            log_level: LogLevel::Info,
            log_encoding: LogEncoding::Console,
            metrics_addresses: vec![DEFAULT_METRICS_ADDRESS.to_string()],
        }
    }
}

/// Parses `service.telemetry` found at `path`.
pub fn parse_telemetry(value: &Value, path: &str) -> Result<TelemetrySettings, ConfigErrors> {
    let cfg: TelemetryConfig = parse_component_config(value, path)?;
    let mut errors = ConfigErrors::default();
    let mut addresses = Vec::new();
    for (i, reader) in cfg.metrics.readers.iter().enumerate() {
        let reader_path = format!("{path}.metrics.readers[{i}]");
        match (&reader.pull, &reader.periodic) {
            (Some(pull), None) => {
                let p = &pull.exporter.prometheus;
                addresses.push(format!("{}:{}", p.host, p.port));
            }
            (None, Some(_)) => errors.push(
                format!("{reader_path}.periodic"),
                "periodic (push) metric readers are not supported yet; use a pull reader with a prometheus exporter",
            ),
            _ => errors.push(reader_path, "a reader needs exactly one of pull or periodic"),
        }
    }
    if let Some(address) = &cfg.metrics.address {
        addresses.push(address.clone());
    }
    if addresses.is_empty() {
        addresses.push(DEFAULT_METRICS_ADDRESS.to_string());
    }
    if cfg.metrics.level == MetricsLevel::None {
        addresses.clear();
    }
    errors.into_result(TelemetrySettings {
        log_level: cfg.logs.level,
        log_encoding: cfg.logs.encoding,
        metrics_addresses: addresses,
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
            &json!({"metrics": {"readers": [{"periodic": {}}]}}),
            "service.telemetry",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "service.telemetry.metrics.readers[0].periodic: periodic (push) metric readers are not supported yet; use a pull reader with a prometheus exporter"
        );
    }
}
