//! A read-only catalog source: an existing Prometheus server, read over its HTTP API with GET
//! requests only ([`PromClient`] has no other method), into a [`Snapshot`] of metadata:
//! series per metric and job, distinct values per label name (counted, never kept), metric
//! types, which metrics the recording and alerting rules read, and targets, series and
//! samples per job. `weir catalog connect prometheus URL` takes one snapshot; the
//! `control_plane` extension's `sources.prometheus` takes them periodically
//! ([`poll`]). The findings are computed from the stored snapshots by
//! [`crate::prom_findings`].
//!
//! What is stored: metric names, job names (the `service.name` a Weir edge scraping the job
//! gives it), label names, counts, metric types and units. Never label values other than
//! `job`, and never sample values: the series API's label values are hashed in memory to
//! count them and dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_tls::hyper_rustls::HttpsConnector;

/// Default cap on one API answer's body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;
/// Default timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed read, naming the API path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prometheus {base}: GET {path}: {message}")]
pub struct PromError {
    /// The server (URL without credentials).
    pub base: String,
    /// The API path (`/api/v1/status/tsdb`, ...).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum PromAuth {
    /// None.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for PromAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PromAuth::None => "none",
            PromAuth::Basic { .. } => "basic (redacted)",
            PromAuth::Bearer(_) => "bearer (redacted)",
        })
    }
}

fn read_secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        return Err(format!("{what} {}: the file is empty", path.display()));
    }
    Ok(s)
}

impl PromAuth {
    /// From a user name with a password file, or a bearer token file (as Prometheus's own
    /// `basic_auth.password_file` and `authorization.credentials_file`; one trailing newline
    /// is ignored).
    pub fn from_files(
        username: Option<&str>,
        password_file: Option<&std::path::Path>,
        bearer_token_file: Option<&std::path::Path>,
    ) -> Result<PromAuth, String> {
        match (username, password_file, bearer_token_file) {
            (None, None, None) => Ok(PromAuth::None),
            (Some(u), Some(p), None) => Ok(PromAuth::Basic {
                username: u.to_string(),
                password: read_secret(p, "password file")?,
            }),
            (None, None, Some(t)) => Ok(PromAuth::Bearer(read_secret(t, "bearer token file")?)),
            (Some(_), None, _) => Err("basic authentication needs a password file too".into()),
            (None, Some(_), _) => Err("a password file needs a user name too".into()),
            (Some(_), Some(_), Some(_)) => {
                Err("choose basic authentication or a bearer token, not both".into())
            }
        }
    }

    fn header(&self) -> Option<String> {
        use base64::Engine;
        match self {
            PromAuth::None => None,
            PromAuth::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            PromAuth::Bearer(t) => Some(format!("Bearer {t}")),
        }
    }
}

/// A Prometheus HTTP API client that can only send GET requests.
pub struct PromClient {
    base: String,
    auth: PromAuth,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    max_response_bytes: usize,
    timeout: Duration,
}

