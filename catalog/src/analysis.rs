//! Waste analysis over the catalog: each finding carries its evidence, the volume and bytes
//! per day it affects, the estimated saving and a ready policy in the policy
//! specification's JSON form.

use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_metadata::summary::{Seen, ServiceSummary};

/// What kind of waste a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WasteKind {
    /// DEBUG/TRACE logs shipped from production.
    DebugLogs,
    /// Health-check / readiness-probe logs.
    HealthCheckLogs,
    /// Health-check / readiness-probe spans.
    HealthCheckSpans,
    /// One template making most of a service's log volume.
    DominantTemplate,
    /// The same record repeated back to back.
    DuplicateBursts,
    /// Log records far larger than usual.
    LargePayloads,
    /// An attribute whose values are nearly all distinct.
    HighCardinalityAttribute,
    /// An attribute that always carries the same value.
    ConstantAttribute,
    /// A metric whose value never changes.
    ConstantMetric,
    /// Internal spans with no children (instrumentation noise).
    InstrumentationNoise,
}

/// One finding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// Stable id: same waste, same id across runs (so a dismissal sticks).
    pub id: String,
    /// The service.
    pub service: String,
    /// `logs`, `traces` or `metrics`.
    pub signal: String,
    /// Category.
    pub kind: WasteKind,
    /// One line a person reads.
    pub title: String,
    /// Facts behind it (counts, shares, names; never values).
    pub evidence: Vec<String>,
    /// Items affected per day (extrapolated from the observed window).
    pub items_per_day: f64,
    /// Bytes affected per day.
    pub bytes_per_day: f64,
    /// Estimated bytes saved per day if the suggested policy is enforced.
    pub saving_bytes_per_day: f64,
    /// The suggested policy (policy specification JSON form).
    pub policy: serde_json::Value,
}

/// Thresholds; defaults suit most fleets.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Minimum share of a service's logs at DEBUG/TRACE to report.
    pub debug_share: f64,
    /// Share of a service's logs one template must exceed to be "dominant".
    pub dominant_share: f64,
    /// Average encoded size (bytes) above which a template's records are "large".
    pub large_record_bytes: u64,
    /// Minimum items behind an attribute finding.
    pub min_items: u64,
    /// Distinct/items ratio above which an attribute is "high cardinality".
    pub high_cardinality_ratio: f64,
    /// Minimum distinct values for a high-cardinality finding.
    pub high_cardinality_min: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            debug_share: 0.05,
            dominant_share: 0.5,
            large_record_bytes: 4096,
            min_items: 100,
            high_cardinality_ratio: 0.5,
            high_cardinality_min: 1000,
        }
    }
}

const HEALTH_WORDS: [&str; 7] = [
    "health",
    "healthz",
    "readyz",
    "livez",
    "readiness",
    "liveness",
    "/ping",
];

fn is_health(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    HEALTH_WORDS.iter().any(|w| t.contains(w))
}

/// Per-day scale for counts seen over `seen` (a window shorter than a minute counts as one).
fn per_day(seen: &Seen) -> f64 {
    let window_ns = seen.last_unix_nano.saturating_sub(seen.first_unix_nano);
    let window_s = (window_ns as f64 / 1e9).max(60.0);
    86_400.0 / window_s
}

fn short_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn service_match(service: &str) -> serde_json::Value {
    json!({"resource_attribute": ["service.name"], "equals": service})
}

/// A regex matching bodies of a masked template: literal parts escaped, `<*>` as `.*`.
pub fn template_regex(template: &str) -> String {
    let parts: Vec<String> = template.split("<*>").map(regex::escape).collect();
    format!("^{}$", parts.join(".*?"))
}

fn policy(
    id: &str,
    name: &str,
    description: &str,
    target: (&str, serde_json::Value),
) -> serde_json::Value {
    let mut p = json!({"id": id, "name": name, "description": description, "enabled": true});
    p[target.0] = target.1;
    p
}

