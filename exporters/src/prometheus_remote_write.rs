//! `prometheusremotewrite`: sends metrics to a Prometheus remote-write endpoint (a
//! protobuf `WriteRequest`, snappy-compressed, remote-write 1.0), with the Collector's
//! config fields, defaults and naming (see [`crate::prom_naming`]).
//!
//! ```yaml
//! exporters:
//!   prometheusremotewrite:
//!     endpoint: http://prometheus:9090/api/v1/write    # required
//!     headers: { X-Scope-OrgID: acme }
//!     namespace: shop
//!     external_labels: { cluster: eu-1 }           # added unless a series has the label
//!     resource_to_telemetry_conversion: { enabled: false }
//!     add_metric_suffixes: true
//!     send_metadata: false                         # also send type/help/unit metadata
//!     target_info: { enabled: true }
//!     max_batch_size_bytes: 3000000                # split bigger requests
//!     remote_write_queue: { enabled: true, queue_size: 10000, num_consumers: 5 }
//!     retry_on_failure: { enabled: true, initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 1m }
//!     timeout: 5s
//!     tls: { ca_file: ca.pem }                     # for https:// endpoints
//! ```
//!
//! Each batch becomes one or more `WriteRequest`s (split at `max_batch_size_bytes`, a
//! series never split across two); `num_consumers` of them are sent at once. Batches
//! leave the queue one at a time, in order, so a series' samples reach the server in time
//! order. 5xx and 429 answers (waiting at least as long as `Retry-After` asks), timeouts
//! and connection failures are retried; any other 4xx is permanent (the batch is dropped,
//! logged and counted). As in the Collector, delta sums and delta histograms cannot be
//! written (they are dropped with a warning), exponential histograms are not supported
//! (dropped with a warning), and a point flagged "no recorded value" is written as
//! Prometheus's stale marker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prost::Message;
use serde::Deserialize;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{metric::Data, number_data_point, NumberDataPoint};
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, ExporterConfig,
    ExporterFactory, Payload, Signal, SignalSet, Stage,
};

use crate::delivery::{Delivered, Delivery, QueueSettings, RetrySettings, Sender};
use crate::otlp_settings::{http_endpoint_uri, validate_headers, TlsSettings};
use crate::prom_naming::{attrs_to_labels, format_float, instance, job, metric_name, NameKind};
use crate::SendError;

/// Prometheus's remote-write protobuf messages (`prompb`), the fields remote-write 1.0
/// uses.
pub mod prompb {
    /// One request: series and, optionally, metadata.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Metric metadata (`send_metadata`).
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// A series: its labels (sorted by name, `__name__` included) and samples in time order.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// A label.
    #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
    pub struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A sample.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// Metadata of one metric family.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// 1 counter, 2 gauge, 3 histogram, 5 summary, 6 info.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// The family name.
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// Help text.
        #[prost(string, tag = "4")]
        pub help: String,
        /// Unit.
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

use prompb::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};

/// Prometheus's stale marker, a NaN with this exact bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

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

/// OTLP to remote-write series.
struct Translator {
    namespace: String,
    add_suffixes: bool,
    external_labels: Vec<(String, String)>,
    resource_labels: bool,
    target_info: bool,
    send_metadata: bool,
    max_request_bytes: usize,
    /// Metric names already warned about (bounded).
    warned: Mutex<HashSet<String>>,
}