/// Checks a Prometheus base URL: `http://` or `https://`, host, optional path prefix, no
/// credentials, query or fragment. Returns it without a trailing `/`.
pub fn check_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "{url:?}: the URL must start with http:// or https://"
            ))
        }
    }
    let Some(auth) = uri.authority() else {
        return Err(format!("{url:?}: no host"));
    };
    if auth.as_str().contains('@') {
        return Err(format!(
            "{}: credentials in the URL are not accepted; use a user name with a password file, or a bearer token file",
            uri.host().unwrap_or("")
        ));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "{url:?}: the URL must not have a query or fragment"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Percent-encodes a query-string component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl PromClient {
    /// A client for `base` (checked with [`check_url`]); `https://` is verified with `tls`.
    pub fn new(
        base: &str,
        auth: PromAuth,
        tls: &weir_tls::ClientTls,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Result<PromClient, String> {
        let base = check_url(base)?;
        let connector = tls.https_connector(weir_tls::HttpVersions::Http1And2);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(PromClient {
            base,
            auth,
            client,
            max_response_bytes: max_response_bytes.max(1024),
            timeout,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn err(&self, path: &str, message: impl Into<String>) -> PromError {
        PromError {
            base: self.base.clone(),
            path: format!("/api/v1/{path}"),
            message: message.into(),
        }
    }

    /// `GET <base>/api/v1/<path>?<query>`: the `data` of a `success` answer. Errors name the
    /// path: no answer, HTTP status (with Prometheus's error text), an answer above the size
    /// cap, not JSON, or not `success`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, PromError> {
        let mut url = format!("{}/api/v1/{path}", self.base);
        if !query.is_empty() {
            let qs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url = format!("{url}?{}", qs.join("&"));
        }
        let mut req = http::Request::get(&url).header(header::ACCEPT, "application/json");
        if let Some(h) = self.auth.header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| self.err(path, e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| self.err(path, format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| self.err(path, format!("cannot connect: {e}")))?;
        let status = resp.status();
        let max = self.max_response_bytes;
        if let Some(len) = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > max as u64 {
                return Err(self.err(
                    path,
                    format!("the answer is {len} bytes, above the cap of {max} bytes"),
                ));
            }
        }
        let body =
            tokio::time::timeout(self.timeout, Limited::new(resp.into_body(), max).collect())
                .await
                .map_err(|_| {
                    self.err(
                        path,
                        format!("the answer did not end within {:?}", self.timeout),
                    )
                })?
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        self.err(
                            path,
                            format!("the answer is larger than the cap of {max} bytes"),
                        )
                    } else {
                        self.err(path, format!("reading the answer: {e}"))
                    }
                })?
                .to_bytes();
        let v: Result<Value, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            let detail = v
                .as_ref()
                .ok()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(|s| format!(": {}", s.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(self.err(path, format!("HTTP {status}{detail}")));
        }
        let mut v = v.map_err(|e| self.err(path, format!("the answer is not JSON: {e}")))?;
        if v.get("status").and_then(Value::as_str) != Some("success") {
            let detail = v
                .get("error")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(200).collect::<String>())
                .unwrap_or_else(|| "no `status: success`".into());
            return Err(self.err(path, format!("Prometheus answered an error: {detail}")));
        }
        match v.get_mut("data") {
            Some(d) => Ok(d.take()),
            None => Err(self.err(path, "the answer has no `data`")),
        }
    }
}

/// Targets, series and samples of one job.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobStat {
    /// Active targets.
    pub targets: u64,
    /// Active targets whose last scrape succeeded.
    pub targets_up: u64,
    /// Series with a sample in the last 5 minutes (Prometheus's lookback).
    pub series: u64,
    /// Samples of its last scrapes (sum of `scrape_samples_post_metric_relabeling`).
    pub samples_per_scrape: u64,
}

/// One metric in one job.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricJob {
    /// Its series.
    pub series: u64,
    /// Distinct values per label name (read from the series API for the larger metrics;
    /// empty when not read). The values themselves are never kept.
    #[serde(default)]
    pub labels: BTreeMap<String, u64>,
}

/// One metric.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricStat {
    /// Type from the metadata API (`counter`, `gauge`, ...; empty when unknown).
    #[serde(default)]
    pub kind: String,
    /// Unit from the metadata API.
    #[serde(default)]
    pub unit: String,
    /// Its series, all jobs.
    pub series: u64,
    /// Per job (`""`: series without a `job` label).
    pub jobs: BTreeMap<String, MetricJob>,
    /// Rules whose expression may read it.
    pub used_by_rules: u64,
    /// A recording rule writes it.
    #[serde(default)]
    pub recorded: bool,
}

/// The rules in use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RuleStat {
    /// Rule groups.
    pub groups: u64,
    /// Recording rules.
    pub recording: u64,
    /// Alerting rules.
    pub alerting: u64,
    /// Selectors without a metric name (`{job="x"}`): every metric they may match counts
    /// as used.
    pub nameless_selectors: u64,
}

