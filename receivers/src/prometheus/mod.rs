//! `prometheus`: scrapes Prometheus targets and hands their samples on as OTLP metrics, as
//! the Collector's Prometheus receiver does. Scrape configs are written in Prometheus's own
//! format under `config:`.
//!
//! ```yaml
//! receivers:
//!   prometheus:
//!     config:
//!       global: { scrape_interval: 1m, scrape_timeout: 10s }
//!       scrape_configs:
//!         - job_name: node
//!           scrape_interval: 15s          # default: global's, 1m
//!           scrape_timeout: 10s           # default: global's, 10s; at most scrape_interval
//!           metrics_path: /metrics        # default /metrics
//!           scheme: http                  # http (default) or https
//!           params: { module: [x] }       # query parameters
//!           honor_labels: false           # scraped labels win over target labels when true
//!           honor_timestamps: true        # use timestamps the target writes
//!           sample_limit: 0               # more samples fail the scrape; 0: no limit
//!           body_size_limit: 0            # bytes (or 10MB, 1GiB); 0: the default 64MiB cap
//!           basic_auth: { username: u, password: p }   # or password_file
//!           authorization: { type: Bearer, credentials: t }   # or credentials_file
//!           # bearer_token: t / bearer_token_file: f   (the older form)
//!           tls_config:                   # for https; default: the system's roots
//!             ca_file: ca.pem             # or ca: inline PEM
//!             cert_file: c.pem            # client certificate (or cert:), with
//!             key_file: c.key             # its key (or key:)
//!             server_name: node.internal  # checked in the certificate, sent as SNI
//!             insecure_skip_verify: false
//!             min_version: TLS12          # TLS12 (default) or TLS13; max_version too
//!           static_configs:
//!             - targets: [localhost:9100]
//!               labels: { env: prod }
//!           file_sd_configs:              # see [`discovery`]
//!             - files: [/etc/weir/targets/*.json, /etc/weir/targets/*.yml]
//!               refresh_interval: 5m      # default 5m; changed files are read at once
//!           relabel_configs:
//!             - { source_labels: [__address__], regex: '(.*):\d+', target_label: host }
//!           metric_relabel_configs:
//!             - { source_labels: [__name__], regex: 'go_.*', action: drop }
//! ```
//!
//! Targets are asked for OpenMetrics first and the text format 0.0.4 after, as Prometheus
//! asks; the answer's `Content-Type` picks the parser ([`text`]). OpenMetrics `_created`
//! samples become start times, exemplars stay on their points (`trace_id`/`span_id` as
//! ids, other labels as filtered attributes), units become the metric's unit, `info` and
//! `stateset` families become non-monotonic sums, and `gaugehistogram` families are
//! dropped, as the Collector does.
//!
//! Each scrape becomes one batch: one resource per target (`service.name` = job,
//! `service.instance.id` = instance, `server.address`, `server.port`, `url.scheme`), the
//! target's other labels and the sample's labels as point attributes (a scraped label that
//! clashes with a target label becomes `exported_<name>` unless `honor_labels`). Counters
//! are cumulative monotonic sums whose start time is the first scrape that saw the series
//! (again after a reset); gauges and untyped series are gauges; `_bucket`/`_sum`/`_count`
//! make histograms, `quantile`/`_sum`/`_count` summaries. A series that disappears gets a
//! point flagged "no recorded value" (staleness). `up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling` and
//! `scrape_series_added` are added per scrape as gauges. A failed scrape (unreachable, a
//! status other than 200, too slow, too big, a malformed line) is logged with the target
//! and the line, reported as `up` 0, and the other targets go on.
//!
//! `relabel_configs` rewrite each target's labels (`__address__`, `__scheme__`,
//! `__metrics_path__`, `__param_<name>`, `job`, the static labels) before it is scraped, and
//! can drop it; `metric_relabel_configs` rewrite or drop each scraped sample (its labels and
//! `__name__`); see [`relabel`] for the actions.
//!
//! Targets of `file_sd_configs` are started and stopped while the receiver runs, as their
//! files change; a target that goes away has its series marked stale at once.
//!
//! Not supported yet (refused with their path): the `hashmod` relabel action, service
//! discovery other than `static_configs` and `file_sd_configs`, `oauth2`, `proxy_url`,
//! `follow_redirects`; not supported: native histograms.

mod config;
mod convert;
pub mod discovery;
mod jobs;
pub mod relabel;
mod scrape;
#[cfg(test)]
mod tests;
pub mod text;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use weir_api::{
    BuildContext, BuildError, Component, ComponentId, ConfigErrors, Consumer, ReceiverConfig,
    ReceiverFactory, Signal, SignalConsumers, SignalSet, StartError,
};

pub use config::{
    Authorization, BasicAuth, Global, PromConfig, PromTlsConfig, PrometheusReceiverSettings,
    ScrapeConfig, StaticConfig,
};
use jobs::{parse_jobs, Job};
use scrape::run_job;
pub use scrape::{parse_and_convert_twice, ScrapeOnce};

/// The scope the Collector's receiver names its metrics with.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver";

/// What a scrape asks for, as Prometheus does: OpenMetrics 1.0.0, then 0.0.1, then text
/// 0.0.4.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Scrape bodies are cut at this size unless `body_size_limit` says otherwise.
pub const DEFAULT_BODY_LIMIT: u64 = 64 << 20;

/// Factory of the `prometheus` receiver.
pub struct PrometheusReceiverFactory;

/// A validated `prometheus` receiver config.
pub struct PrometheusReceiverConfig {
    jobs: Vec<Arc<Job>>,
}

impl ReceiverFactory for PrometheusReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Metrics])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        let jobs = parse_jobs(config, path)?;
        Ok(Box::new(PrometheusReceiverConfig {
            jobs: jobs.into_iter().map(Arc::new).collect(),
        }))
    }
}

impl ReceiverConfig for PrometheusReceiverConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        let consumer = consumers
            .metrics
            .clone()
            .ok_or_else(|| BuildError::UnsupportedSignal {
                id: ctx.id.clone(),
                signal: Signal::Logs,
            })?;
        let mut jobs = Vec::new();
        for job in &self.jobs {
            // The job path starts with the receiver's own (`receivers.<id>...`).
            let tls = job
                .tls
                .load(&format!("{}.tls_config", job.path), |p| ctx.resolve_path(p))
                .map_err(|e| BuildError::other(&ctx.id, e.to_string(), e))?;
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let client = Client::builder(TokioExecutor::new())
                .build(tls.https_connector_with(connector, weir_tls::HttpVersions::Http1And2));
            jobs.push((job.clone(), client));
        }
        Ok(Arc::new(PrometheusReceiver {
            id: ctx.id.clone(),
            jobs,
            consumer,
            tasks: Mutex::new(Vec::new()),
        }))
    }
}

type HttpClient = Client<weir_tls::hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The running receiver: one task per job, which runs one task per target.
pub struct PrometheusReceiver {
    id: ComponentId,
    jobs: Vec<(Arc<Job>, HttpClient)>,
    consumer: Arc<dyn Consumer>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[async_trait]
impl Component for PrometheusReceiver {
    async fn start(&self) -> Result<(), StartError> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for (job, client) in &self.jobs {
            tasks.push(tokio::spawn(run_job(
                self.id.clone(),
                job.clone(),
                client.clone(),
                self.consumer.clone(),
            )));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        // Aborting a job task drops its JoinSet, which aborts its scrapers.
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}
