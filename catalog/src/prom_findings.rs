//! Findings from the Prometheus snapshots ([`crate::prometheus`]): metrics with many series
//! in a job and the label that drives them, and metrics no recording or alerting rule reads.
//!
//! They go through the same steps as the edges' findings (docs/ADVICE.md): each suggested
//! Weir policy (drop the metric for `service.name` = the job, which is what a Weir edge
//! scraping the job with the `prometheus` receiver sets) is dry-run by the policy engine on
//! one synthetic data point per metric of the job and shown only if it matches exactly the
//! metric it claims and nothing of another service; metrics an existing policy already
//! drops are covered, not counted; each (job, metric) is counted once, by the finding with
//! the larger saving first. The unit of this part of the ledger is the **series**, not the
//! byte: Prometheus reports series, not bytes, so these findings carry
//! `saving_bytes_per_day: 0` and their saving in `series.saving_series`, summed apart in
//! `Advice::saving_series`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::advice::ExistingPolicy;
use crate::analysis::{
    metric_policy, short_hash, Finding, Measured, Thresholds, WasteKind, Withheld,
};
use crate::dryrun::{keep_effect, matches, metric_sample, Sample};
use crate::prometheus::{synthetic_metric, Snapshot};

/// The series side of a Prometheus finding.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesSaving {
    /// The Prometheus server it was read from.
    pub source: String,
    /// When (unix seconds).
    pub fetched_at: i64,
    /// Series the finding is about (the metric's series in the job).
    pub series: u64,
    /// Series the suggested policy saves, counted once in the ledger (0 when another
    /// finding or an existing policy already counts them).
    pub saving_series: u64,
    /// The same change as Prometheus `metric_relabel_configs` for the job's scrape config.
    pub relabel: String,
}

/// The Prometheus part of the advice.
#[derive(Debug, Clone, Default)]
pub struct PromAdvice {
    /// Open findings, largest series saving first.
    pub findings: Vec<Finding>,
    /// Accepted ones.
    pub accepted: Vec<Finding>,
    /// Withheld candidates.
    pub withheld: Vec<Withheld>,
    /// Sum of the open findings' `saving_series`.
    pub saving_series: u64,
}

struct Candidate {
    id: String,
    kind: WasteKind,
    job: String,
    metric: String,
    title: String,
    evidence: Vec<String>,
    series: u64,
    relabel: String,
    source: String,
    fetched_at: i64,
    policy: serde_json::Value,
}

/// The relabel rule dropping `metric`.
pub fn relabel_drop(metric: &str) -> String {
    format!(
        "metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: '{metric}'\n    action: drop\n"
    )
}

/// The relabel rule removing `label` from `metric` only (an empty replacement removes the
/// label; `labeldrop` would remove it from every metric of the job).
pub fn relabel_remove_label(metric: &str, label: &str) -> String {
    format!(
        "metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: '{metric}'\n    target_label: {label}\n    replacement: ''\n    action: replace\n"
    )
}

