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

mod metrics;
#[cfg(test)]
mod tests;

pub use metrics::PeriodicReader;

use metrics::{periodic_exporter, MetricsConfig, MetricsLevel};
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