/// What one read of a Prometheus server found: metadata and counts only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// The server (URL without credentials).
    pub source: String,
    /// When it was read (unix seconds).
    pub fetched_at: i64,
    /// Series in the TSDB head (`/api/v1/status/tsdb`).
    pub head_series: u64,
    /// Label names (`/api/v1/labels`).
    pub label_names: u64,
    /// Distinct values per label name in the last 5 minutes (`/api/v1/label/<name>/values`,
    /// counted; for label names past `max_label_names`, or whose values could not be read,
    /// the TSDB head's count from `/api/v1/status/tsdb` when it lists them in its top 10).
    pub label_value_counts: BTreeMap<String, u64>,
    /// Per job.
    pub jobs: BTreeMap<String, JobStat>,
    /// Per metric name.
    pub metrics: BTreeMap<String, MetricStat>,
    /// The rules.
    pub rules: RuleStat,
    /// What was not read and why (limits).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Snapshot {
    /// Series of all metrics (with a sample in the last 5 minutes).
    pub fn series(&self) -> u64 {
        self.metrics.values().map(|m| m.series).sum()
    }

    /// What the snapshot holds about one job (service): its stats and its metrics with
    /// their series and label counts in that job; `None` when the job is not in it.
    pub fn job_view(&self, job: &str) -> Option<Value> {
        let stat = self.jobs.get(job)?;
        let metrics: BTreeMap<&String, &MetricJob> = self
            .metrics
            .iter()
            .filter_map(|(n, m)| m.jobs.get(job).map(|j| (n, j)))
            .collect();
        Some(serde_json::json!({
            "source": self.source,
            "fetched_at": self.fetched_at,
            "job": stat,
            "metrics": metrics,
        }))
    }

    /// Removes every trace of one job (service); whether it held any.
    pub fn remove_job(&mut self, job: &str) -> bool {
        let mut changed = self.jobs.remove(job).is_some();
        for m in self.metrics.values_mut() {
            if let Some(j) = m.jobs.remove(job) {
                m.series = m.series.saturating_sub(j.series);
                changed = true;
            }
        }
        self.metrics.retain(|_, m| !m.jobs.is_empty());
        changed
    }
}

/// Limits of one read.
#[derive(Debug, Clone, Copy)]
pub struct CollectLimits {
    /// Per-label counts are read (series API) for metrics with at least this many series.
    pub detail_min_series: u64,
    /// ... and for at most this many of them, largest first.
    pub max_detail_metrics: usize,
    /// At most this many metric names are kept.
    pub max_metrics: usize,
    /// Values are counted for at most this many label names.
    pub max_label_names: usize,
}

impl Default for CollectLimits {
    fn default() -> Self {
        CollectLimits {
            detail_min_series: 100,
            max_detail_metrics: 100,
            max_metrics: 50_000,
            max_label_names: 1_000,
        }
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.parse::<f64>().ok().map(|f| f.max(0.0) as u64),
        _ => None,
    }
}

/// The labels of one series in an answer.
type Labels = serde_json::Map<String, Value>;

/// An instant-vector answer as (labels, value) pairs; errors name the path.
fn vector<'a>(c: &PromClient, data: &'a Value) -> Result<Vec<(&'a Labels, u64)>, PromError> {
    let shape = || c.err("query", "the answer is not an instant vector");
    if data.get("resultType").and_then(Value::as_str) != Some("vector") {
        return Err(shape());
    }
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(shape)?;
    let mut out = Vec::with_capacity(result.len());
    for r in result {
        let labels = r
            .get("metric")
            .and_then(Value::as_object)
            .ok_or_else(shape)?;
        let value = r
            .get("value")
            .and_then(|v| v.get(1))
            .and_then(as_u64)
            .ok_or_else(shape)?;
        out.push((labels, value));
    }
    Ok(out)
}