fn candidates(snap: &Snapshot, t: &Thresholds, out: &mut BTreeMap<String, Candidate>) {
    let rules = snap.rules.recording + snap.rules.alerting;
    for (name, m) in &snap.metrics {
        for (job, mj) in &m.jobs {
            if job.is_empty() || mj.series == 0 {
                continue;
            }
            // Never suggest dropping what a rule reads or writes: an alert or a dashboard's
            // recording would go silent (the unused-metric finding covers the rest).
            if mj.series >= t.metric_series_min && m.used_by_rules == 0 && !m.recorded {
                let dominant = mj
                    .labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "job")
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
                let mut title = format!(
                    "{job}: metric {name} has {} series in Prometheus",
                    mj.series
                );
                let mut evidence = vec![format!(
                    "{} series of {name} in job {job} (of {} in all jobs), read from {}",
                    mj.series, m.series, snap.source
                )];
                let mut relabel = relabel_drop(name);
                if let Some((label, distinct)) = dominant {
                    evidence.push(format!(
                        "label {label} has {distinct} distinct values: it drives {:.0}% of the series",
                        100.0 * (*distinct as f64 / mj.series.max(1) as f64).min(1.0)
                    ));
                    if distinct * 2 >= mj.series {
                        title = format!("{title}, driven by label {label}");
                    }
                    evidence.push(format!(
                        "removing {label} from {name} would leave about {} series, but only if its other labels still tell the series apart; otherwise Prometheus rejects the colliding samples: aggregate at the source instead",
                        (mj.series / distinct.max(&1)).max(1)
                    ));
                    relabel.push_str(&format!(
                        "# or, to remove only the label from this metric (labeldrop would remove it from every metric of the job):\n{}",
                        relabel_remove_label(name, label)
                    ));
                } else {
                    evidence.push("per-label counts were not read for this metric".into());
                }
                evidence.push(format!(
                    "the Weir policy drops {name} at an edge scraping job {job} (prometheus receiver, service.name = job); Weir metric policies cannot remove a label"
                ));
                evidence.push(
                    "savings are series, not bytes: Prometheus does not report bytes per series"
                        .into(),
                );
                let id = format!("prom-cardinality-{}", short_hash(&[job, name]));
                out.entry(id.clone()).or_insert(Candidate {
                    policy: metric_policy(
                        &id,
                        &format!("Drop high-cardinality metric {name} from {job}"),
                        "Suggested by the Weir catalog from Prometheus: one metric with very many series.",
                        job,
                        name,
                    ),
                    id,
                    kind: WasteKind::PrometheusLabelCardinality,
                    job: job.clone(),
                    metric: name.clone(),
                    title,
                    evidence,
                    series: mj.series,
                    relabel,
                    source: snap.source.clone(),
                    fetched_at: snap.fetched_at,
                });
            }
            if m.used_by_rules == 0 && !m.recorded && !synthetic_metric(name) {
                let id = format!("prom-unused-{}", short_hash(&[job, name]));
                let evidence = vec![
                    format!(
                        "none of the {rules} recording and alerting rules of {} reads {name}; {} series in job {job}",
                        snap.source, mj.series
                    ),
                    "dashboards and ad-hoc queries are not visible to the catalog: check them before dropping".into(),
                    "savings are series, not bytes: Prometheus does not report bytes per series".into(),
                ];
                out.entry(id.clone()).or_insert(Candidate {
                    policy: metric_policy(
                        &id,
                        &format!("Drop metric {name} of {job}: no rule reads it"),
                        "Suggested by the Weir catalog from Prometheus: a metric no recording or alerting rule reads.",
                        job,
                        name,
                    ),
                    id,
                    kind: WasteKind::PrometheusUnusedMetric,
                    job: job.clone(),
                    metric: name.clone(),
                    title: format!("{job}: metric {name} is used by no rule ({} series)", mj.series),
                    evidence,
                    series: mj.series,
                    relabel: relabel_drop(name),
                    source: snap.source.clone(),
                    fetched_at: snap.fetched_at,
                });
            }
        }
    }
}

/// Per job: its metrics (sorted) with a synthetic data point each, and their series.
type JobUnits = BTreeMap<String, Vec<(String, u64, Sample)>>;

fn job_units(snaps: &[Snapshot]) -> JobUnits {
    let mut out: JobUnits = BTreeMap::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for s in snaps {
        for (name, m) in &s.metrics {
            for (job, mj) in &m.jobs {
                if job.is_empty() || !seen.insert((job.clone(), name.clone())) {
                    continue;
                }
                let keys: Vec<String> = mj.labels.keys().cloned().collect();
                out.entry(job.clone()).or_default().push((
                    name.clone(),
                    mj.series,
                    Sample::Metric(metric_sample(name, &keys)),
                ));
            }
        }
    }
    out
}

/// The Prometheus findings: a pure function of the snapshots and the stored policies.
pub fn advise(
    snaps: &[Snapshot],
    existing: &[ExistingPolicy],
    dismissed: &[String],
    t: &Thresholds,
) -> PromAdvice {
    let mut out = PromAdvice::default();
    let mut cands = BTreeMap::new();
    for s in snaps {
        candidates(s, t, &mut cands);
    }
    let units = job_units(snaps);
    // Owner of each (job, metric): an existing policy, then the findings, largest first.
    let mut owner: BTreeMap<(String, String), String> = BTreeMap::new();
    for (job, list) in &units {
        let samples: Vec<&Sample> = list.iter().map(|(_, _, s)| s).collect();
        for p in existing.iter().filter(|p| p.enabled) {
            if !keep_effect(&p.body).drops() {
                continue;
            }
            let Ok(m) = matches(&p.body, job, &samples) else {
                continue;
            };
            for ((name, _, _), hit) in list.iter().zip(m) {
                if hit {
                    owner
                        .entry((job.clone(), name.clone()))
                        .or_insert_with(|| format!("policy {}", p.id));
                }
            }
        }
    }
    let mut vetted = Vec::new();
    for c in cands.into_values() {
        if let Some(p) = existing.iter().find(|p| p.id == c.id) {
            out.accepted
                .push(finding(&c, 0, Vec::new(), accepted_status(p), Some(p)));
            continue;
        }
        if dismissed.contains(&c.id) {
            continue;
        }
        match vet(&c, &units) {
            Ok(()) => vetted.push(c),
            Err(reason) => out.withheld.push(Withheld {
                id: c.id,
                service: c.job,
                kind: c.kind,
                title: c.title,
                reason,
            }),
        }
    }
    vetted.sort_by(|a, b| b.series.cmp(&a.series).then(a.id.cmp(&b.id)));
    for c in vetted {
        let key = (c.job.clone(), c.metric.clone());
        match owner.get(&key) {
            Some(o) if o.starts_with("policy ") => out.withheld.push(Withheld {
                id: c.id,
                service: c.job,
                kind: c.kind,
                title: c.title,
                reason: format!("its series are already covered by {o}"),
            }),
            Some(o) => {
                let o = o.clone();
                out.findings
                    .push(finding(&c, 0, vec![o], "open".into(), None));
            }
            None => {
                owner.insert(key, format!("finding {}", c.id));
                out.saving_series += c.series;
                out.findings
                    .push(finding(&c, c.series, Vec::new(), "open".into(), None));
            }
        }
    }
    out
}

