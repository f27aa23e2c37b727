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

mod convert;
pub mod discovery;
pub mod relabel;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    Consumer, Payload, ReceiverConfig, ReceiverFactory, Signal, SignalConsumers, SignalSet,
    StartError,
};

/// The scope the Collector's receiver names its metrics with.
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver";

/// What a scrape asks for, as Prometheus does: OpenMetrics 1.0.0, then 0.0.1, then text
/// 0.0.4.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Scrape bodies are cut at this size unless `body_size_limit` says otherwise.
pub const DEFAULT_BODY_LIMIT: u64 = 64 << 20;

/// The receiver's settings: Prometheus's configuration under `config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusReceiverSettings {
    /// Prometheus's own configuration (`global`, `scrape_configs`).
    pub config: PromConfig,
}

/// The part of Prometheus's configuration the receiver uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromConfig {
    /// Defaults for every scrape config.
    #[serde(default)]
    pub global: Global,
    /// The jobs.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `global`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Default `1m`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_interval: Option<Duration>,
    /// Default `10s`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_timeout: Option<Duration>,
    /// Accepted; rule evaluation has no meaning here.
    #[serde(default, with = "humantime_serde")]
    pub evaluation_interval: Option<Duration>,
}

/// One `static_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every series of these targets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme; default `Bearer`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The credentials.
    #[serde(default)]
    pub credentials: Option<String>,
    /// File holding the credentials.
    #[serde(default)]
    pub credentials_file: Option<String>,
}

fn default_path() -> String {
    "/metrics".into()
}

fn default_scheme() -> String {
    "http".into()
}

fn default_true() -> bool {
    true
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name (`job` label, `service.name`).
    pub job_name: String,
    /// Default: `global.scrape_interval`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_interval: Option<Duration>,
    /// Default: `global.scrape_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub scrape_timeout: Option<Duration>,
    /// Default `/metrics`.
    #[serde(default = "default_path")]
    pub metrics_path: String,
    /// `http` (default) or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Scraped labels win over target labels. Default `false`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the target's timestamps. Default `true`.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// More samples than this fail the scrape; `0` no limit.
    #[serde(default)]
    pub sample_limit: usize,
    /// Bytes; a number or `10MB`-style size. `0`: the default cap.
    #[serde(default)]
    pub body_size_limit: Option<serde_json::Value>,
    /// Basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// The older form of `authorization: {credentials: ...}`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// The older form of `authorization: {credentials_file: ...}`.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// The targets.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets read from files.
    #[serde(default)]
    pub file_sd_configs: Vec<discovery::FileSdConfig>,
    /// Rules applied to each target's labels before it is scraped.
    #[serde(default)]
    pub relabel_configs: Vec<relabel::RelabelConfig>,
    /// Rules applied to each scraped sample's labels.
    #[serde(default)]
    pub metric_relabel_configs: Vec<relabel::RelabelConfig>,
    /// TLS for `https` targets.
    #[serde(default)]
    pub tls_config: Option<PromTlsConfig>,
}

/// `tls_config`, with Prometheus's field names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromTlsConfig {
    /// CA certificates (PEM file) that the target's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The same, inline PEM.
    #[serde(default)]
    pub ca: Option<String>,
    /// Client certificate (PEM file), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// The same, inline PEM.
    #[serde(default)]
    pub cert: Option<String>,
    /// Client key (PEM file).
    #[serde(default)]
    pub key_file: Option<String>,
    /// The same, inline PEM.
    #[serde(default)]
    pub key: Option<String>,
    /// The name checked in the target's certificate (and sent as SNI).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Accept any certificate. Default `false`.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `TLS12` (default) or `TLS13`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// `TLS12` or `TLS13` (default: the newest).
    #[serde(default)]
    pub max_version: Option<String>,
}

impl PromTlsConfig {
    /// weir's client TLS settings for this config; problems pushed under `path`.
    fn settings(&self, path: &str, errors: &mut ConfigErrors) -> weir_tls::TlsClientSettings {
        let version = |v: &Option<String>, name: &str, errors: &mut ConfigErrors| match v.as_deref()
        {
            None => None,
            Some("TLS12") => Some(weir_tls::TlsVersion::V1_2),
            Some("TLS13") => Some(weir_tls::TlsVersion::V1_3),
            Some(other) => {
                errors.push(
                    format!("{path}.{name}"),
                    format!("{other:?}: weir supports TLS12 and TLS13"),
                );
                None
            }
        };
        for (file, inline, name) in [
            (&self.ca_file, &self.ca, "ca"),
            (&self.cert_file, &self.cert, "cert"),
            (&self.key_file, &self.key, "key"),
        ] {
            if file.is_some() && inline.is_some() {
                errors.push(
                    format!("{path}.{name}"),
                    format!("set {name} or {name}_file, not both"),
                );
            }
        }
        let has_cert = self.cert_file.is_some() || self.cert.is_some();
        let has_key = self.key_file.is_some() || self.key.is_some();
        if has_cert != has_key {
            errors.push(
                format!("{path}.{}", if has_cert { "key_file" } else { "cert_file" }),
                "a client certificate needs both cert_file (or cert) and key_file (or key)",
            );
        }
        weir_tls::TlsClientSettings {
            insecure_skip_verify: self.insecure_skip_verify,
            ca_file: self.ca_file.clone(),
            ca_pem: self.ca.clone(),
            cert_file: self.cert_file.clone(),
            cert_pem: self.cert.clone(),
            key_file: self.key_file.clone(),
            key_pem: self.key.clone(),
            server_name_override: self.server_name.clone(),
            min_version: Some(
                version(&self.min_version, "min_version", errors)
                    .unwrap_or(weir_tls::TlsVersion::V1_2),
            ),
            max_version: version(&self.max_version, "max_version", errors),
            ..Default::default()
        }
    }
}