fn label<'a>(m: &'a Labels, name: &str) -> &'a str {
    m.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Metric names synthesised by Prometheus itself for every target (not subject to
/// `metric_relabel_configs`) or by its rule engine.
pub fn synthetic_metric(name: &str) -> bool {
    matches!(
        name,
        "up" | "scrape_duration_seconds"
            | "scrape_samples_scraped"
            | "scrape_samples_post_metric_relabeling"
            | "scrape_series_added"
            | "scrape_timeout_seconds"
            | "scrape_sample_limit"
            | "scrape_body_size_bytes"
            | "ALERTS"
            | "ALERTS_FOR_STATE"
    )
}

/// Reads one snapshot (GET requests only; see the module docs for what is kept).
pub async fn collect(
    c: &PromClient,
    limits: &CollectLimits,
    now: i64,
) -> Result<Snapshot, PromError> {
    let mut snap = Snapshot {
        source: c.base.clone(),
        fetched_at: now,
        ..Default::default()
    };
    // TSDB status: head series and label names with the most values. Its
    // `seriesCountByLabelValuePair` holds label values: not read.
    let tsdb = c.get("status/tsdb", &[]).await?;
    snap.head_series = tsdb
        .pointer("/headStats/numSeries")
        .and_then(as_u64)
        .ok_or_else(|| c.err("status/tsdb", "no headStats.numSeries in the answer"))?;
    if let Some(list) = tsdb
        .get("labelValueCountByLabelName")
        .and_then(Value::as_array)
    {
        for e in list {
            if let (Some(n), Some(v)) = (e.get("name").and_then(Value::as_str), e.get("value")) {
                snap.label_value_counts
                    .insert(n.to_string(), as_u64(v).unwrap_or(0));
            }
        }
    }
    let start = (now - 300).to_string();
    let end = now.to_string();
    let window = [("start", start.as_str()), ("end", end.as_str())];
    let labels = c.get("labels", &window).await?;
    let labels = labels
        .as_array()
        .ok_or_else(|| c.err("labels", "the answer is not a list of label names"))?;
    snap.label_names = labels.len() as u64;
    // Distinct values per label name (last 5 minutes), counted: the values are dropped.
    let names: Vec<&str> = labels.iter().filter_map(Value::as_str).collect();
    if names.len() > limits.max_label_names {
        snap.notes.push(format!(
            "values counted for the first {} of {} label names",
            limits.max_label_names,
            names.len()
        ));
    }
    for name in names.into_iter().take(limits.max_label_names) {
        let path = format!("label/{}/values", encode(name));
        match c.get(&path, &window).await {
            Ok(v) => match v.as_array() {
                Some(values) => {
                    snap.label_value_counts
                        .insert(name.to_string(), values.len() as u64);
                }
                None => return Err(c.err(&path, "the answer is not a list of values")),
            },
            Err(e) => snap
                .notes
                .push(format!("values of label {name} not counted: {}", e.message)),
        }
    }

    // Series per metric and job: one instant query.
    let data = c
        .get(
            "query",
            &[("query", "count by (__name__, job) ({__name__=~\".+\"})")],
        )
        .await?;
    let mut dropped = 0usize;
    for (m, n) in vector(c, &data)? {
        let name = label(m, "__name__");
        if name.is_empty() {
            continue;
        }
        if !snap.metrics.contains_key(name) && snap.metrics.len() >= limits.max_metrics {
            dropped += 1;
            continue;
        }
        let stat = snap.metrics.entry(name.to_string()).or_default();
        stat.series += n;
        stat.jobs
            .entry(label(m, "job").to_string())
            .or_default()
            .series += n;
        snap.jobs
            .entry(label(m, "job").to_string())
            .or_default()
            .series += n;
    }
    if dropped > 0 {
        snap.notes.push(format!(
            "{dropped} metric names past the first {} were not kept",
            limits.max_metrics
        ));
    }

    // Metadata: type and unit.
    let meta = c.get("metadata", &[]).await?;
    let meta = meta
        .as_object()
        .ok_or_else(|| c.err("metadata", "the answer is not an object of metric names"))?;
    for (name, entries) in meta {
        if let Some(stat) = snap.metrics.get_mut(name) {
            if let Some(e) = entries.as_array().and_then(|a| a.first()) {
                stat.kind = e.get("type").and_then(Value::as_str).unwrap_or("").into();
                stat.unit = e.get("unit").and_then(Value::as_str).unwrap_or("").into();
            }
        }
    }

    // Rules: which metrics their expressions read.
    let rules = c.get("rules", &[]).await?;
    let groups = rules
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(|| c.err("rules", "the answer has no `groups` list"))?;
    let mut selectors = Vec::new();
    for g in groups {
        snap.rules.groups += 1;
        for r in g
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let query = r.get("query").and_then(Value::as_str).unwrap_or("");
            match r.get("type").and_then(Value::as_str) {
                Some("recording") => {
                    snap.rules.recording += 1;
                    if let Some(n) = r.get("name").and_then(Value::as_str) {
                        if let Some(m) = snap.metrics.get_mut(n) {
                            m.recorded = true;
                        }
                    }
                }
                Some("alerting") => snap.rules.alerting += 1,
                _ => {}
            }
            selectors.push(promql::selectors(query));
        }
    }
    for rule in &selectors {
        let mut used: BTreeSet<&str> = BTreeSet::new();
        for s in rule {
            if s.name.is_none() {
                snap.rules.nameless_selectors += 1;
            }
            for (name, stat) in &snap.metrics {
                let job_ok = s.job.as_ref().is_none_or(|j| stat.jobs.contains_key(j));
                if job_ok && s.may_match(name) {
                    used.insert(name);
                }
            }
        }
        let used: Vec<String> = used.into_iter().map(str::to_string).collect();
        for n in used {
            if let Some(m) = snap.metrics.get_mut(&n) {
                m.used_by_rules += 1;
            }
        }
    }

    // Targets per job.
    let targets = c.get("targets", &[("state", "active")]).await?;
    let active = targets
        .get("activeTargets")
        .and_then(Value::as_array)
        .ok_or_else(|| c.err("targets", "the answer has no `activeTargets` list"))?;
    for t in active {
        let job = t
            .pointer("/labels/job")
            .and_then(Value::as_str)
            .unwrap_or("");
        let j = snap.jobs.entry(job.to_string()).or_default();
        j.targets += 1;
        if t.get("health").and_then(Value::as_str) == Some("up") {
            j.targets_up += 1;
        }
    }
    // Samples per scrape per job.
    let data = c
        .get(
            "query",
            &[(
                "query",
                "sum by (job) (scrape_samples_post_metric_relabeling)",
            )],
        )
        .await?;
    for (m, n) in vector(c, &data)? {
        snap.jobs
            .entry(label(m, "job").to_string())
            .or_default()
            .samples_per_scrape = n;
    }

    // Distinct values per label of the larger metrics, from the series API (the values
    // are hashed in memory to count them, then dropped).
    let mut big: Vec<(&String, u64)> = snap
        .metrics
        .iter()
        .filter(|(_, m)| m.series >= limits.detail_min_series)
        .map(|(n, m)| (n, m.series))
        .collect();
    big.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if big.len() > limits.max_detail_metrics {
        snap.notes.push(format!(
            "per-label counts read for the {} largest of {} metrics with at least {} series",
            limits.max_detail_metrics,
            big.len(),
            limits.detail_min_series
        ));
    }
    let big: Vec<String> = big
        .into_iter()
        .take(limits.max_detail_metrics)
        .map(|(n, _)| n.clone())
        .collect();
    let hasher = RandomState::new();
    for name in big {
        let sel = format!("{{__name__=\"{name}\"}}");
        let data = match c
            .get(
                "series",
                &[("match[]", &sel), ("start", &start), ("end", &end)],
            )
            .await
        {
            Ok(d) => d,
            Err(e) => {
                snap.notes.push(format!(
                    "per-label counts of {name} not read: {}",
                    e.message
                ));
                continue;
            }
        };
        let Some(list) = data.as_array() else {
            return Err(c.err("series", "the answer is not a list of series"));
        };
        let mut per_job: HashMap<&str, HashMap<&str, HashSet<u64>>> = HashMap::new();
        for s in list {
            let Some(s) = s.as_object() else {
                return Err(c.err("series", "a series is not an object of labels"));
            };
            let job = label(s, "job");
            let labels = per_job.entry(job).or_default();
            for (k, v) in s {
                if k == "__name__" {
                    continue;
                }
                labels
                    .entry(k.as_str())
                    .or_default()
                    .insert(hasher.hash_one(v.as_str().unwrap_or("")));
            }
        }
        if let Some(stat) = snap.metrics.get_mut(&name) {
            for (job, labels) in per_job {
                if let Some(j) = stat.jobs.get_mut(job) {
                    j.labels = labels
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.len() as u64))
                        .collect();
                }
            }
        }
    }
    Ok(snap)
}

