//! The `prometheusremotewrite` exporter's config: the Collector's fields and defaults,
//! their validation, and the factory that builds the exporter from them.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use weir_api::{
    parse_component_config, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, Signal, SignalSet, Stage,
};

use super::translate::Translator;
use super::RemoteWriteSender;
use crate::delivery::{Delivery, QueueSettings, RetrySettings};
use crate::otlp_settings::{http_endpoint_uri, validate_headers, TlsSettings};

fn default_true() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_batch() -> usize {
    3_000_000
}

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceToTelemetry {
    /// Resource attributes as labels on every series. Default `false`.
    #[serde(default)]
    pub enabled: bool,
}

/// `target_info`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    /// Write a `target_info` series per resource. Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for TargetInfo {
    fn default() -> Self {
        TargetInfo { enabled: true }
    }
}

/// `remote_write_queue`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteQueue {
    /// Queue batches (`false`: `consume` sends before it returns). Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Batches the queue holds. Default `10000`.
    #[serde(default = "default_queue_size")]
    pub queue_size: u64,
    /// Requests of one batch sent at once. Default `5`.
    #[serde(default = "default_consumers")]
    pub num_consumers: usize,
}

fn default_queue_size() -> u64 {
    10_000
}

fn default_consumers() -> usize {
    5
}

impl Default for RemoteWriteQueue {
    fn default() -> Self {
        RemoteWriteQueue {
            enabled: true,
            queue_size: default_queue_size(),
            num_consumers: default_consumers(),
        }
    }
}

fn default_retry() -> RetrySettings {
    RetrySettings {
        enabled: true,
        initial_interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(200),
        max_elapsed_time: Some(Duration::from_secs(60)),
        multiplier: 1.5,
        randomization_factor: 0.5,
    }
}

/// The `prometheusremotewrite` exporter's config (the Collector's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteSettings {
    /// The remote-write URL. Required.
    #[serde(default)]
    pub endpoint: String,
    /// Headers sent with every request. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Prefix of every metric name. Default none.
    #[serde(default)]
    pub namespace: String,
    /// Labels added to every series that does not have them. Default none.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Resource attributes as labels. Default off.
    #[serde(default)]
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Unit, `_total` and `_ratio` suffixes. Default `true`.
    #[serde(default = "default_true")]
    pub add_metric_suffixes: bool,
    /// Send metric metadata (type, help, unit) with the series. Default `false`.
    #[serde(default)]
    pub send_metadata: bool,
    /// The `target_info` series. Default on.
    #[serde(default)]
    pub target_info: TargetInfo,
    /// Largest request body before compression; bigger batches are split. Default 3000000.
    #[serde(default = "default_max_batch")]
    pub max_batch_size_bytes: usize,
    /// The sending queue. Defaults: on, 10000 batches, 5 concurrent requests.
    #[serde(default)]
    pub remote_write_queue: RemoteWriteQueue,
    /// Retries. Defaults: on, 50ms initial, 200ms max interval, 1m max elapsed time.
    #[serde(default = "default_retry")]
    pub retry_on_failure: RetrySettings,
    /// Time allowed for one request. Default `5s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS client settings for `https://` endpoints.
    #[serde(default)]
    pub tls: TlsSettings,
}

/// Factory of the `prometheusremotewrite` exporter.
pub struct RemoteWriteFactory;

/// A validated `prometheusremotewrite` config.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    settings: RemoteWriteSettings,
    uri: http::Uri,
    headers: HeaderMap,
}

impl ExporterFactory for RemoteWriteFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Metrics])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let s: RemoteWriteSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        let uri = if s.endpoint.is_empty() {
            errors.push(
                format!("{path}.endpoint"),
                "is required (for example http://prometheus:9090/api/v1/write)",
            );
            None
        } else {
            http_endpoint_uri(&s.endpoint, &format!("{path}.endpoint"), &mut errors)
        };
        validate_headers(&s.headers, &format!("{path}.headers"), &mut errors);
        let mut headers = HeaderMap::new();
        for (name, value) in &s.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.insert(n, v);
                }
                (Err(_), _) => errors.push(
                    format!("{path}.headers.{name}"),
                    "is not a valid HTTP header name",
                ),
                _ => {}
            }
        }
        for name in s.external_labels.keys() {
            let mut chars = name.chars();
            let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                errors.push(
                    format!("{path}.external_labels.{name}"),
                    "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                );
            }
        }
        if s.timeout.is_zero() {
            errors.push(format!("{path}.timeout"), "must be greater than 0");
        }
        if s.max_batch_size_bytes == 0 {
            errors.push(
                format!("{path}.max_batch_size_bytes"),
                "must be greater than 0",
            );
        }
        let q = &s.remote_write_queue;
        if q.enabled && q.queue_size == 0 {
            errors.push(
                format!("{path}.remote_write_queue.queue_size"),
                "must be greater than 0 when the queue is enabled (a 0 size queue would drop all data)",
            );
        }
        if q.num_consumers == 0 {
            errors.push(
                format!("{path}.remote_write_queue.num_consumers"),
                "must be greater than 0",
            );
        }
        errors.0.extend(s.tls.validate(&format!("{path}.tls")).0);
        s.retry_on_failure
            .validate(&format!("{path}.retry_on_failure"), &mut errors);
        errors.into_result(())?;
        let Some(uri) = uri else {
            return Err(ConfigErrors::default());
        };
        Ok(Box::new(RemoteWriteConfig {
            settings: s,
            uri,
            headers,
        }))
    }
}

impl ExporterConfig for RemoteWriteConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.settings.timeout));
        let tls = if self.uri.scheme_str() == Some("https") {
            self.settings
                .tls
                .load(&format!("exporters.{}.tls", ctx.id), |p| {
                    ctx.resolve_path(p)
                })
                .map_err(|e| BuildError::other(&ctx.id, e.to_string(), e))?
        } else {
            weir_tls::ClientTls::plaintext()
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(tls.https_connector_with(connector, weir_tls::HttpVersions::Http1And2));
        let s = &self.settings;
        let sender = RemoteWriteSender {
            client,
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            timeout: s.timeout,
            concurrency: s.remote_write_queue.num_consumers,
            translator: Translator {
                namespace: s.namespace.clone(),
                add_suffixes: s.add_metric_suffixes,
                external_labels: s
                    .external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                resource_labels: s.resource_to_telemetry_conversion.enabled,
                target_info: s.target_info.enabled,
                send_metadata: s.send_metadata,
                max_request_bytes: s.max_batch_size_bytes,
                warned: Mutex::new(HashSet::new()),
            },
            exporter: ctx.id.to_string(),
        };
        // One queue consumer: batches are sent in the order they came, so each series'
        // samples arrive in time order (the server refuses out-of-order samples).
        let queue = QueueSettings {
            enabled: s.remote_write_queue.enabled,
            num_consumers: 1,
            queue_size: s.remote_write_queue.queue_size,
            ..QueueSettings::default()
        };
        Ok(Arc::new(Delivery::new(
            &ctx.id,
            Arc::new(sender),
            s.retry_on_failure.clone(),
            queue,
            &ctx.telemetry,
        )))
    }
}