/// Parses `10MB`, `1GiB`, `512KB`, `1000` (bytes).
fn parse_size(v: &serde_json::Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((num * mult) as u64)
}

/// Factory of the `prometheus` receiver.
pub struct PrometheusReceiverFactory;

/// One target, ready to scrape.
#[derive(Debug, Clone)]
struct Target {
    job: String,
    /// `host:port`.
    instance: String,
    url: http::Uri,
    scheme: String,
    interval: Duration,
    timeout: Duration,
    honor_labels: bool,
    honor_timestamps: bool,
    sample_limit: usize,
    body_limit: u64,
    /// Target labels other than job and instance.
    labels: Vec<(String, String)>,
    /// `Authorization` header value.
    auth: Option<String>,
    /// `metric_relabel_configs`.
    metric_relabel: Arc<Vec<relabel::Rule>>,
}

/// One scrape config, checked: what each of its targets is built from.
#[derive(Debug)]
struct Job {
    name: String,
    /// The config path (`receivers.prometheus.config.scrape_configs[0]`).
    path: String,
    scheme: String,
    metrics_path: String,
    params: BTreeMap<String, Vec<String>>,
    interval: Duration,
    timeout: Duration,
    honor_labels: bool,
    honor_timestamps: bool,
    sample_limit: usize,
    body_limit: u64,
    auth: Option<String>,
    target_rules: Vec<relabel::Rule>,
    metric_rules: Arc<Vec<relabel::Rule>>,
    /// Client TLS for `https` targets.
    tls: weir_tls::TlsClientSettings,
    static_configs: Vec<StaticConfig>,
    file_sd: Vec<discovery::FileSdConfig>,
}

impl Job {
    /// The target at `address` with its group's `labels`, relabelled: `Ok(None)` when
    /// `relabel_configs` drop it, `Err` when what is left does not make a URL.
    fn target(
        &self,
        group_labels: &BTreeMap<String, String>,
        address: &str,
    ) -> Result<Option<Target>, String> {
        // The target's labels as Prometheus builds them, then relabelled.
        let mut labels: BTreeMap<String, String> = group_labels.clone();
        labels.insert("__address__".into(), address.to_string());
        labels.insert("__scheme__".into(), self.scheme.clone());
        labels.insert("__metrics_path__".into(), self.metrics_path.clone());
        labels.insert(
            "__scrape_interval__".into(),
            humantime::format_duration(self.interval).to_string(),
        );
        labels.insert(
            "__scrape_timeout__".into(),
            humantime::format_duration(self.timeout).to_string(),
        );
        labels
            .entry("job".into())
            .or_insert_with(|| self.name.clone());
        for (name, values) in &self.params {
            if let Some(v) = values.first() {
                labels.insert(format!("__param_{name}"), v.clone());
            }
        }
        if !relabel::apply(&self.target_rules, &mut labels) {
            return Ok(None);
        }
        let get = |n: &str| labels.get(n).cloned().unwrap_or_default();
        let address = get("__address__");
        let scheme = get("__scheme__");
        let mut query: Vec<String> = Vec::new();
        for (name, v) in &labels {
            if let Some(param) = name.strip_prefix("__param_") {
                query.push(format!("{}={}", encode(param), encode(v)));
                for more in self.params.get(param).into_iter().flatten().skip(1) {
                    query.push(format!("{}={}", encode(param), encode(more)));
                }
            }
        }
        let mut url = format!("{scheme}://{address}{}", get("__metrics_path__"));
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let uri = match url.parse::<http::Uri>() {
            Ok(u)
                if u.host().is_some()
                    && !address.contains('/')
                    && (scheme == "http" || scheme == "https") =>
            {
                u
            }
            _ => {
                return Err(format!(
                    "{address:?} (after relabelling) does not make a URL: {url:?}"
                ))
            }
        };
        let instance = labels
            .get("instance")
            .cloned()
            .unwrap_or_else(|| address.clone());
        let job = get("job");
        let target_labels = labels
            .iter()
            .filter(|(k, _)| !k.starts_with("__") && *k != "job" && *k != "instance")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Some(Target {
            job,
            instance,
            url: uri,
            scheme,
            interval: self.interval,
            timeout: self.timeout,
            honor_labels: self.honor_labels,
            honor_timestamps: self.honor_timestamps,
            sample_limit: self.sample_limit,
            body_limit: self.body_limit,
            labels: target_labels,
            auth: self.auth.clone(),
            metric_relabel: self.metric_rules.clone(),
        }))
    }

    /// The targets of `static_configs`; problems pushed under their config path.
    fn static_targets(&self, errors: &mut ConfigErrors) -> Vec<Target> {
        let mut out = Vec::new();
        for (j, st) in self.static_configs.iter().enumerate() {
            for (k, t) in st.targets.iter().enumerate() {
                match self.target(&st.labels, t) {
                    Ok(Some(t)) => out.push(t),
                    Ok(None) => {}
                    Err(e) => {
                        errors.push(format!("{}.static_configs[{j}].targets[{k}]", self.path), e)
                    }
                }
            }
        }
        out
    }
}