/// A small PromQL reader: the series selectors of an expression, enough to tell which
/// metric names it may read. Limits: it does not parse the grammar, it scans tokens;
/// selectors are `name`, `name{...}` and `{...}`; of the matchers only those on `__name__`
/// and `job="..."` are kept; a name that is also a keyword (`sum`, `by`, `offset`, ...) or
/// a function name followed by `(` is never taken as a metric.
pub mod promql {
    /// One series selector.
    #[derive(Debug, Clone)]
    pub struct Selector {
        /// How `__name__` is matched (`None`: no name matcher, any metric).
        pub name: Option<NameMatch>,
        /// A `job="..."` matcher.
        pub job: Option<String>,
    }

    /// A matcher on the metric name.
    #[derive(Debug, Clone)]
    pub enum NameMatch {
        /// `name` or `__name__="name"`.
        Equal(String),
        /// `__name__!="name"`.
        NotEqual(String),
        /// `__name__=~"re"` (anchored, as Prometheus does); `None` when the regex does not
        /// compile (then every name may match).
        Regex(Option<regex::Regex>),
        /// `__name__!~"re"`.
        NotRegex(Option<regex::Regex>),
    }

    impl Selector {
        /// Whether the selector may read the metric `name` (label matchers other than the
        /// name's are not evaluated, so "may").
        pub fn may_match(&self, name: &str) -> bool {
            match &self.name {
                None => true,
                Some(NameMatch::Equal(n)) => n == name,
                Some(NameMatch::NotEqual(n)) => n != name,
                Some(NameMatch::Regex(Some(re))) => re.is_match(name),
                Some(NameMatch::NotRegex(Some(re))) => !re.is_match(name),
                Some(NameMatch::Regex(None)) | Some(NameMatch::NotRegex(None)) => true,
            }
        }
    }