fn number(p: &NumberDataPoint) -> f64 {
    if p.flags & 1 != 0 {
        return f64::from_bits(STALE_NAN);
    }
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

/// The series of one request being built: labels → samples.
#[derive(Default)]
struct SeriesSet {
    series: HashMap<Vec<Label>, Vec<Sample>>,
    metadata: BTreeMap<String, MetricMetadata>,
}

impl SeriesSet {
    fn add(&mut self, mut labels: Vec<Label>, value: f64, ts: i64) {
        labels.sort();
        self.series.entry(labels).or_default().push(Sample {
            value,
            timestamp: ts,
        });
    }
}

impl Translator {
    fn warn(&self, metric: &str, why: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() < 1000 && warned.insert(metric.to_string()) {
            tracing::warn!(
                metric,
                "prometheusremotewrite: {why}; its points are dropped (logged once per metric)"
            );
        }
    }

    /// Builds the requests for a batch; returns them and how many points were dropped.
    fn requests(&self, batch: &Batch) -> (Vec<WriteRequest>, u64) {
        let Payload::Metrics(req) = batch.payload() else {
            return (Vec::new(), 0);
        };
        let mut set = SeriesSet::default();
        let mut dropped = 0u64;
        for rm in &req.resource_metrics {
            let resource: &[KeyValue] = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let mut base = Vec::new();
            if self.resource_labels {
                attrs_to_labels(resource, &mut base);
            }
            let job = job(resource);
            let instance = instance(resource);
            let mut latest = 0u64;
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    dropped += self.metric(m, &base, &job, &instance, &mut set, &mut latest);
                }
            }
            if self.target_info && latest > 0 {
                let rest: Vec<KeyValue> = resource
                    .iter()
                    .filter(|kv| {
                        !matches!(
                            kv.key.as_str(),
                            "service.name" | "service.namespace" | "service.instance.id"
                        )
                    })
                    .cloned()
                    .collect();
                if !rest.is_empty() {
                    let mut l = Vec::new();
                    attrs_to_labels(&rest, &mut l);
                    let name = if self.namespace.is_empty() {
                        "target_info".to_string()
                    } else {
                        format!("{}_target_info", self.namespace)
                    };
                    let labels = self.finish(l, &name, &job, &instance, None);
                    set.add(labels, 1.0, ms(latest));
                }
            }
        }
        (self.split(set), dropped)
    }

    /// Final labels: `__name__`, job, instance, then external labels the series lacks.
    fn finish(
        &self,
        mut l: Vec<(String, String)>,
        name: &str,
        job: &Option<String>,
        instance: &Option<String>,
        extra: Option<(&str, String)>,
    ) -> Vec<Label> {
        let mut set = |k: &str, v: String| match l.iter_mut().find(|(n, _)| n == k) {
            Some((_, old)) => *old = v,
            None => l.push((k.to_string(), v)),
        };
        if let Some(j) = job {
            set("job", j.clone());
        }
        if let Some(i) = instance {
            set("instance", i.clone());
        }
        if let Some((k, v)) = extra {
            set(k, v);
        }
        set("__name__", name.to_string());
        for (k, v) in &self.external_labels {
            if !l.iter().any(|(n, _)| n == k) {
                l.push((k.clone(), v.clone()));
            }
        }
        l.into_iter()
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .map(|(name, value)| Label { name, value })
            .collect()
    }

    /// Adds one metric's points; returns how many were dropped.
    fn metric(
        &self,
        m: &weir_api::otlp::metrics::v1::Metric,
        base: &[(String, String)],
        job: &Option<String>,
        instance: &Option<String>,
        set: &mut SeriesSet,
        latest: &mut u64,
    ) -> u64 {
        let point_labels = |attrs: &[KeyValue]| {
            let mut l = Vec::with_capacity(attrs.len() + base.len() + 3);
            attrs_to_labels(attrs, &mut l);
            for (k, v) in base {
                if !l.iter().any(|(n, _)| n == k) {
                    l.push((k.clone(), v.clone()));
                }
            }
            l
        };
        let name = |kind| metric_name(&m.name, &m.unit, kind, &self.namespace, self.add_suffixes);
        let meta = |set: &mut SeriesSet, family: &str, kind: i32| {
            if self.send_metadata {
                set.metadata
                    .entry(family.to_string())
                    .or_insert_with(|| MetricMetadata {
                        r#type: kind,
                        metric_family_name: family.to_string(),
                        help: m.description.clone(),
                        unit: m.unit.clone(),
                    });
            }
        };
        match &m.data {
            None => 0,
            Some(Data::Gauge(g)) => {
                let family = name(NameKind::Gauge);
                meta(set, &family, 2);
                for p in &g.data_points {
                    *latest = (*latest).max(p.time_unix_nano);
                    let l = self.finish(point_labels(&p.attributes), &family, job, instance, None);
                    set.add(l, number(p), ms(p.time_unix_nano));
                }
                0
            }
            Some(Data::Sum(s)) => {
                if s.aggregation_temporality != 2 {
                    self.warn(&m.name, "only cumulative sums can be written");
                    return s.data_points.len() as u64;
                }
                let (family, kind) = if s.is_monotonic {
                    (name(NameKind::Counter), 1)
                } else {
                    (name(NameKind::UpDown), 2)
                };
                meta(set, &family, kind);
                for p in &s.data_points {
                    *latest = (*latest).max(p.time_unix_nano);
                    let l = self.finish(point_labels(&p.attributes), &family, job, instance, None);
                    set.add(l, number(p), ms(p.time_unix_nano));
                }
                0
            }
            Some(Data::Histogram(h)) => {
                if h.aggregation_temporality != 2 {
                    self.warn(&m.name, "only cumulative histograms can be written");
                    return h.data_points.len() as u64;
                }
                let family = name(NameKind::Histogram);
                meta(set, &family, 3);
                let mut dropped = 0;
                for p in &h.data_points {
                    if !p.bucket_counts.is_empty()
                        && p.bucket_counts.len() != p.explicit_bounds.len() + 1
                    {
                        self.warn(
                            &m.name,
                            "a histogram point's bucket counts do not match its bounds",
                        );
                        dropped += 1;
                        continue;
                    }
                    *latest = (*latest).max(p.time_unix_nano);
                    let ts = ms(p.time_unix_nano);
                    let stale = p.flags & 1 != 0;
                    let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
                    let labels = point_labels(&p.attributes);
                    let bucket = format!("{family}_bucket");
                    let mut cumulative = 0u64;
                    for (i, bound) in p.explicit_bounds.iter().enumerate() {
                        cumulative += p.bucket_counts.get(i).copied().unwrap_or(0);
                        let l = self.finish(
                            labels.clone(),
                            &bucket,
                            job,
                            instance,
                            Some(("le", format_float(*bound))),
                        );
                        set.add(l, v(cumulative as f64), ts);
                    }
                    let l = self.finish(
                        labels.clone(),
                        &bucket,
                        job,
                        instance,
                        Some(("le", "+Inf".into())),
                    );
                    set.add(l, v(p.count as f64), ts);
                    if let Some(sum) = p.sum {
                        let l = self.finish(
                            labels.clone(),
                            &format!("{family}_sum"),
                            job,
                            instance,
                            None,
                        );
                        set.add(l, v(sum), ts);
                    }
                    let l = self.finish(labels, &format!("{family}_count"), job, instance, None);
                    set.add(l, v(p.count as f64), ts);
                }
                dropped
            }
            Some(Data::Summary(s)) => {
                let family = name(NameKind::Summary);
                meta(set, &family, 5);
                for p in &s.data_points {
                    *latest = (*latest).max(p.time_unix_nano);
                    let ts = ms(p.time_unix_nano);
                    let stale = p.flags & 1 != 0;
                    let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
                    let labels = point_labels(&p.attributes);
                    for q in &p.quantile_values {
                        let l = self.finish(
                            labels.clone(),
                            &family,
                            job,
                            instance,
                            Some(("quantile", format_float(q.quantile))),
                        );
                        set.add(l, v(q.value), ts);
                    }
                    let l = self.finish(
                        labels.clone(),
                        &format!("{family}_sum"),
                        job,
                        instance,
                        None,
                    );
                    set.add(l, v(p.sum), ts);
                    let l = self.finish(labels, &format!("{family}_count"), job, instance, None);
                    set.add(l, v(p.count as f64), ts);
                }
                0
            }
            Some(Data::ExponentialHistogram(e)) => {
                self.warn(&m.name, "exponential histograms are not supported");
                e.data_points.len() as u64
            }
        }
    }

    /// Series in a stable order (by labels), samples in time order, cut into requests of
    /// at most `max_request_bytes` (a single series bigger than that goes alone).
    fn split(&self, set: SeriesSet) -> Vec<WriteRequest> {
        let mut series: Vec<TimeSeries> = set
            .series
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.timestamp);
                TimeSeries { labels, samples }
            })
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out = Vec::new();
        let mut current = WriteRequest {
            timeseries: Vec::new(),
            metadata: set.metadata.into_values().collect(),
        };
        let mut size = current.encoded_len();
        for ts in series {
            let len = ts.encoded_len() + 8;
            if size + len > self.max_request_bytes && !current.timeseries.is_empty() {
                out.push(std::mem::take(&mut current));
                size = 0;
            }
            size += len;
            current.timeseries.push(ts);
        }
        if !current.timeseries.is_empty() || !current.metadata.is_empty() {
            out.push(current);
        }
        out
    }
}

