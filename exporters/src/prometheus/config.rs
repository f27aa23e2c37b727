//! The `prometheus` exporter's config: the Collector's fields and defaults, their
//! validation, and the factory that builds the exporter from them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use weir_api::{
    parse_component_config, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, Signal, SignalSet, Stage,
};

use super::{Inner, Options, PrometheusExporter, State};

fn default_expiration() -> Duration {
    Duration::from_secs(300)
}

fn default_true() -> bool {
    true
}

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceToTelemetry {
    /// Copy every resource attribute onto each series as a label (a point attribute of the
    /// same name wins). Default `false`.
    #[serde(default)]
    pub enabled: bool,
}

/// The `prometheus` exporter's config (the Collector's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    /// `host:port` to serve `/metrics` on (`:8889` is every interface). Required.
    #[serde(default)]
    pub endpoint: String,
    /// Prefix of every metric name. Default none.
    #[serde(default)]
    pub namespace: String,
    /// Labels added to every series. Default none.
    #[serde(default)]
    pub const_labels: BTreeMap<String, String>,
    /// Write each point's own timestamp. Default `false` (the scraper stamps the scrape).
    #[serde(default)]
    pub send_timestamps: bool,
    /// Series not updated for this long are no longer served. Default `5m`.
    #[serde(default = "default_expiration", with = "humantime_serde")]
    pub metric_expiration: Duration,
    /// Resource attributes as labels. Default off.
    #[serde(default)]
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Answer in OpenMetrics when the scraper's `Accept` asks for it. Default `false`.
    #[serde(default)]
    pub enable_open_metrics: bool,
    /// Unit, `_total` and `_ratio` suffixes. Default `true`.
    #[serde(default = "default_true")]
    pub add_metric_suffixes: bool,
    /// `UnderscoreEscapingWithSuffixes` or `UnderscoreEscapingWithoutSuffixes`; when set it
    /// takes precedence over `add_metric_suffixes`. The UTF-8 strategies are refused.
    #[serde(default)]
    pub translation_strategy: Option<String>,
}

/// Factory of the `prometheus` exporter.
pub struct PrometheusFactory;

/// A validated `prometheus` config.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    settings: PrometheusSettings,
    add_suffixes: bool,
    const_labels: Vec<(String, String)>,
}

fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ExporterFactory for PrometheusFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Metrics])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let s: PrometheusSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if s.endpoint.trim().is_empty() {
            errors.push(
                format!("{path}.endpoint"),
                "is required (host:port to serve /metrics on, for example 0.0.0.0:8889)",
            );
        } else if listen_address(&s.endpoint).is_none() {
            errors.push(
                format!("{path}.endpoint"),
                format!("{:?} is not host:port", s.endpoint),
            );
        }
        if s.metric_expiration.is_zero() {
            errors.push(
                format!("{path}.metric_expiration"),
                "must be greater than 0",
            );
        }
        for name in s.const_labels.keys() {
            if !is_valid_label_name(name) {
                errors.push(
                    format!("{path}.const_labels.{name}"),
                    "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                );
            }
        }
        let add_suffixes = match s.translation_strategy.as_deref() {
            None | Some("") => s.add_metric_suffixes,
            Some("UnderscoreEscapingWithSuffixes") => true,
            Some("UnderscoreEscapingWithoutSuffixes") => false,
            Some(other @ ("NoUTF8EscapingWithSuffixes" | "NoTranslation")) => {
                errors.push(
                    format!("{path}.translation_strategy"),
                    format!("{other} (UTF-8 names) is not supported by weir; use UnderscoreEscapingWithSuffixes or UnderscoreEscapingWithoutSuffixes"),
                );
                true
            }
            Some(other) => {
                errors.push(
                    format!("{path}.translation_strategy"),
                    format!("invalid translation_strategy: {other}"),
                );
                true
            }
        };
        errors.into_result(())?;
        let const_labels = s
            .const_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Box::new(PrometheusConfig {
            settings: s,
            add_suffixes,
            const_labels,
        }))
    }
}

/// `host:port` (or `:port`, every interface) as a socket address string.
fn listen_address(endpoint: &str) -> Option<String> {
    let e = endpoint.trim();
    let addr = if let Some(port) = e.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        e.to_string()
    };
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    (!host.is_empty()).then_some(addr)
}

impl ExporterConfig for PrometheusConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let labels = [
            ("exporter", ctx.id.to_string()),
            ("signal", "metrics".to_string()),
        ];
        Ok(Arc::new(PrometheusExporter {
            id: ctx.id.clone(),
            address: listen_address(&self.settings.endpoint).unwrap_or_default(),
            state: Arc::new(State {
                options: Options {
                    namespace: self.settings.namespace.clone(),
                    add_suffixes: self.add_suffixes,
                    const_labels: self.const_labels.clone(),
                    resource_labels: self.settings.resource_to_telemetry_conversion.enabled,
                    send_timestamps: self.settings.send_timestamps,
                    expiration: self.settings.metric_expiration,
                    open_metrics: self.settings.enable_open_metrics,
                },
                inner: Mutex::new(Inner::default()),
            }),
            server: Mutex::new(None),
            accepted: ctx.telemetry.counter(
                "weir_exporter_sent_items",
                "Items (log records, spans, data points) an exporter delivered upstream",
                &labels,
            ),
            dropped: ctx.telemetry.counter(
                "weir_exporter_send_failed_items",
                "Items an exporter dropped after a permanent error, exhausted retries or a partial success",
                &labels,
            ),
        }))
    }
}