fn accepted_status(p: &ExistingPolicy) -> String {
    if p.shadow { "shadow" } else { "enforced" }.into()
}

/// The safety rule's first part, as for the edges' findings: the policy matches exactly
/// the metric it claims in its job, and nothing of another service.
fn vet(c: &Candidate, units: &JobUnits) -> Result<(), String> {
    let list = units.get(&c.job).map(Vec::as_slice).unwrap_or(&[]);
    let samples: Vec<&Sample> = list.iter().map(|(_, _, s)| s).collect();
    let m = matches(&c.policy, &c.job, &samples)?;
    let extra: Vec<&str> = list
        .iter()
        .zip(&m)
        .filter(|((n, _, _), hit)| **hit && *n != c.metric)
        .map(|((n, _, _), _)| n.as_str())
        .collect();
    let claimed = list
        .iter()
        .zip(&m)
        .any(|((n, _, _), hit)| *hit && *n == c.metric);
    if !extra.is_empty() || !claimed {
        return Err(format!(
            "the dry-run of its policy does not match what it claims: it matches {} other metrics, and the claimed metric {}",
            extra.len(),
            if claimed { "too" } else { "not" }
        ));
    }
    let other = matches(&c.policy, "weir.dry-run.another-service", &samples)?;
    if other.iter().any(|x| *x) {
        return Err("its policy would also match other services".into());
    }
    Ok(())
}

fn finding(
    c: &Candidate,
    saving_series: u64,
    overlaps: Vec<String>,
    status: String,
    accepted: Option<&ExistingPolicy>,
) -> Finding {
    Finding {
        id: c.id.clone(),
        service: c.job.clone(),
        signal: "metrics".into(),
        kind: c.kind,
        title: c.title.clone(),
        evidence: c.evidence.clone(),
        items_per_day: 0.0,
        bytes_per_day: 0.0,
        saving_bytes_per_day: 0.0,
        gross_saving_bytes_per_day: 0.0,
        window_seconds: 0.0,
        projection: format!(
            "series in Prometheus {} when read (series, not bytes)",
            c.source
        ),
        would_drop: Default::default(),
        overlaps,
        status,
        measured: accepted.map(|p| Measured {
            mode: accepted_status(p),
            estimated_items_per_day: 0.0,
            estimated_bytes_per_day: 0.0,
            enforced_items: p.enforced_hits,
            shadow_items: p.shadow_hits,
            enforced_bytes: 0.0,
            shadow_bytes: 0.0,
        }),
        policy: accepted.map_or_else(|| c.policy.clone(), |p| p.body.clone()),
        series: Some(SeriesSaving {
            source: c.source.clone(),
            fetched_at: c.fetched_at,
            series: c.series,
            saving_series,
            relabel: c.relabel.clone(),
        }),
        read_share: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::{MetricJob, MetricStat};

    fn snapshot(used_by_rules: u64, recorded: bool) -> Snapshot {
        let mut s = Snapshot {
            source: "http://prom".into(),
            ..Snapshot::default()
        };
        let metric = MetricStat {
            kind: "counter".into(),
            series: 600,
            jobs: [(
                "api".to_string(),
                MetricJob {
                    series: 600,
                    labels: [("user".to_string(), 600u64)].into_iter().collect(),
                },
            )]
            .into_iter()
            .collect(),
            used_by_rules,
            recorded,
            ..MetricStat::default()
        };
        s.metrics.insert("http_requests_total".into(), metric);
        s
    }

    fn cardinality_findings(s: &Snapshot) -> usize {
        let advice = advise(std::slice::from_ref(s), &[], &[], &Thresholds::default());
        advice
            .findings
            .iter()
            .filter(|f| f.id.starts_with("prom-cardinality-"))
            .count()
    }

    #[test]
    fn a_metric_rules_read_or_write_is_never_suggested_for_dropping() {
        assert_eq!(cardinality_findings(&snapshot(0, false)), 1);
        assert_eq!(cardinality_findings(&snapshot(1, false)), 0);
        assert_eq!(cardinality_findings(&snapshot(0, true)), 0);
    }
}