/// Sends the requests of one batch, `concurrency` at a time.
struct RemoteWriteSender {
    client: Client<weir_tls::hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: http::Uri,
    headers: HeaderMap,
    timeout: Duration,
    concurrency: usize,
    translator: Translator,
    exporter: String,
}

/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 64 << 10;

impl RemoteWriteSender {
    async fn post(&self, body: Bytes) -> Result<(), SendError> {
        let url = self.uri.to_string();
        let mut request = http::Request::post(self.uri.clone())
            .body(Full::new(body))
            .map_err(|e| SendError::Request {
                endpoint: url.clone(),
                reason: "invalid request".into(),
                source: Some(Box::new(e)),
            })?;
        let h = request.headers_mut();
        h.extend(self.headers.clone());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        h.insert(
            "X-Prometheus-Remote-Write-Version",
            HeaderValue::from_static("0.1.0"),
        );
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
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, SendError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout {
                endpoint: url.clone(),
                timeout: self.timeout,
            })??;
        if parts.status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        let message = match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text.to_string(),
        };
        Err(SendError::RemoteWriteStatus {
            url,
            status: parts.status.as_u16(),
            message,
            retry_after: parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::otlp_http::parse_retry_after(v, SystemTime::now())),
        })
    }
}

#[async_trait]
impl Sender for RemoteWriteSender {
    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let (requests, dropped) = self.translator.requests(batch);
        let mut bodies = Vec::with_capacity(requests.len());
        for r in &requests {
            let raw = r.encode_to_vec();
            let z =
                snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .map_err(|e| SendError::Request {
                        endpoint: self.uri.to_string(),
                        reason: "snappy compression failed".into(),
                        source: Some(Box::new(e)),
                    })?;
            bodies.push(Bytes::from(z));
        }
        for chunk in bodies.chunks(self.concurrency.max(1)) {
            let results =
                futures::future::join_all(chunk.iter().map(|b| self.post(b.clone()))).await;
            // The first failure decides: a retry sends the whole batch again, which the
            // server takes as duplicates of what it already has.
            for r in results {
                r?;
            }
        }
        Ok(Delivered {
            rejected_items: dropped,
            message: if dropped > 0 {
                format!(
                    "{}: {dropped} points cannot be written as Prometheus series (see the warnings)",
                    self.exporter
                )
            } else {
                String::new()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use weir_api::otlp::common::v1::{any_value, AnyValue};
    use weir_api::otlp::metrics::v1::{
        metric, Gauge, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, Sum,
    };
    use weir_api::otlp::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn translator(max: usize) -> Translator {
        Translator {
            namespace: String::new(),
            add_suffixes: true,
            external_labels: vec![
                ("cluster".into(), "c1".into()),
                ("job".into(), "ext".into()),
            ],
            resource_labels: false,
            target_info: true,
            send_metadata: true,
            max_request_bytes: max,
            warned: Mutex::new(HashSet::new()),
        }
    }

    fn batch(metrics: Vec<Metric>) -> Batch {
        Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "shop"),
                        kv("service.instance.id", "i-1"),
                        kv("host.name", "h1"),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    fn labels(ts: &TimeSeries) -> String {
        ts.labels
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn series_labels_samples_and_metadata() {
        let t = translator(3_000_000);
        let b = batch(vec![
            Metric {
                name: "req".into(),
                unit: "1".into(),
                description: "requests".into(),
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![NumberDataPoint {
                        attributes: vec![kv("method", "GET")],
                        time_unix_nano: 2_000_000,
                        value: Some(number_data_point::Value::AsInt(5)),
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })),
                ..Default::default()
            },
            Metric {
                name: "lat".into(),
                unit: "s".into(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: 3_000_000,
                        count: 3,
                        sum: Some(1.5),
                        explicit_bounds: vec![0.5],
                        bucket_counts: vec![1, 2],
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                })),
                ..Default::default()
            },
            Metric {
                name: "delta".into(),
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![NumberDataPoint::default()],
                    aggregation_temporality: 1,
                    is_monotonic: true,
                })),
                ..Default::default()
            },
            Metric {
                name: "g".into(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: vec![NumberDataPoint {
                        time_unix_nano: 1_000_000,
                        flags: 1,
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            },
        ]);
        let (requests, dropped) = t.requests(&b);
        assert_eq!(dropped, 1);
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        let got: Vec<(String, Vec<(String, i64)>)> = r
            .timeseries
            .iter()
            .map(|ts| {
                (
                    labels(ts),
                    ts.samples
                        .iter()
                        .map(|s| (format!("{:x}", s.value.to_bits()), s.timestamp))
                        .collect(),
                )
            })
            .collect();
        let bits = |v: f64| format!("{:x}", v.to_bits());
        let want = vec![
            (
                "__name__=g,cluster=c1,instance=i-1,job=shop".to_string(),
                vec![(format!("{STALE_NAN:x}"), 1)],
            ),
            (
                "__name__=lat_seconds_bucket,cluster=c1,instance=i-1,job=shop,le=+Inf".into(),
                vec![(bits(3.0), 3)],
            ),
            (
                "__name__=lat_seconds_bucket,cluster=c1,instance=i-1,job=shop,le=0.5".into(),
                vec![(bits(1.0), 3)],
            ),
            (
                "__name__=lat_seconds_count,cluster=c1,instance=i-1,job=shop".into(),
                vec![(bits(3.0), 3)],
            ),
            (
                "__name__=lat_seconds_sum,cluster=c1,instance=i-1,job=shop".into(),
                vec![(bits(1.5), 3)],
            ),
            (
                "__name__=req_total,cluster=c1,instance=i-1,job=shop,method=GET".into(),
                vec![(bits(5.0), 2)],
            ),
            (
                "__name__=target_info,cluster=c1,host_name=h1,instance=i-1,job=shop".into(),
                vec![(bits(1.0), 3)],
            ),
        ];
        assert_eq!(got, want);
        let meta: Vec<(i32, &str, &str)> = r
            .metadata
            .iter()
            .map(|m| (m.r#type, m.metric_family_name.as_str(), m.help.as_str()))
            .collect();
        assert_eq!(
            meta,
            vec![
                (2, "g", ""),
                (3, "lat_seconds", ""),
                (1, "req_total", "requests")
            ]
        );
    }

    #[test]
    fn big_batches_are_split_between_series() {
        let t = translator(200);
        let points: Vec<NumberDataPoint> = (0..20)
            .map(|i| NumberDataPoint {
                attributes: vec![kv("i", &format!("{i:02}"))],
                time_unix_nano: 1_000_000,
                value: Some(number_data_point::Value::AsDouble(i as f64)),
                ..Default::default()
            })
            .collect();
        let b = batch(vec![Metric {
            name: "m".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: points,
            })),
            ..Default::default()
        }]);
        let (requests, _) = t.requests(&b);
        assert!(requests.len() > 3, "{}", requests.len());
        let total: usize = requests.iter().map(|r| r.timeseries.len()).sum();
        assert_eq!(total, 21); // 20 series and target_info
        for r in &requests {
            assert!(r.encoded_len() <= 200 + 64, "{}", r.encoded_len());
        }
    }