/// Finds waste in one service's summary.
pub fn analyse_service(service: &str, s: &ServiceSummary, t: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    let logs = &s.logs;
    let mut log_seen = Seen::default();
    for tpl in logs.templates.values() {
        log_seen.observe(tpl.seen.first_unix_nano);
        log_seen.observe(tpl.seen.last_unix_nano);
    }
    let scale = per_day(&log_seen);
    let total = logs.volume.items.max(1) as f64;
    let avg_bytes = logs.volume.bytes as f64 / total;

    // DEBUG / TRACE left on.
    let noisy = logs.severity.debug + logs.severity.trace;
    if noisy > 0 && noisy as f64 / total >= t.debug_share {
        let bytes: f64 = logs
            .templates
            .values()
            .map(|tp| {
                let n = tp.severity.debug + tp.severity.trace;
                tp.bytes as f64 * n as f64 / tp.count.max(1) as f64
            })
            .sum();
        let id = format!("debug-logs-{}", short_hash(&[service]));
        out.push(Finding {
            id: id.clone(),
            service: service.into(),
            signal: "logs".into(),
            kind: WasteKind::DebugLogs,
            title: format!("{service} ships DEBUG/TRACE logs"),
            evidence: vec![
                format!("{noisy} of {} log records ({:.1}%) are DEBUG or TRACE", logs.volume.items, 100.0 * noisy as f64 / total),
            ],
            items_per_day: noisy as f64 * scale,
            bytes_per_day: bytes * scale,
            saving_bytes_per_day: bytes * scale,
            policy: policy(
                &id,
                &format!("Drop DEBUG and TRACE logs from {service}"),
                "Suggested by the Weir catalog: debug logging left on in production.",
                ("log", json!({"match": [service_match(service), {"log_field": "severity_text", "regex": "^(?i)(trace|debug)"}], "keep": "none"})),
            ),
        });
    }

    for (tid, tp) in &logs.templates {
        let share = tp.count as f64 / total;
        // Health checks.
        if is_health(&tp.template) {
            let id = format!("health-logs-{}", short_hash(&[service, tid]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "logs".into(),
                kind: WasteKind::HealthCheckLogs,
                title: format!("{service} logs health checks: \"{}\"", tp.template),
                evidence: vec![format!("template seen {} times ({:.1}% of the service's logs)", tp.count, 100.0 * share)],
                items_per_day: tp.count as f64 * scale,
                bytes_per_day: tp.bytes as f64 * scale,
                saving_bytes_per_day: tp.bytes as f64 * scale,
                policy: policy(
                    &id,
                    &format!("Drop health-check logs from {service}"),
                    "Suggested by the Weir catalog: health-check and readiness-probe logs.",
                    ("log", json!({"match": [service_match(service), {"log_field": "body", "regex": template_regex(&tp.template)}], "keep": "none"})),
                ),
            });
            continue;
        }
        // One template dominating.
        if share >= t.dominant_share && tp.count >= t.min_items {
            let id = format!("dominant-template-{}", short_hash(&[service, tid]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "logs".into(),
                kind: WasteKind::DominantTemplate,
                title: format!("one template is {:.0}% of {service}'s logs", 100.0 * share),
                evidence: vec![format!("template \"{}\": {} of {} records", tp.template, tp.count, logs.volume.items)],
                items_per_day: tp.count as f64 * scale,
                bytes_per_day: tp.bytes as f64 * scale,
                saving_bytes_per_day: 0.9 * tp.bytes as f64 * scale,
                policy: policy(
                    &id,
                    &format!("Sample the dominant template of {service} at 10%"),
                    "Suggested by the Weir catalog: one template dominates the service's volume.",
                    ("log", json!({"match": [service_match(service), {"log_field": "body", "regex": template_regex(&tp.template)}], "keep": "10%"})),
                ),
            });
        }
        // Exact duplicate bursts: most records repeat the one before them.
        if tp.duplicates >= t.min_items / 2 && tp.duplicates * 2 >= tp.count {
            let dup_bytes = tp.bytes as f64 * tp.duplicates as f64 / tp.count.max(1) as f64;
            let id = format!("duplicates-{}", short_hash(&[service, tid]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "logs".into(),
                kind: WasteKind::DuplicateBursts,
                title: format!("{service} repeats the same log record in bursts"),
                evidence: vec![format!(
                    "template \"{}\": {} of {} records repeat the record before them exactly",
                    tp.template, tp.duplicates, tp.count
                )],
                items_per_day: tp.duplicates as f64 * scale,
                bytes_per_day: tp.bytes as f64 * scale,
                saving_bytes_per_day: dup_bytes * scale,
                policy: policy(
                    &id,
                    &format!("Rate-limit a repeated record of {service} to 1/s"),
                    "Suggested by the Weir catalog: exact duplicate bursts.",
                    ("log", json!({"match": [service_match(service), {"log_field": "body", "regex": template_regex(&tp.template)}], "keep": "1/s"})),
                ),
            });
        }
        // Very large payloads.
        let tavg = tp.bytes as f64 / tp.count.max(1) as f64;
        if tavg >= t.large_record_bytes as f64 && tp.count >= 10 {
            let id = format!("large-payload-{}", short_hash(&[service, tid]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "logs".into(),
                kind: WasteKind::LargePayloads,
                title: format!("{service} emits {:.0}-byte log records", tavg),
                evidence: vec![format!("template \"{}\": {} records averaging {:.0} bytes (service average {:.0})", tp.template, tp.count, tavg, avg_bytes)],
                items_per_day: tp.count as f64 * scale,
                bytes_per_day: tp.bytes as f64 * scale,
                saving_bytes_per_day: 0.9 * tp.bytes as f64 * scale,
                policy: policy(
                    &id,
                    &format!("Sample very large records of {service} at 10%"),
                    "Suggested by the Weir catalog: very large payloads.",
                    ("log", json!({"match": [service_match(service), {"log_field": "body", "regex": template_regex(&tp.template)}], "keep": "10%"})),
                ),
            });
        }
    }

    // Log record attributes: constant or near-unique values.
    for (key, a) in &logs.attributes.item {
        if a.items < t.min_items {
            continue;
        }
        let distinct = a.distinct.estimate();
        let (kind, title, saving) = if distinct <= 1 {
            (
                WasteKind::ConstantAttribute,
                format!("attribute {key} of {service} logs never changes"),
                a.bytes as f64,
            )
        } else if distinct >= t.high_cardinality_min
            && distinct as f64 / a.items as f64 >= t.high_cardinality_ratio
        {
            (
                WasteKind::HighCardinalityAttribute,
                format!("attribute {key} of {service} logs is nearly unique per record"),
                a.bytes as f64,
            )
        } else {
            continue;
        };
        let id = format!(
            "{}-{}",
            if kind == WasteKind::ConstantAttribute {
                "constant-attr"
            } else {
                "high-card-attr"
            },
            short_hash(&[service, key])
        );
        out.push(Finding {
            id: id.clone(),
            service: service.into(),
            signal: "logs".into(),
            kind,
            title,
            evidence: vec![format!("{} records carry it, ~{distinct} distinct values, {} bytes", a.items, a.bytes)],
            items_per_day: a.items as f64 * scale,
            bytes_per_day: a.bytes as f64 * scale,
            saving_bytes_per_day: saving * scale,
            policy: policy(
                &id,
                &format!("Remove attribute {key} from {service} logs"),
                "Suggested by the Weir catalog: the attribute adds bytes but no information.",
                ("log", json!({"match": [service_match(service), {"log_attribute": [key], "exists": true}], "keep": "all", "transform": {"remove": [{"log_attribute": [key]}]}})),
            ),
        });
    }

    // Spans: health checks and childless internal spans.
    for (name, sp) in &s.traces.spans {
        let scale = per_day(&sp.seen);
        if is_health(name) {
            let id = format!("health-spans-{}", short_hash(&[service, name]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "traces".into(),
                kind: WasteKind::HealthCheckSpans,
                title: format!("{service} traces health checks: span \"{name}\""),
                evidence: vec![format!("{} spans named \"{name}\"", sp.volume.items)],
                items_per_day: sp.volume.items as f64 * scale,
                bytes_per_day: sp.volume.bytes as f64 * scale,
                saving_bytes_per_day: sp.volume.bytes as f64 * scale,
                policy: policy(
                    &id,
                    &format!("Drop health-check spans from {service}"),
                    "Suggested by the Weir catalog: health-check and readiness-probe spans.",
                    ("trace", json!({"match": [service_match(service), {"trace_field": "name", "equals": name}], "keep": {"percentage": 0}})),
                ),
            });
            continue;
        }
        let items = sp.volume.items;
        if items >= t.min_items
            && sp.kinds.internal * 10 >= items * 9
            && sp.childless_in_batch * 10 >= items * 9
        {
            let id = format!("noise-spans-{}", short_hash(&[service, name]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "traces".into(),
                kind: WasteKind::InstrumentationNoise,
                title: format!("{service}: internal span \"{name}\" never has children"),
                evidence: vec![format!("{items} spans, {} internal, {} without children", sp.kinds.internal, sp.childless_in_batch)],
                items_per_day: items as f64 * scale,
                bytes_per_day: sp.volume.bytes as f64 * scale,
                saving_bytes_per_day: 0.9 * sp.volume.bytes as f64 * scale,
                policy: policy(
                    &id,
                    &format!("Sample internal span {name} of {service} at 10%"),
                    "Suggested by the Weir catalog: leaf internal spans are instrumentation noise.",
                    ("trace", json!({"match": [service_match(service), {"trace_field": "name", "equals": name}, {"span_kind": "SPAN_KIND_INTERNAL"}], "keep": {"percentage": 10}})),
                ),
            });
        }
    }

    // Metrics whose value never changes.
    for (name, m) in &s.metrics.metrics {
        if m.volume.items >= t.min_items && m.constant.is_constant() {
            let scale = per_day(&m.seen);
            let id = format!("constant-metric-{}", short_hash(&[service, name]));
            out.push(Finding {
                id: id.clone(),
                service: service.into(),
                signal: "metrics".into(),
                kind: WasteKind::ConstantMetric,
                title: format!("{service}: metric {name} never changes"),
                evidence: vec![format!("{} data points, all the same value", m.volume.items)],
                items_per_day: m.volume.items as f64 * scale,
                bytes_per_day: m.volume.bytes as f64 * scale,
                saving_bytes_per_day: m.volume.bytes as f64 * scale,
                policy: policy(
                    &id,
                    &format!("Drop constant metric {name} from {service}"),
                    "Suggested by the Weir catalog: a metric that never changes carries no information.",
                    ("metric", json!({"match": [service_match(service), {"metric_field": "name", "equals": name}], "keep": false})),
                ),
            });
        }
    }
    out.sort_by(|a, b| b.saving_bytes_per_day.total_cmp(&a.saving_bytes_per_day));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_metadata::summary::TemplateSummary;

    #[test]
    fn duplicate_bursts_are_found_with_a_rate_limit() {
        let mut s = ServiceSummary::default();
        s.logs.volume.items = 1000;
        s.logs.volume.bytes = 100_000;
        s.logs.templates.insert(
            "t1".into(),
            TemplateSummary {
                template: "connection reset by peer <*>".into(),
                count: 400,
                bytes: 40_000,
                duplicates: 390,
                ..Default::default()
            },
        );
        let f = analyse_service("api", &s, &Thresholds::default());
        let d = f
            .iter()
            .find(|f| f.kind == WasteKind::DuplicateBursts)
            .unwrap();
        assert_eq!(d.policy["log"]["keep"], "1/s");
        assert!(d.evidence[0].contains("390 of 400 records"));
        // 390/400 of the bytes, scaled from a one-minute window to a day.
        assert_eq!(
            d.saving_bytes_per_day.round(),
            (39_000.0_f64 * 1440.0).round()
        );
        assert_eq!(template_regex("a.b <*> c"), "^a\\.b .*? c$");
    }
}
