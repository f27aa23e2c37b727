//! Scraping: one task per job scrapes each target on its interval, parses the answer
//! (text format or OpenMetrics) and hands it on as OTLP metrics with the `up` and
//! `scrape_*` series, staleness markers for series that disappear, and the target's
//! resource attributes.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, ComponentId, ConfigErrors, Consumer, Payload};

use super::jobs::{parse_jobs, Job, Target};
use super::{convert, discovery, relabel, text};
use super::{HttpClient, ACCEPT, DEFAULT_BODY_LIMIT, SCOPE_NAME};

/// Runs one job: its static targets, and the targets of its files, started and stopped
/// as the files change (a target that goes away has its series marked stale).
pub(super) async fn run_job(
    id: ComponentId,
    job: Arc<Job>,
    client: HttpClient,
    consumer: Arc<dyn Consumer>,
) {
    let mut set = tokio::task::JoinSet::new();
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let mut ignored = ConfigErrors::default();
    let statics = job.static_targets(&mut ignored);
    let mut watch = (!job.file_sd.is_empty()).then(|| discovery::FileWatch::new(&job.file_sd));
    loop {
        let mut want: HashMap<String, Target> =
            statics.iter().map(|t| (t.key(), t.clone())).collect();
        if let Some(w) = watch.as_mut() {
            let (groups, errors) = w.read();
            for e in errors {
                tracing::warn!(receiver = %id, job = %job.name, error = %e, "file_sd: cannot read targets; the file's last targets are kept");
            }
            for g in &groups {
                for (k, address) in g.targets.iter().enumerate() {
                    match job.target(&g.labels, address) {
                        Ok(Some(t)) => {
                            want.insert(t.key(), t);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(receiver = %id, job = %job.name, error = %format!("file_sd group {} target {k}: {e}", g.source), "file_sd: target skipped")
                        }
                    }
                }
            }
        }
        running.retain(|k, stop| {
            let keep = want.contains_key(k);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (k, target) in want {
            if running.contains_key(&k) {
                continue;
            }
            let stop = CancellationToken::new();
            let scraper = Scraper {
                id: id.clone(),
                target,
                client: client.clone(),
                consumer: consumer.clone(),
                conv: convert::Converter::default(),
                post_relabel: 0,
            };
            set.spawn(scraper.run(stop.clone()));
            running.insert(k, stop);
        }
        while set.try_join_next().is_some() {}
        match &watch {
            Some(w) => w.changed().await,
            None => std::future::pending().await,
        }
    }
}

/// One target scraped on demand, outside a pipeline (benchmarks, tools): the receiver's own
/// fetch, parse and conversion, with its series state kept from one scrape to the next.
pub struct ScrapeOnce {
    scraper: Scraper,
}

impl ScrapeOnce {
    /// The first static target of the first job of a receiver config (`{config: ...}`),
    /// scraped over plain HTTP or with the system's roots.
    pub fn new(config: &serde_json::Value) -> Result<ScrapeOnce, ConfigErrors> {
        let targets = {
            let jobs = parse_jobs(config, "prometheus")?;
            let mut errors = ConfigErrors::default();
            let t = jobs
                .first()
                .and_then(|j| j.static_targets(&mut errors).into_iter().next());
            errors.into_result(t)?
        };
        let target = targets.ok_or_else(|| {
            ConfigErrors(vec![weir_api::ConfigError::new(
                "prometheus.config.scrape_configs",
                "no static target",
            )])
        })?;
        struct Discard;
        #[async_trait]
        impl Consumer for Discard {
            async fn consume(&self, _: Batch) -> Result<(), weir_api::ConsumeError> {
                Ok(())
            }
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let tls = weir_tls::ClientTls::plaintext();
        Ok(ScrapeOnce {
            scraper: Scraper {
                id: ComponentId::parse("prometheus")
                    .map_err(|e| ConfigErrors(vec![weir_api::ConfigError::new("prometheus", e)]))?,
                target,
                client: Client::builder(TokioExecutor::new())
                    .build(tls.https_connector_with(connector, weir_tls::HttpVersions::Http1And2)),
                consumer: Arc::new(Discard),
                conv: convert::Converter::default(),
                post_relabel: 0,
            },
        })
    }

    /// Scrapes once: the batch the receiver would send, and how many samples the target
    /// served (0 when the scrape failed).
    pub async fn scrape(&mut self) -> (ExportMetricsServiceRequest, usize) {
        let (metrics, n) = self.scraper.scrape().await;
        (self.scraper.request(metrics), n)
    }
}

/// Parses `body` in `format` and converts it twice, as two scrapes of the same body by a
/// target with a label `env` (metric relabelling renames `x_(.*)` to `$1` and drops
/// `drop_.*`). Returns the samples parsed and, per conversion, the series added and the
/// stale points: a second scrape of the same body must add none and mark none stale.
/// For the fuzz target and tests.
pub fn parse_and_convert_twice(
    body: &str,
    format: text::Format,
) -> Result<(usize, [(usize, usize); 2]), text::ParseError> {
    let e = text::parse_as(body, format, 0)?;
    let mut errors = ConfigErrors::default();
    let rules: Vec<relabel::RelabelConfig> = serde_json::from_value(serde_json::json!([
        {"source_labels": ["__name__"], "regex": "x_(.*)", "target_label": "__name__"},
        {"source_labels": ["__name__"], "regex": "drop_.*", "action": "drop"},
    ]))
    .unwrap_or_default();
    let target = Target {
        job: "j".into(),
        instance: "127.0.0.1:9".into(),
        url: http::Uri::from_static("http://127.0.0.1:9/metrics"),
        scheme: "http".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        honor_labels: false,
        honor_timestamps: true,
        sample_limit: 0,
        body_limit: DEFAULT_BODY_LIMIT,
        labels: vec![("env".into(), "p".into())],
        auth: None,
        metric_relabel: Arc::new(relabel::compile(&rules, "r", &mut errors)),
    };
    let mut conv = convert::Converter::default();
    let mut out = [(0, 0); 2];
    for (i, time) in [1_000u64, 2_000].into_iter().enumerate() {
        let c = conv.convert(&target, &e, time);
        let stale = c
            .metrics
            .iter()
            .map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => {
                    g.data_points.iter().filter(|p| p.flags & 1 == 1).count()
                }
                Some(metric::Data::Sum(g)) => {
                    g.data_points.iter().filter(|p| p.flags & 1 == 1).count()
                }
                Some(metric::Data::Histogram(g)) => {
                    g.data_points.iter().filter(|p| p.flags & 1 == 1).count()
                }
                Some(metric::Data::Summary(g)) => {
                    g.data_points.iter().filter(|p| p.flags & 1 == 1).count()
                }
                _ => 0,
            })
            .sum();
        out[i] = (c.added, stale);
    }
    Ok((e.samples.len(), out))
}

pub(super) struct Scraper {
    pub(super) id: ComponentId,
    pub(super) target: Target,
    pub(super) client: HttpClient,
    pub(super) consumer: Arc<dyn Consumer>,
    /// Series state and the per-series cache.
    pub(super) conv: convert::Converter,
    /// Samples the last scrape kept after `metric_relabel_configs`.
    pub(super) post_relabel: usize,
}

/// Why a scrape failed, naming the target.
#[derive(Debug, thiserror::Error)]
pub(super) enum ScrapeError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: {source}")]
    Parse {
        url: String,
        #[source]
        source: text::ParseError,
    },
}