    #[test]
    fn retryable_statuses_follow_remote_write() {
        let e = |status| SendError::RemoteWriteStatus {
            url: "u".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        for s in [500, 502, 503, 504, 429] {
            assert!(e(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 413] {
            assert!(!e(s).is_retryable(), "{s}");
        }
    }

    #[test]
    fn config_defaults_and_errors() {
        let s: RemoteWriteSettings =
            serde_json::from_value(serde_json::json!({"endpoint": "http://h/api/v1/write"}))
                .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.remote_write_queue.queue_size, 10_000);
        assert_eq!(s.remote_write_queue.num_consumers, 5);
        assert_eq!(
            s.retry_on_failure.initial_interval,
            Duration::from_millis(50)
        );
        assert_eq!(s.retry_on_failure.max_interval, Duration::from_millis(200));
        assert_eq!(
            s.retry_on_failure.max_elapsed_time,
            Some(Duration::from_secs(60))
        );
        assert!(s.add_metric_suffixes && s.target_info.enabled && !s.send_metadata);
        let err = RemoteWriteFactory
            .parse(
                &serde_json::json!({"remote_write_queue": {"queue_size": 0}, "external_labels": {"a-b": "x"}, "timeout": "0s"}),
                "exporters.prometheusremotewrite",
            )
            .err()
            .unwrap()
            .to_string();
        for want in [
            "exporters.prometheusremotewrite.endpoint: is required",
            "exporters.prometheusremotewrite.remote_write_queue.queue_size: must be greater than 0",
            "exporters.prometheusremotewrite.external_labels.a-b: is not a Prometheus label name",
            "exporters.prometheusremotewrite.timeout: must be greater than 0",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
    }
}
