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

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod client;
pub mod promql;
mod source;

use client::encode;
pub use client::{
    check_url, PromAuth, PromClient, PromError, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT,
};
pub use source::{connect, poll, BasicAuthConfig, PromSourceConfig};

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