impl Target {
    /// What makes two targets the same one (Prometheus: the same label set).
    fn key(&self) -> String {
        let mut k = format!("{}\u{1}{}\u{1}{}", self.url, self.job, self.instance);
        for (n, v) in &self.labels {
            k.push('\u{1}');
            k.push_str(n);
            k.push('=');
            k.push_str(v);
        }
        k
    }
}

/// A validated `prometheus` receiver config.
pub struct PrometheusReceiverConfig {
    jobs: Vec<Arc<Job>>,
}

fn read_secret(file: &str, path: &str, errors: &mut ConfigErrors) -> String {
    match std::fs::read_to_string(file) {
        Ok(s) => s.trim().to_string(),
        Err(e) => {
            errors.push(path, format!("cannot read {file}: {e}"));
            String::new()
        }
    }
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

/// The static targets of a config (tests).
#[cfg(test)]
fn parse_targets(config: &serde_json::Value, path: &str) -> Result<Vec<Target>, ConfigErrors> {
    let jobs = parse_jobs(config, path)?;
    let mut errors = ConfigErrors::default();
    let targets = jobs
        .iter()
        .flat_map(|j| j.static_targets(&mut errors))
        .collect();
    errors.into_result(targets)
}

/// Checks the config: the jobs, with their static targets checked too.
fn parse_jobs(config: &serde_json::Value, path: &str) -> Result<Vec<Job>, ConfigErrors> {
    use base64_engine::encode as b64;
    let s: PrometheusReceiverSettings = parse_component_config(config, path)?;
    let mut errors = ConfigErrors::default();
    let g = &s.config.global;
    let global_interval = g.scrape_interval.unwrap_or(Duration::from_secs(60));
    let global_timeout = g.scrape_timeout.unwrap_or(Duration::from_secs(10));
    if global_timeout > global_interval {
        errors.push(
            format!("{path}.config.global.scrape_timeout"),
            format!(
                "{global_timeout:?} is longer than global.scrape_interval ({global_interval:?})"
            ),
        );
    }
    let mut jobs_out = Vec::new();
    let mut jobs = std::collections::HashSet::new();
    if s.config.scrape_configs.is_empty() {
        errors.push(
            format!("{path}.config.scrape_configs"),
            "must list at least one job",
        );
    }
    for (i, sc) in s.config.scrape_configs.iter().enumerate() {
        {
            let p = format!("{path}.config.scrape_configs[{i}]");
            if sc.job_name.is_empty() {
                errors.push(format!("{p}.job_name"), "is required");
            } else if !jobs.insert(sc.job_name.clone()) {
                errors.push(
                    format!("{p}.job_name"),
                    format!("{:?} is used twice", sc.job_name),
                );
            }
            let tls = sc
                .tls_config
                .clone()
                .unwrap_or_default()
                .settings(&format!("{p}.tls_config"), &mut errors);
            discovery::validate(
                &sc.file_sd_configs,
                &format!("{p}.file_sd_configs"),
                &mut errors,
            );
            let target_rules = relabel::compile(
                &sc.relabel_configs,
                &format!("{p}.relabel_configs"),
                &mut errors,
            );
            let metric_rules = Arc::new(relabel::compile(
                &sc.metric_relabel_configs,
                &format!("{p}.metric_relabel_configs"),
                &mut errors,
            ));
            let interval = sc.scrape_interval.unwrap_or(global_interval);
            let timeout = sc.scrape_timeout.unwrap_or(global_timeout.min(interval));
            if interval.is_zero() {
                errors.push(format!("{p}.scrape_interval"), "must be greater than 0");
            }
            if timeout.is_zero() || timeout > interval {
                errors.push(
                    format!("{p}.scrape_timeout"),
                    format!("must be greater than 0 and at most scrape_interval ({interval:?}), got {timeout:?}"),
                );
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                errors.push(
                    format!("{p}.scheme"),
                    format!("{:?}: must be http or https", sc.scheme),
                );
            }
            if !sc.metrics_path.starts_with('/') {
                errors.push(format!("{p}.metrics_path"), "must start with /");
            }
            let body_limit = match &sc.body_size_limit {
                None => DEFAULT_BODY_LIMIT,
                Some(v) => match parse_size(v) {
                    Some(0) => DEFAULT_BODY_LIMIT,
                    Some(n) => n,
                    None => {
                        errors.push(
                            format!("{p}.body_size_limit"),
                            format!("{v} is not a size (1000, 10MB, 1GiB)"),
                        );
                        0
                    }
                },
            };
            let mut auth = None;
            if let Some(b) = &sc.basic_auth {
                let password = match (&b.password, &b.password_file) {
                    (Some(pw), None) => pw.clone(),
                    (None, Some(f)) => {
                        read_secret(f, &format!("{p}.basic_auth.password_file"), &mut errors)
                    }
                    (None, None) => String::new(),
                    (Some(_), Some(_)) => {
                        errors.push(
                            format!("{p}.basic_auth"),
                            "set password or password_file, not both",
                        );
                        String::new()
                    }
                };
                auth = Some(format!(
                    "Basic {}",
                    b64(&format!("{}:{password}", b.username))
                ));
            }
            let bearer = match (&sc.authorization, &sc.bearer_token) {
                (Some(a), None) => {
                    let creds = match (&a.credentials, &a.credentials_file) {
                        (Some(c), None) => c.clone(),
                        (None, Some(f)) => read_secret(
                            f,
                            &format!("{p}.authorization.credentials_file"),
                            &mut errors,
                        ),
                        _ => {
                            errors.push(
                                format!("{p}.authorization"),
                                "set one of credentials and credentials_file",
                            );
                            String::new()
                        }
                    };
                    Some(format!("{} {creds}", a.kind.as_deref().unwrap_or("Bearer")))
                }
                (None, Some(t)) => Some(format!("Bearer {t}")),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    errors.push(
                        format!("{p}.bearer_token"),
                        "set authorization or bearer_token, not both",
                    );
                    None
                }
            };
            let bearer = match (bearer, &sc.bearer_token_file) {
                (b, None) => b,
                (None, Some(f)) => Some(format!(
                    "Bearer {}",
                    read_secret(f, &format!("{p}.bearer_token_file"), &mut errors)
                )),
                (Some(_), Some(_)) => {
                    errors.push(
                        format!("{p}.bearer_token_file"),
                        "set one of authorization, bearer_token and bearer_token_file",
                    );
                    None
                }
            };
            if bearer.is_some() && auth.is_some() {
                errors.push(
                    format!("{p}.basic_auth"),
                    "set basic_auth or authorization, not both",
                );
            }
            let auth = auth.or(bearer);
            let job = Job {
                name: sc.job_name.clone(),
                path: p,
                scheme: sc.scheme.clone(),
                metrics_path: sc.metrics_path.clone(),
                params: sc.params.clone(),
                interval,
                timeout,
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps,
                sample_limit: sc.sample_limit,
                body_limit,
                auth,
                target_rules,
                metric_rules,
                tls,
                static_configs: sc.static_configs.clone(),
                file_sd: sc.file_sd_configs.clone(),
            };
            job.static_targets(&mut errors);
            jobs_out.push(job);
        }
    }
    errors.into_result(jobs_out)
}