/// An error and its causes, `a: b: c` (hyper's client error alone says only "Connect").
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        next = s.source();
    }
    out
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub(super) fn string_kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

impl Scraper {
    async fn run(mut self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.target.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    // The target went away: its series end now.
                    let metrics = self.stale_all(now_ns());
                    if !metrics.is_empty() {
                        let _ = self.consumer.consume(self.batch(metrics)).await;
                    }
                    return;
                }
                _ = ticker.tick() => {}
            }
            let (metrics, _) = self.scrape().await;
            let batch = self.batch(metrics);
            if let Err(e) = self.consumer.consume(batch).await {
                tracing::warn!(receiver = %self.id, job = %self.target.job, error = %e, "the pipeline did not take a scrape; it is dropped");
            }
        }
    }

    /// One scrape: the target's metrics (stale points when it failed) with `up` and the
    /// `scrape_*` gauges, and how many samples it had.
    async fn scrape(&mut self) -> (Vec<Metric>, usize) {
        let started = Instant::now();
        let time = now_ns();
        let result = self.fetch().await;
        self.post_relabel = 0;
        let (mut metrics, up, scraped, added) = match result {
            Ok((text, format)) => match text::parse_as(&text, format, self.target.sample_limit) {
                Ok(exposition) => {
                    let n = exposition.samples.len();
                    let (metrics, added) = self.convert(exposition, time);
                    (metrics, 1.0, n, added)
                }
                Err(source) => {
                    let e = ScrapeError::Parse {
                        url: self.target.url.to_string(),
                        source,
                    };
                    tracing::warn!(receiver = %self.id, job = %self.target.job, error = %e, "scrape failed");
                    (self.stale_all(time), 0.0, 0, 0)
                }
            },
            Err(e) => {
                tracing::warn!(receiver = %self.id, job = %self.target.job, error = %e, "scrape failed");
                (self.stale_all(time), 0.0, 0, 0)
            }
        };
        let duration = started.elapsed().as_secs_f64();
        for (name, value) in [
            ("up", up),
            ("scrape_duration_seconds", duration),
            ("scrape_samples_scraped", scraped as f64),
            (
                "scrape_samples_post_metric_relabeling",
                self.post_relabel as f64,
            ),
            ("scrape_series_added", added as f64),
        ] {
            metrics.push(gauge_metric(name, value, time, self.target_attributes()));
        }
        (metrics, scraped)
    }

    /// One batch: the target's resource and these metrics.
    fn batch(&self, metrics: Vec<Metric>) -> Batch {
        Batch::new(Payload::Metrics(self.request(metrics)))
    }

    /// The request a batch of these metrics holds.
    fn request(&self, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn resource(&self) -> Resource {
        let t = &self.target;
        let mut attributes = vec![
            string_kv("service.name", &t.job),
            string_kv("service.instance.id", &t.instance),
        ];
        if let Some(host) = t.url.host() {
            attributes.push(string_kv("server.address", host));
        }
        let port = t
            .url
            .port_u16()
            .unwrap_or(if t.scheme == "https" { 443 } else { 80 });
        attributes.push(string_kv("server.port", &port.to_string()));
        attributes.push(string_kv("url.scheme", &t.scheme));
        Resource {
            attributes,
            ..Default::default()
        }
    }

    fn target_attributes(&self) -> Vec<KeyValue> {
        self.target
            .labels
            .iter()
            .map(|(k, v)| string_kv(k, v))
            .collect()
    }

    pub(super) async fn fetch(&self) -> Result<(String, text::Format), ScrapeError> {
        let t = &self.target;
        let url = t.url.to_string();
        let http_err = |message: String| ScrapeError::Http {
            url: url.clone(),
            message,
        };
        let mut req = http::Request::get(t.url.clone())
            .header(http::header::ACCEPT, ACCEPT)
            .header(
                http::header::USER_AGENT,
                concat!("weir/", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", t.timeout.as_secs_f64()),
            )
            .body(Empty::new())
            .map_err(|e| http_err(e.to_string()))?;
        if let Some(a) = &t.auth {
            if let Ok(v) = http::HeaderValue::from_str(a) {
                req.headers_mut().insert(http::header::AUTHORIZATION, v);
            }
        }
        let limit = t.body_limit;
        let attempt = async {
            let response = self
                .client
                .request(req)
                .await
                .map_err(|e| http_err(format!("cannot scrape: {}", with_sources(&e))))?;
            let status = response.status();
            if status != http::StatusCode::OK {
                return Err(http_err(format!("HTTP status {status}")));
            }
            let format = text::Format::from_content_type(
                response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            );
            let gzip = response
                .headers()
                .get(http::header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes() == b"gzip");
            let body = Limited::new(response.into_body(), limit as usize)
                .collect()
                .await
                .map_err(|e| {
                    http_err(format!(
                        "body larger than body_size_limit ({limit} bytes) or cut: {e}"
                    ))
                })?
                .to_bytes();
            let bytes = if gzip {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| http_err(format!("bad gzip body: {e}")))?;
                if out.len() as u64 > limit {
                    return Err(http_err(format!(
                        "body larger than body_size_limit ({limit} bytes) once decompressed"
                    )));
                }
                out
            } else {
                body.to_vec()
            };
            String::from_utf8(bytes)
                .map(|text| (text, format))
                .map_err(|e| {
                    http_err(format!(
                        "body is not UTF-8 (at byte {})",
                        e.utf8_error().valid_up_to()
                    ))
                })
        };
        tokio::time::timeout(t.timeout, attempt)
            .await
            .map_err(|_| {
                http_err(format!(
                    "no complete answer within scrape_timeout {:?}",
                    t.timeout
                ))
            })?
    }

    /// Marks every known series stale (a failed scrape) and forgets them.
    fn stale_all(&mut self, time: u64) -> Vec<Metric> {
        self.conv.stale_all(time)
    }

    /// Converts an exposition; returns the metrics and how many series are new.
    pub(super) fn convert(&mut self, e: text::Exposition, time: u64) -> (Vec<Metric>, usize) {
        let c = self.conv.convert(&self.target, &e, time);
        self.post_relabel = c.kept;
        (c.metrics, c.added)
    }
}

fn gauge_metric(name: &str, value: f64, time: u64, attributes: Vec<KeyValue>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes,
                time_unix_nano: time,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}