    const KEYWORDS: [&str; 27] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "atan2",
        "inf",
    ];
    /// Keywords followed by a parenthesised list of label names.
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];

    fn ident_start(c: char) -> bool {
        c.is_ascii_alphabetic() || c == '_' || c == ':'
    }
    fn ident_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_' || c == ':'
    }

    /// Skips a quoted string starting at `i` (the quote); returns its content and the index
    /// after it.
    fn string(chars: &[char], i: usize) -> (String, usize) {
        let q = chars[i];
        let mut out = String::new();
        let mut j = i + 1;
        while j < chars.len() && chars[j] != q {
            if chars[j] == '\\' && q != '`' && j + 1 < chars.len() {
                j += 1;
                out.push(match chars[j] {
                    'n' => '\n',
                    't' => '\t',
                    c => c,
                });
            } else {
                out.push(chars[j]);
            }
            j += 1;
        }
        (out, j + 1)
    }

    fn skip_ws(chars: &[char], mut i: usize) -> usize {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    }

    fn regex(re: &str) -> Option<regex::Regex> {
        regex::Regex::new(&format!("^(?:{re})$")).ok()
    }

    /// Parses `{...}` at `i` (the brace); fills `sel`; returns the index after `}`.
    fn matchers(chars: &[char], i: usize, sel: &mut Selector) -> usize {
        let mut j = i + 1;
        loop {
            j = skip_ws(chars, j);
            if j >= chars.len() {
                return j;
            }
            match chars[j] {
                '}' => return j + 1,
                ',' => {
                    j += 1;
                    continue;
                }
                _ => {}
            }
            let start = j;
            // A label name, or a quoted one (UTF-8 names).
            let lname = if chars[j] == '"' || chars[j] == '\'' {
                let (s, k) = string(chars, j);
                j = k;
                s
            } else {
                while j < chars.len() && ident_char(chars[j]) {
                    j += 1;
                }
                chars[start..j].iter().collect()
            };
            j = skip_ws(chars, j);
            let mut op = String::new();
            while j < chars.len() && matches!(chars[j], '=' | '!' | '~') {
                op.push(chars[j]);
                j += 1;
            }
            j = skip_ws(chars, j);
            if op.is_empty() {
                // `{"name"}`: a quoted metric name.
                if sel.name.is_none() && !lname.is_empty() {
                    sel.name = Some(NameMatch::Equal(lname));
                }
                if j == start {
                    j += 1;
                }
                continue;
            }
            let value = if j < chars.len() && matches!(chars[j], '"' | '\'' | '`') {
                let (s, k) = string(chars, j);
                j = k;
                s
            } else {
                String::new()
            };
            if lname == "__name__" {
                sel.name = Some(match op.as_str() {
                    "=" => NameMatch::Equal(value),
                    "!=" => NameMatch::NotEqual(value),
                    "=~" => NameMatch::Regex(regex(&value)),
                    _ => NameMatch::NotRegex(regex(&value)),
                });
            } else if lname == "job" && op == "=" {
                sel.job = Some(value);
            }
        }
    }

    /// Every series selector of `expr`.
    pub fn selectors(expr: &str) -> Vec<Selector> {
        let chars: Vec<char> = expr.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '#' {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if matches!(c, '"' | '\'' | '`') {
                i = string(&chars, i).1;
            } else if c == '[' {
                // A range or subquery duration.
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                i += 1;
            } else if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            {
                // Numbers and durations (`5m`, `1e3`, `0x1f`).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            } else if c == '{' {
                let mut sel = Selector {
                    name: None,
                    job: None,
                };
                i = matchers(&chars, i, &mut sel);
                out.push(sel);
            } else if ident_start(c) {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let next = skip_ws(&chars, i);
                let after = chars.get(next).copied();
                if GROUPING.contains(&lower.as_str()) {
                    // `by (a, b)`: label names, not metrics.
                    if after == Some('(') {
                        while i < chars.len() && chars[i] != ')' {
                            i += 1;
                        }
                        i += 1;
                    }
                } else if KEYWORDS.contains(&lower.as_str()) || lower == "nan" {
                    // Keywords and the NaN / Inf literals.
                } else if after == Some('(') {
                    // A function call.
                } else {
                    let mut sel = Selector {
                        name: Some(NameMatch::Equal(word)),
                        job: None,
                    };
                    if after == Some('{') {
                        i = matchers(&chars, next, &mut sel);
                    }
                    out.push(sel);
                }
            } else {
                i += 1;
            }
        }
        out
    }
}