mod base64_engine {
    /// Standard base64 with padding (for basic auth).
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
        for chunk in b.chunks(3) {
            let n = (chunk[0] as u32) << 16
                | (chunk.get(1).copied().unwrap_or(0) as u32) << 8
                | chunk.get(2).copied().unwrap_or(0) as u32;
            out.push(T[(n >> 18) as usize & 63] as char);
            out.push(T[(n >> 12) as usize & 63] as char);
            out.push(if chunk.len() > 1 {
                T[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if chunk.len() > 2 {
                T[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// Runs one job: its static targets, and the targets of its files, started and stopped
/// as the files change (a target that goes away has its series marked stale).
async fn run_job(id: ComponentId, job: Arc<Job>, client: HttpClient, consumer: Arc<dyn Consumer>) {
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

struct Scraper {
    id: ComponentId,
    target: Target,
    client: HttpClient,
    consumer: Arc<dyn Consumer>,
    /// Series state and the per-series cache.
    conv: convert::Converter,
    /// Samples the last scrape kept after `metric_relabel_configs`.
    post_relabel: usize,
}

/// Why a scrape failed, naming the target.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
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

fn string_kv(k: &str, v: &str) -> KeyValue {
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

    async fn fetch(&self) -> Result<(String, text::Format), ScrapeError> {
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
    fn convert(&mut self, e: text::Exposition, time: u64) -> (Vec<Metric>, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use convert::text_of;

    fn parse(v: serde_json::Value) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        PrometheusReceiverFactory.parse(&v, "receivers.prometheus")
    }

    #[test]
    fn config_errors_name_their_path() {
        let err = parse(serde_json::json!({"config": {"scrape_configs": [
            {"job_name": "a", "scrape_interval": "5s", "scrape_timeout": "10s",
             "relabel_configs": [{"action": "hashmod", "target_label": "x"}],
             "tls_config": {"cert_file": "c.pem", "ca": "x", "ca_file": "ca.pem", "min_version": "TLS10"},
             "file_sd_configs": [{"files": ["/t/*/x.json"]}, {"files": []}, {"files": ["a.yml"], "refresh_interval": "0s"}],
             "bearer_token": "t", "bearer_token_file": "/nonexistent/token",
             "scheme": "ftp", "static_configs": [{"targets": ["h/x"]}]},
            {"job_name": "a", "body_size_limit": "lots"},
        ]}}))
        .err()
        .unwrap()
        .to_string();
        for want in [
            "receivers.prometheus.config.scrape_configs[0].relabel_configs[0].action: hashmod is not supported by weir yet",
            "receivers.prometheus.config.scrape_configs[0].tls_config.key_file: a client certificate needs both cert_file (or cert) and key_file (or key)",
            "receivers.prometheus.config.scrape_configs[0].tls_config.ca: set ca or ca_file, not both",
            "receivers.prometheus.config.scrape_configs[0].tls_config.min_version: \"TLS10\": weir supports TLS12 and TLS13",
            "receivers.prometheus.config.scrape_configs[0].file_sd_configs[0].files[0]: \"/t/*/x.json\" is not a file_sd pattern",
            "receivers.prometheus.config.scrape_configs[0].file_sd_configs[1].files: must list at least one file pattern",
            "receivers.prometheus.config.scrape_configs[0].file_sd_configs[2].refresh_interval: must be greater than 0",
            "receivers.prometheus.config.scrape_configs[0].bearer_token_file: set one of authorization, bearer_token and bearer_token_file",
            "receivers.prometheus.config.scrape_configs[0].scrape_timeout: must be greater than 0 and at most scrape_interval (5s), got 10s",
            "receivers.prometheus.config.scrape_configs[0].scheme: \"ftp\": must be http or https",
            "receivers.prometheus.config.scrape_configs[0].static_configs[0].targets[0]: \"h/x\" (after relabelling) does not make a URL",
            "receivers.prometheus.config.scrape_configs[1].job_name: \"a\" is used twice",
            "receivers.prometheus.config.scrape_configs[1].body_size_limit: \"lots\" is not a size",
        ] {
            assert!(err.contains(want), "missing {want:?} in\n{err}");
        }
        let err = parse(serde_json::json!({"config": {
            "global": {"scrape_interval": "5s"},
            "scrape_configs": [{"job_name": "a", "bearer_token_file": "/nonexistent/token",
                                "consul_sd_configs": []}]}}))
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.starts_with(
                "receivers.prometheus.config.scrape_configs[0].consul_sd_configs: unknown field"
            ),
            "{err}"
        );
        let err = parse(serde_json::json!({"config": {
            "global": {"scrape_interval": "5s"},
            "scrape_configs": [{"job_name": "a", "bearer_token_file": "/nonexistent/token"}]}}))
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("receivers.prometheus.config.global.scrape_timeout: 10s is longer than global.scrape_interval (5s)"),
            "{err}"
        );
        assert!(
            err.contains("receivers.prometheus.config.scrape_configs[0].bearer_token_file: cannot read /nonexistent/token:"),
            "{err}"
        );
        assert_eq!(base64_engine::encode("u:p"), "dTpw");
        assert_eq!(base64_engine::encode("user:pw"), "dXNlcjpwdw==");
        assert_eq!(parse_size(&serde_json::json!("10MB")), Some(10_000_000));
        assert_eq!(parse_size(&serde_json::json!("1GiB")), Some(1 << 30));
    }

    fn scraper(honor_labels: bool) -> Scraper {
        struct Discard;
        #[async_trait]
        impl Consumer for Discard {
            async fn consume(&self, _: Batch) -> Result<(), weir_api::ConsumeError> {
                Ok(())
            }
        }
        let target = Target {
            job: "j".into(),
            instance: "127.0.0.1:9".into(),
            url: "http://127.0.0.1:9/metrics".parse().unwrap(),
            scheme: "http".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            honor_labels,
            honor_timestamps: true,
            sample_limit: 0,
            body_limit: DEFAULT_BODY_LIMIT,
            labels: vec![("env".into(), "p".into())],
            auth: None,
            metric_relabel: Arc::new(Vec::new()),
        };
        let tls = weir_tls::ClientTls::plaintext();
        Scraper {
            id: ComponentId::parse("prometheus").unwrap(),
            target,
            client: Client::builder(TokioExecutor::new())
                .build(tls.https_connector(weir_tls::HttpVersions::Http1And2)),
            consumer: Arc::new(Discard),
            conv: convert::Converter::default(),
            post_relabel: 0,
        }
    }

    fn attrs(m: &Metric) -> Vec<String> {
        let pts: Vec<&Vec<KeyValue>> = match m.data.as_ref().unwrap() {
            metric::Data::Sum(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
            metric::Data::Gauge(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
            metric::Data::Histogram(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
            metric::Data::Summary(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
            _ => vec![],
        };
        pts.iter()
            .map(|a| {
                a.iter()
                    .map(|kv| format!("{}={}", kv.key, text_of(kv)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[tokio::test]
    async fn honor_timestamps_decides_whose_time_a_point_carries() {
        // The target writes a timestamp (ms) on one sample; the scrape happens at 100 s.
        let text = "# TYPE g gauge\ng{a=\"1\"} 5 1700000000123\ng{a=\"2\"} 6\n";
        let times = |honor: bool| {
            let mut s = scraper(false);
            s.target.honor_timestamps = honor;
            let (m, _) = s.convert(text::parse(text, 0).unwrap(), 100_000_000_000);
            match m[0].data.as_ref().unwrap() {
                metric::Data::Gauge(g) => g
                    .data_points
                    .iter()
                    .map(|p| p.time_unix_nano)
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }
        };
        // honor_timestamps: true (the default): the target's time where it wrote one.
        assert_eq!(times(true), [1_700_000_000_123_000_000, 100_000_000_000]);
        // false: every point carries the scrape's time.
        assert_eq!(times(false), [100_000_000_000, 100_000_000_000]);
        // A timestamp past what nanoseconds in u64 hold (a hostile target, found by the
        // prometheus_text fuzz target) saturates instead of overflowing.
        let mut s = scraper(false);
        let (m, _) = s.convert(
            text::parse("g 1 9223372036854775807\n", 0).unwrap(),
            100_000_000_000,
        );
        let metric::Data::Gauge(g) = m[0].data.as_ref().unwrap() else {
            panic!("{m:?}")
        };
        assert_eq!(g.data_points[0].time_unix_nano, u64::MAX);
    }

    #[tokio::test]
    async fn conversion_start_times_resets_and_staleness() {
        let mut s = scraper(false);
        let text = "# HELP c_total Count.\n# TYPE c_total counter\nc_total{env=\"x\",m=\"a\"} 5\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2.5\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 7.5\nh_count 4\n# TYPE s summary\ns{quantile=\"0.5\"} 2\ns_sum 3\ns_count 2\nu{job=\"other\"} 1\n";
        let (m, added) = s.convert(text::parse(text, 0).unwrap(), 100);
        assert_eq!(added, 4);
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["c_total", "h", "s", "u"]);
        assert_eq!(m[0].description, "Count.");
        assert_eq!(attrs(&m[0]), ["env=p,exported_env=x,m=a"]);
        assert_eq!(attrs(&m[3]), ["env=p,exported_job=other"]);
        let Some(metric::Data::Histogram(h)) = &m[1].data else {
            panic!()
        };
        let p = &h.data_points[0];
        assert_eq!(
            (
                p.count,
                p.sum,
                p.explicit_bounds.clone(),
                p.bucket_counts.clone(),
                p.start_time_unix_nano
            ),
            (4, Some(7.5), vec![1.0, 2.5], vec![1, 2, 1], 100)
        );
        let Some(metric::Data::Summary(q)) = &m[2].data else {
            panic!()
        };
        assert_eq!((q.data_points[0].count, q.data_points[0].sum), (2, 3.0));
        // Second scrape: the counter grew (start kept), u went away (stale), then a reset.
        let (m, added) = s.convert(
            text::parse("# TYPE c_total counter\nc_total{env=\"x\",m=\"a\"} 9\n", 0).unwrap(),
            200,
        );
        assert_eq!(added, 0);
        let Some(metric::Data::Sum(c)) = &m[0].data else {
            panic!()
        };
        assert_eq!(
            (
                c.data_points[0].start_time_unix_nano,
                c.data_points[0].time_unix_nano
            ),
            (100, 200)
        );
        let stale: Vec<(&str, u32)> = m[1..]
            .iter()
            .map(|m| {
                let flags = match m.data.as_ref().unwrap() {
                    metric::Data::Gauge(g) => g.data_points[0].flags,
                    metric::Data::Histogram(g) => g.data_points[0].flags,
                    metric::Data::Summary(g) => g.data_points[0].flags,
                    _ => 0,
                };
                (m.name.as_str(), flags)
            })
            .collect();
        assert_eq!(stale, [("h", 1), ("s", 1), ("u", 1)]);
        let (m, _) = s.convert(
            text::parse("# TYPE c_total counter\nc_total{env=\"x\",m=\"a\"} 2\n", 0).unwrap(),
            300,
        );
        let Some(metric::Data::Sum(c)) = &m[0].data else {
            panic!()
        };
        assert_eq!(c.data_points[0].start_time_unix_nano, 300);
        // honor_labels: the scraped label wins.
        let mut s = scraper(true);
        let (m, _) = s.convert(text::parse("x{env=\"mine\"} 1\n", 0).unwrap(), 1);
        assert_eq!(attrs(&m[0]), ["env=mine"]);
    }

    #[tokio::test]
    async fn openmetrics_conversion() {
        let mut s = scraper(false);
        let text = "# TYPE req counter\n# HELP req Requests.\nreq_total{code=\"200\"} 7 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\",user=\"u\"} 1 1700000000.5\nreq_created{code=\"200\"} 1700000000.25\n# TYPE lat_seconds histogram\n# UNIT lat_seconds seconds\nlat_seconds_bucket{le=\"1\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 2\nlat_seconds_count 2\nlat_seconds_sum 3\nlat_seconds_created 1600000000\n# TYPE b info\nb_info{v=\"1\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 5\nq_gcount 5\nq_gsum 9\n# TYPE u unknown\nu 1\n# EOF\n";
        let e = text::parse_as(text, text::Format::OpenMetrics, 0).unwrap();
        let (m, added) = s.convert(e, 5_000_000_000_000_000_000);
        let names: Vec<(&str, &str)> = m
            .iter()
            .map(|m| {
                let kind = match m.data.as_ref().unwrap() {
                    metric::Data::Sum(x) if x.is_monotonic => "monotonic sum",
                    metric::Data::Sum(_) => "sum",
                    metric::Data::Gauge(_) => "gauge",
                    metric::Data::Histogram(_) => "histogram",
                    _ => "other",
                };
                (m.name.as_str(), kind)
            })
            .collect();
        // The gauge histogram is dropped, as the Collector does.
        assert_eq!(
            names,
            [
                ("req", "monotonic sum"),
                ("lat_seconds", "histogram"),
                ("b", "sum"),
                ("st", "sum"),
                ("u", "gauge")
            ]
        );
        assert_eq!(added, 6);
        assert_eq!(s.post_relabel, 14);
        assert_eq!(
            (m[0].description.as_str(), m[1].unit.as_str()),
            ("Requests.", "seconds")
        );
        let Some(metric::Data::Sum(c)) = &m[0].data else {
            panic!()
        };
        let p = &c.data_points[0];
        // `_created` is the start time.
        assert_eq!(p.start_time_unix_nano, 1_700_000_000_250_000_000);
        let x = &p.exemplars[0];
        assert_eq!(
            (
                x.trace_id.len(),
                x.span_id.clone(),
                x.time_unix_nano,
                x.value,
                x.filtered_attributes.len()
            ),
            (
                16,
                vec![0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31],
                1_700_000_000_500_000_000,
                Some(weir_api::otlp::metrics::v1::exemplar::Value::AsDouble(1.0)),
                1
            )
        );
        let Some(metric::Data::Histogram(h)) = &m[1].data else {
            panic!()
        };
        assert_eq!(
            (
                h.data_points[0].start_time_unix_nano,
                h.data_points[0].bucket_counts.clone()
            ),
            (1_600_000_000_000_000_000, vec![1, 1])
        );
        assert_eq!(attrs(&m[3]), ["env=p,st=a", "env=p,st=b"]);
        assert_eq!(attrs(&m[2]), ["env=p,v=1"]);
    }

    #[tokio::test]
    async fn the_series_cache_follows_type_changes_and_relabelled_names() {
        let mut s = scraper(false);
        s.target.metric_relabel = Arc::new(relabel::compile(
            &serde_json::from_value::<Vec<relabel::RelabelConfig>>(serde_json::json!([
                {"source_labels": ["__name__"], "regex": "old_(.*)", "target_label": "__name__", "replacement": "new_$1"},
                {"source_labels": ["drop"], "regex": "yes", "action": "drop"},
            ]))
            .unwrap(),
            "r",
            &mut ConfigErrors::default(),
        ));
        for round in 0..3 {
            // The same series text, typed differently from the second scrape on.
            let text = if round == 0 {
                "old_x{a=\"1\"} 1\nd{drop=\"yes\"} 1\n"
            } else {
                "# TYPE new_x counter\nold_x{a=\"1\"} 2\nd{drop=\"yes\"} 1\n"
            };
            let (m, added) = s.convert(text::parse(text, 0).unwrap(), 100 + round);
            let kinds: Vec<(&str, bool)> = m
                .iter()
                .map(|m| {
                    (
                        m.name.as_str(),
                        matches!(m.data, Some(metric::Data::Sum(_))),
                    )
                })
                .collect();
            match round {
                0 => assert_eq!((kinds, added), (vec![("new_x", false)], 1)),
                // The counter is a new point; the gauge point goes stale.
                1 => assert_eq!((kinds, added), (vec![("new_x", true), ("new_x", false)], 1)),
                _ => assert_eq!((kinds, added), (vec![("new_x", true)], 0)),
            }
            assert_eq!(s.post_relabel, 1);
        }
    }

    /// The fuzz target's properties (fuzz/fuzz_targets/prometheus_text.rs) over its seeds and
    /// every prefix and single-character change of them: no panic, errors name a line of the
    /// body, a second scrape of the same body adds and stales nothing.
    #[test]
    fn parser_and_conversion_hold_on_mutated_seeds() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/prometheus_text"
        );
        let mut seeds = Vec::new();
        for f in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            let body = String::from_utf8_lossy(&bytes[1..]).to_string();
            // Cut to keep the debug-build run short.
            let cut = body
                .char_indices()
                .nth(2000)
                .map(|(i, _)| i)
                .unwrap_or(body.len());
            seeds.push(body[..cut].to_string());
        }
        assert!(seeds.len() >= 3);
        let check = |body: &str, format| match parse_and_convert_twice(body, format) {
            Ok((_, [_, second])) => assert_eq!(second, (0, 0), "{body:?}"),
            Err(e) => {
                let lines = body.split('\n').count();
                assert!(e.line >= 1 && e.line <= lines, "{e}: {body:?}");
            }
        };
        let mut runs = 0;
        for seed in &seeds {
            for format in [text::Format::Text, text::Format::OpenMetrics] {
                let cuts: Vec<usize> = (0..=seed.len())
                    .filter(|i| seed.is_char_boundary(*i))
                    .collect();
                for i in cuts.iter().step_by(7) {
                    check(&seed[..*i], format);
                    for c in ["\"", "\\", "{", "}", "#", " ", "\n", "_total", "=", ","] {
                        let mut m = seed.clone();
                        m.insert_str(*i, c);
                        check(&m, format);
                        runs += 1;
                    }
                }
            }
        }
        assert!(runs > 1000, "{runs}");
    }

    /// A target on loopback that answers every request with `respond` (run on a thread).
    fn target_server(respond: fn(std::net::TcpStream)) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                std::thread::spawn(move || respond(s));
            }
        });
        format!("http://{addr}/metrics")
    }

    fn read_request(s: &mut std::net::TcpStream) {
        let mut buf = [0u8; 2048];
        let _ = std::io::Read::read(s, &mut buf);
    }

    #[tokio::test]
    async fn hostile_targets_fail_with_their_url_and_bounded_memory() {
        use std::io::Write;
        // Never answers.
        let slow = target_server(|mut s| {
            read_request(&mut s);
            std::thread::sleep(Duration::from_secs(5));
        });
        // An endless body.
        let huge = target_server(|mut s| {
            read_request(&mut s);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            let line = [b'x'; 64 * 1024];
            while s.write_all(&line).is_ok() {}
        });
        // A status other than 200.
        let missing = target_server(|mut s| {
            read_request(&mut s);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        });
        let mut sc = scraper(false);
        sc.target.timeout = Duration::from_millis(300);
        sc.target.url = slow.parse().unwrap();
        let started = Instant::now();
        let err = sc.fetch().await.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{slow}: no complete answer within scrape_timeout 300ms")
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        sc.target.timeout = Duration::from_secs(10);
        sc.target.body_limit = 1 << 20;
        sc.target.url = huge.parse().unwrap();
        let err = sc.fetch().await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{huge}: body larger than body_size_limit (1048576 bytes)"
            )),
            "{err}"
        );

        sc.target.url = missing.parse().unwrap();
        let err = sc.fetch().await.unwrap_err().to_string();
        assert_eq!(err, format!("{missing}: HTTP status 404 Not Found"));

        // Refused connection.
        sc.target.url = "http://127.0.0.1:9/metrics".parse().unwrap();
        let err = sc.fetch().await.unwrap_err().to_string();
        assert!(
            err.starts_with("http://127.0.0.1:9/metrics: cannot scrape:"),
            "{err}"
        );
    }

    #[test]
    fn target_and_metric_relabelling() {
        let targets = parse_targets(
            &serde_json::json!({"config": {"scrape_configs": [{
                "job_name": "j",
                "params": {"module": ["m1"]},
                "static_configs": [{"targets": ["a:1", "b:2", "skip:3"], "labels": {"dc": "x"}}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "regex": "skip:.*", "action": "drop"},
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__address__"], "regex": "(.*):\\d+", "target_label": "instance"},
                    {"target_label": "__address__", "replacement": "127.0.0.1:9115"},
                    {"target_label": "__metrics_path__", "replacement": "/probe"},
                ],
                "metric_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"},
                    {"source_labels": ["__name__"], "regex": "(.*)_old", "target_label": "__name__"},
                ],
            }]}}),
            "r",
        )
        .unwrap();
        type Row = (String, String, String, Vec<(String, String)>);
        let got: Vec<Row> = targets
            .iter()
            .map(|t| {
                (
                    t.job.clone(),
                    t.instance.clone(),
                    t.url.to_string(),
                    t.labels.clone(),
                )
            })
            .collect();
        let dc = vec![("dc".to_string(), "x".to_string())];
        assert_eq!(
            got,
            vec![
                (
                    "j".into(),
                    "a".into(),
                    "http://127.0.0.1:9115/probe?module=m1&target=a%3A1".into(),
                    dc.clone()
                ),
                (
                    "j".into(),
                    "b".into(),
                    "http://127.0.0.1:9115/probe?module=m1&target=b%3A2".into(),
                    dc
                ),
            ]
        );
        let mut s = scraper(false);
        s.target.metric_relabel = targets[0].metric_relabel.clone();
        let (m, _) = s.convert(
            text::parse("go_threads 5\nx_old{a=\"1\"} 2\nkept 1\n", 0).unwrap(),
            1,
        );
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["x", "kept"]);
        assert_eq!(s.post_relabel, 2);
        assert_eq!(attrs(&m[0]), ["a=1,env=p"]);
    }
}