/// Stores one snapshot of `c` in the control plane; returns it.
pub async fn connect(
    control: &crate::control::ControlPlane,
    c: &PromClient,
    limits: &CollectLimits,
) -> Result<Snapshot, String> {
    let snap = collect(c, limits, crate::store::now_secs())
        .await
        .map_err(|e| e.to_string())?;
    control
        .store()
        .put_prometheus_snapshot(&snap)
        .map_err(|e| e.to_string())?;
    Ok(snap)
}

/// A `sources.prometheus` entry of the `control_plane` extension.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromSourceConfig {
    /// The server's base URL (`http://prometheus:9090`, with a path prefix if it has one).
    pub endpoint: String,
    /// How often it is read. Default: 5m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Basic authentication: `username` and `password_file`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// A file holding a bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// TLS for `https://` endpoints (weir-tls client settings). Default: system roots.
    #[serde(default)]
    pub tls: weir_tls::TlsClientSettings,
    /// Cap on one API answer. Default: 32 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// Timeout of one request. Default: 30s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Basic authentication settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub username: String,
    /// File holding the password.
    pub password_file: String,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_max_response() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl PromSourceConfig {
    /// Problems with the settings, as (field, message).
    pub fn check(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Err(e) = check_url(&self.endpoint) {
            out.push(("endpoint".into(), e));
        }
        if self.interval < Duration::from_secs(1) {
            out.push(("interval".into(), "must be at least 1s".into()));
        }
        if self.basic_auth.is_some() && self.bearer_token_file.is_some() {
            out.push((
                "bearer_token_file".into(),
                "choose basic_auth or bearer_token_file, not both".into(),
            ));
        }
        if self.max_response_bytes < 1024 {
            out.push(("max_response_bytes".into(), "must be at least 1024".into()));
        }
        if self.timeout.is_zero() {
            out.push(("timeout".into(), "must be greater than 0".into()));
        }
        out
    }

    /// The client (credential files are read now, so a rotated file is picked up at the
    /// next read).
    pub fn client(&self, field: &str) -> Result<PromClient, String> {
        let auth = PromAuth::from_files(
            self.basic_auth.as_ref().map(|b| b.username.as_str()),
            self.basic_auth
                .as_ref()
                .map(|b| std::path::Path::new(&b.password_file)),
            self.bearer_token_file.as_deref().map(std::path::Path::new),
        )?;
        let tls = self
            .tls
            .load(&format!("{field}.tls"), |p: &str| {
                std::path::PathBuf::from(p)
            })
            .map_err(|e| e.to_string())?;
        PromClient::new(
            &self.endpoint,
            auth,
            &tls,
            self.max_response_bytes,
            self.timeout,
        )
    }
}

/// Reads `cfg` every `interval` into the store until `stop` turns true. Failures are logged
/// (naming the API path) and retried at the next interval.
pub async fn poll(
    control: std::sync::Arc<crate::control::ControlPlane>,
    cfg: PromSourceConfig,
    field: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match cfg.client(&field) {
            Ok(client) => match connect(&control, &client, &CollectLimits::default()).await {
                Ok(s) => tracing::info!(
                    source = %s.source,
                    metrics = s.metrics.len(),
                    series = s.series(),
                    "prometheus source read"
                ),
                Err(e) => tracing::warn!(source = %field, error = %e, "prometheus source not read"),
            },
            Err(e) => tracing::warn!(source = %field, error = %e, "prometheus source not read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.changed() => return,
        }
    }
}
