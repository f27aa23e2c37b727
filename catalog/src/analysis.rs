//! Waste analysis over the catalog: candidate findings, each with its evidence, the units of
//! traffic it claims (see [`crate::units`]) and a ready policy in the policy specification's
//! JSON form. Candidates are not shown as they are: [`crate::advice`] dry-runs every policy,
//! applies the safety rule and counts savings once in one ledger (docs/ADVICE.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_summary::summary::ServiceSummary;

use crate::units::{percent, ReadPart, Severity, Unit};

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
    /// The same record (body, attributes, resource) repeated back to back.
    DuplicateBursts,
    /// A template whose rate spikes far above its usual rate.
    Burst,
    /// Log records far larger than usual.
    LargePayloads,
    /// An attribute whose values are nearly all distinct.
    HighCardinalityAttribute,
    /// An attribute that always carries the same value.
    ConstantAttribute,
    /// A metric whose value never changes.
    ConstantMetric,
    /// A metric with very many series (or whose SDK hit its cardinality limit).
    MetricCardinality,
    /// Internal spans with no children (instrumentation noise).
    InstrumentationNoise,
    /// A metric with many series in a Prometheus job, and the label that drives them
    /// (from a Prometheus source, `crate::prom_findings`).
    PrometheusLabelCardinality,
    /// A metric in Prometheus that no recording or alerting rule reads.
    PrometheusUnusedMetric,
}

/// Records and bytes (observed in the window).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Amount {
    /// Records, spans or data points.
    pub items: f64,
    /// Encoded bytes.
    pub bytes: f64,
}

/// What a finding's policy would drop, from the dry-run on the catalog's data.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WouldDrop {
    /// By severity (`DEBUG`, `DEBUG (number only)`, `INFO`, `UNSPECIFIED`, ...).
    pub by_severity: BTreeMap<String, Amount>,
    /// By service.
    pub by_service: BTreeMap<String, Amount>,
}

/// Estimated against measured saving of an accepted finding's policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Measured {
    /// `enforced` or `shadow` (the policy's current mode).
    pub mode: String,
    /// Records per day the dry-run says the policy drops (or would drop).
    pub estimated_items_per_day: f64,
    /// Bytes per day the dry-run says it saves.
    pub estimated_bytes_per_day: f64,
    /// Records edges reported the policy dropped while enforced (hits).
    pub enforced_items: i64,
    /// Records edges reported it would have dropped while in shadow mode (hits).
    pub shadow_items: i64,
    /// Bytes of the enforced hits (hits times the average size of the records it matches).
    pub enforced_bytes: f64,
    /// Bytes of the shadow hits.
    pub shadow_bytes: f64,
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
    /// Items the finding is about, per day (projected from the service's window).
    pub items_per_day: f64,
    /// Bytes the finding is about, per day.
    pub bytes_per_day: f64,
    /// Bytes per day saved if the policy is enforced, counted once in the ledger: records
    /// another (larger) finding or an existing policy already covers are not counted again.
    pub saving_bytes_per_day: f64,
    /// Bytes per day the policy would save on its own, ignoring overlaps.
    pub gross_saving_bytes_per_day: f64,
    /// The window the projection is from, in seconds.
    pub window_seconds: f64,
    /// "projected per day from the last ... of data".
    pub projection: String,
    /// What the policy would drop, from the dry-run.
    pub would_drop: WouldDrop,
    /// Findings or policies that already count some of its records.
    pub overlaps: Vec<String>,
    /// `open`, `shadow` or `enforced`.
    pub status: String,
    /// Measured against estimated, for accepted findings.
    pub measured: Option<Measured>,
    /// The suggested policy (policy specification JSON form).
    pub policy: serde_json::Value,
    /// Findings from a Prometheus source: their saving in series (Prometheus reports no
    /// bytes; `saving_bytes_per_day` is 0) and the equivalent relabel rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<crate::prom_findings::SeriesSaving>,
    /// Share of its signal's items (0 to 1) its counts were read from, when the edge counted
    /// the rest without reading them (see [`crate::units::ReadPart`]): its per-day figures,
    /// savings and dry-run amounts are then estimates, scaled up to the signal's whole volume,
    /// and its evidence says so. Absent when every item was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_share: Option<f64>,
}

/// A candidate the dry-run or the safety rule kept from being shown, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Withheld {
    /// The candidate's id.
    pub id: String,
    /// The service.
    pub service: String,
    /// Category.
    pub kind: WasteKind,
    /// Its title.
    pub title: String,
    /// Why it is not shown.
    pub reason: String,
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
    /// Minimum items behind an attribute or template finding.
    pub min_items: u64,
    /// Distinct/items ratio above which an attribute is "high cardinality".
    pub high_cardinality_ratio: f64,
    /// Minimum distinct values for a high-cardinality finding.
    pub high_cardinality_min: u64,
    /// Records of one template within one second for a burst.
    pub burst_min_per_second: u64,
    /// How many times its average rate a template's peak second must be for a burst.
    pub burst_factor: f64,
    /// Series of one metric for a cardinality finding.
    pub metric_series_min: u64,
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
            burst_min_per_second: 100,
            burst_factor: 20.0,
            metric_series_min: 500,
        }
    }
}

/// A finding before its dry-run: what it claims and the policy meant to match exactly that.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Stable id.
    pub id: String,
    /// Category.
    pub kind: WasteKind,
    /// Signal.
    pub signal: &'static str,
    /// Title.
    pub title: String,
    /// Evidence.
    pub evidence: Vec<String>,
    /// The policy.
    pub policy: serde_json::Value,
    /// Per unit of the service: whether the finding is about it.
    pub claims: Vec<bool>,
    /// The finding is about WARN-or-above records only and its title says so.
    pub about_warn: bool,
    /// For attribute removals: the attribute's bytes and records in the window.
    pub removal: Option<(String, u64, u64)>,
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

/// Severity texts below WARN a policy can match (`severity_text` regex, case-insensitive).
const LOW_TEXT_REGEX: &str = "^(?i)(trace|debug|info|notice)";
/// Severity texts at WARN or above.
const HIGH_TEXT_REGEX: &str = "^(?i)(warn|err|fatal|crit|alert|emerg|severe)";

fn text_starts(text: &str, words: &[&str]) -> bool {
    let t = text.to_ascii_lowercase();
    words.iter().any(|w| t.starts_with(w))
}

fn low_text(text: &str) -> bool {
    text_starts(text, &["trace", "debug", "info", "notice"])
}

fn high_text(text: &str) -> bool {
    text_starts(
        text,
        &["warn", "err", "fatal", "crit", "alert", "emerg", "severe"],
    )
}

pub(crate) fn short_hash(parts: &[&str]) -> String {
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

fn claims(units: &[Unit], f: impl Fn(&Unit) -> bool) -> Vec<bool> {
    units.iter().map(f).collect()
}

fn sum(units: &[Unit], claims: &[bool]) -> (u64, u64) {
    units
        .iter()
        .zip(claims)
        .filter(|(_, c)| **c)
        .fold((0, 0), |(i, b), (u, _)| (i + u.items, b + u.bytes))
}

/// Claims of `want` without the security-relevant units, and the body regexes of the
/// templates left out (for [`with`] to exclude from the policy).
fn sparing_security(
    s: &ServiceSummary,
    units: &[Unit],
    want: impl Fn(&Unit) -> bool,
) -> (Vec<bool>, Vec<String>) {
    let mut spared = std::collections::BTreeSet::new();
    let claims = units
        .iter()
        .map(|u| {
            let w = want(u);
            if w && u.security {
                spared.insert(u.group.clone());
            }
            w && !u.security
        })
        .collect();
    let regexes = spared
        .iter()
        .filter_map(|tid| s.logs.templates.get(tid))
        .map(|t| template_regex(&t.template))
        .collect();
    (claims, regexes)
}

/// `matchers` plus one negated body matcher per spared template.
fn with(mut matchers: Vec<serde_json::Value>, spared: &[String]) -> Vec<serde_json::Value> {
    for regex in spared {
        matchers.push(json!({"log_field": "body", "regex": regex, "negate": true}));
    }
    matchers
}

/// What a template-level finding suggests.
struct TemplateAdvice<'a> {
    kind: WasteKind,
    prefix: &'a str,
    title: String,
    evidence: Vec<String>,
    name: String,
    description: &'a str,
    keep: String,
    /// Also suggest a floor-keeping policy for the template's WARN-or-above records.
    warn_keep: Option<String>,
}

/// Template candidates: the records below WARN (all of the template's records when it has
/// none at WARN or above; else those whose severity text says so), and, when asked, the
/// WARN-or-above records with a floor.
fn template_candidates(
    service: &str,
    tid: &str,
    template: &str,
    units: &[Unit],
    a: TemplateAdvice<'_>,
) -> Vec<Candidate> {
    let mine = |u: &Unit| u.signal == "logs" && u.group == tid;
    // Part of the service's logs was counted without being read: the severities of those
    // records are unknown, so the template is treated as holding WARN-or-above records too.
    let partly_read = units
        .iter()
        .any(|u| u.signal == "logs" && (u.items_scale != 1.0 || u.bytes_scale != 1.0));
    let has_high = units.iter().any(|u| mine(u) && u.severity.protected());
    let mixed = has_high || partly_read;
    let body = json!({"log_field": "body", "regex": template_regex(template)});
    let mut out = Vec::new();
    let (low_claims, low_match) = if mixed {
        (
            claims(units, |u| mine(u) && low_text(&u.text)),
            vec![
                service_match(service),
                body.clone(),
                json!({"log_field": "severity_text", "regex": LOW_TEXT_REGEX}),
            ],
        )
    } else {
        (
            claims(units, mine),
            vec![service_match(service), body.clone()],
        )
    };
    if low_claims.iter().any(|c| *c) {
        let id = format!("{}-{}", a.prefix, short_hash(&[service, tid]));
        let mut evidence = a.evidence.clone();
        if has_high {
            evidence.push("the template also has WARN-or-above records; the policy matches only records whose severity text is below WARN".into());
        } else if partly_read {
            evidence.push("part of the service's logs was counted without being read, so their severities are unknown; the policy matches only records whose severity text is below WARN".into());
        }
        out.push(Candidate {
            id: id.clone(),
            kind: a.kind,
            signal: "logs",
            title: a.title.clone(),
            evidence,
            policy: policy(
                &id,
                &a.name,
                a.description,
                ("log", json!({"match": low_match, "keep": a.keep})),
            ),
            claims: low_claims,
            about_warn: false,
            removal: None,
        });
    }
    if let (true, Some(keep)) = (mixed, a.warn_keep) {
        let high = claims(units, |u| {
            mine(u) && u.severity.protected() && high_text(&u.text)
        });
        let (n, _) = sum(units, &high);
        if n > 0 {
            let id = format!("{}-warn-{}", a.prefix, short_hash(&[service, tid]));
            out.push(Candidate {
                id: id.clone(),
                kind: a.kind,
                signal: "logs",
                title: format!("{} (its {n} WARN/ERROR records, rate-limited with a floor of {keep})", a.title),
                evidence: a.evidence,
                policy: policy(
                    &id,
                    &format!("{} (WARN and above, floor {keep})", a.name),
                    a.description,
                    ("log", json!({"match": [service_match(service), body, {"log_field": "severity_text", "regex": HIGH_TEXT_REGEX}], "keep": keep})),
                ),
                claims: high,
                about_warn: true,
                removal: None,
            });
        }
    }
    out
}

/// Candidate findings for one service, over its units (see [`crate::units::units_of`]).
pub fn candidates(
    service: &str,
    s: &ServiceSummary,
    units: &[Unit],
    window_s: f64,
    t: &Thresholds,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let logs = &s.logs;
    // Item-level data describes the read part of each signal: shares are of it, and a
    // signal none of whose items were read has nothing to suggest from.
    let logs_read = ReadPart::logs(s);
    let read = logs_read.read();
    let total = read.items.max(1) as f64;
    // "500 log records", or "500 log records read" when the edge counted others unread.
    let of_read = |noun: &str| {
        if logs_read.is_whole() {
            format!("{} {noun}", read.items)
        } else {
            format!("{} {noun} read", read.items)
        }
    };
    if logs_read.nothing_read() {
        candidates_of_spans(service, s, units, t, &mut out);
        return out;
    }

    // DEBUG / TRACE left on: the records whose severity text says so (the policy
    // specification has no severity-number matcher, so number-only ones cannot be claimed).
    let is_debug = |u: &Unit| u.signal == "logs" && text_starts(&u.text, &["trace", "debug"]);
    let (debug, spared) = sparing_security(s, units, is_debug);
    let (n, _) = sum(units, &debug);
    let number_only: u64 = units
        .iter()
        .filter(|u| u.number_only && matches!(u.severity, Severity::Debug | Severity::Trace))
        .map(|u| u.items)
        .sum();
    if n > 0 && n as f64 / total >= t.debug_share {
        let id = format!("debug-logs-{}", short_hash(&[service]));
        let mut evidence = vec![format!(
            "{n} of {} ({:.1}%) have severity text DEBUG or TRACE",
            of_read("log records"),
            100.0 * n as f64 / total
        )];
        if !spared.is_empty() {
            evidence.push(format!("{} security-relevant templates are left out (authentication, authorisation, audit)", spared.len()));
        }
        if number_only > 0 {
            evidence.push(format!("{number_only} more records are DEBUG/TRACE by severity number only: the policy specification has no severity-number matcher, so they are not counted and the policy does not drop them"));
        }
        out.push(Candidate {
            id: id.clone(),
            kind: WasteKind::DebugLogs,
            signal: "logs",
            title: format!("{service} ships DEBUG/TRACE logs"),
            evidence,
            policy: policy(
                &id,
                &format!("Drop DEBUG and TRACE logs from {service}"),
                "Suggested by the Weir catalog: debug logging left on in production.",
                ("log", json!({"match": with(vec![service_match(service), json!({"log_field": "severity_text", "regex": "^(?i)(trace|debug)"})], &spared), "keep": "none"})),
            ),
            claims: debug,
            about_warn: false,
            removal: None,
        });
    }

    for (tid, tp) in &logs.templates {
        let share = tp.count as f64 / total;
        let tpl = &tp.template;
        if is_health(tpl) {
            out.extend(template_candidates(
                service,
                tid,
                tpl,
                units,
                TemplateAdvice {
                    kind: WasteKind::HealthCheckLogs,
                    prefix: "health-logs",
                    title: format!("{service} logs health checks: \"{tpl}\""),
                    evidence: vec![format!(
                        "template seen {} times ({:.1}% of the service's logs{})",
                        tp.count,
                        100.0 * share,
                        if logs_read.is_whole() { "" } else { " read" }
                    )],
                    name: format!("Drop health-check logs from {service}"),
                    description:
                        "Suggested by the Weir catalog: health-check and readiness-probe logs.",
                    keep: "none".into(),
                    warn_keep: None,
                },
            ));
            continue;
        }
        if share >= t.dominant_share && tp.count >= t.min_items {
            out.extend(template_candidates(service, tid, tpl, units, TemplateAdvice {
                kind: WasteKind::DominantTemplate,
                prefix: "dominant-template",
                title: format!("one template is {:.0}% of {service}'s logs", 100.0 * share),
                evidence: vec![format!("template \"{tpl}\": {} of {}", tp.count, of_read("records"))],
                name: format!("Sample the dominant template of {service} at 10%"),
                description: "Suggested by the Weir catalog: one template dominates the service's volume.",
                keep: "10%".into(),
                warn_keep: None,
            }));
        }
        if tp.duplicates >= t.min_items / 2 && tp.duplicates * 2 >= tp.count {
            out.extend(template_candidates(service, tid, tpl, units, TemplateAdvice {
                kind: WasteKind::DuplicateBursts,
                prefix: "duplicates",
                title: format!("{service} repeats the same log record back to back"),
                evidence: vec![format!(
                    "template \"{tpl}\": {} of {} records repeat the record before them exactly (body, attributes and resource)",
                    tp.duplicates, tp.count
                )],
                name: format!("Rate-limit a repeated record of {service} to 1/s"),
                description: "Suggested by the Weir catalog: exact duplicates.",
                keep: "1/s".into(),
                warn_keep: Some("1/s".into()),
            }));
        }
        // Its rate over all records: its count read, scaled up by the unread part.
        let mean_per_s = tp.count as f64 * logs_read.items_scale() / window_s;
        if tp.peak_per_second >= t.burst_min_per_second
            && tp.peak_per_second as f64 >= t.burst_factor * mean_per_s
        {
            let limit = (mean_per_s * 2.0).ceil().max(1.0) as u64;
            out.extend(template_candidates(service, tid, tpl, units, TemplateAdvice {
                kind: WasteKind::Burst,
                prefix: "burst",
                title: format!("{service} bursts: {} records of one template in one second", tp.peak_per_second),
                evidence: vec![if logs_read.is_whole() {
                    format!(
                        "template \"{tpl}\": peak {} records/s against an average of {mean_per_s:.2}/s over the window ({} records)",
                        tp.peak_per_second, tp.count
                    )
                } else {
                    format!(
                        "template \"{tpl}\": peak {} records/s against an average of {mean_per_s:.2}/s over the window ({} records read, ~{:.0} in all)",
                        tp.peak_per_second, tp.count, mean_per_s * window_s
                    )
                }],
                name: format!("Rate-limit a bursting template of {service} to {limit}/s"),
                description: "Suggested by the Weir catalog: a template whose rate spikes far above its average.",
                keep: format!("{limit}/s"),
                warn_keep: Some(format!("{limit}/s")),
            }));
        }
        let tavg = tp.bytes as f64 / tp.count.max(1) as f64;
        if tavg >= t.large_record_bytes as f64 && tp.count >= 10 {
            let avg = read.bytes as f64 / total;
            out.extend(template_candidates(service, tid, tpl, units, TemplateAdvice {
                kind: WasteKind::LargePayloads,
                prefix: "large-payload",
                title: format!("{service} emits {tavg:.0}-byte log records"),
                evidence: vec![format!("template \"{tpl}\": {} records averaging {tavg:.0} bytes (service average {avg:.0})", tp.count)],
                name: format!("Sample very large records of {service} at 10%"),
                description: "Suggested by the Weir catalog: very large payloads.",
                keep: "10%".into(),
                warn_keep: None,
            }));
        }
    }

    // Log record attributes: constant or near-unique values.
    for (key, a) in &logs.attributes.item {
        if a.items < t.min_items {
            continue;
        }
        let distinct = a.distinct.estimate();
        // 0 distinct values means the sketch holds no hashes (e.g. keyed with another
        // deployment's key and dropped): unknown, not constant.
        let (kind, prefix, title) = if distinct == 1 {
            (
                WasteKind::ConstantAttribute,
                "constant-attr",
                format!("attribute {key} of {service} logs never changes"),
            )
        } else if distinct >= t.high_cardinality_min
            && distinct as f64 / a.items as f64 >= t.high_cardinality_ratio
        {
            (
                WasteKind::HighCardinalityAttribute,
                "high-card-attr",
                format!("attribute {key} of {service} logs is nearly unique per record"),
            )
        } else {
            continue;
        };
        let id = format!("{prefix}-{}", short_hash(&[service, key]));
        let (carrying, spared) =
            sparing_security(s, units, |u| u.signal == "logs" && u.keys.contains(key));
        out.push(Candidate {
            id: id.clone(),
            kind,
            signal: "logs",
            title,
            evidence: vec![if logs_read.is_whole() {
                format!("{} records carry it, ~{distinct} distinct values, {} bytes on the wire", a.items, a.bytes)
            } else {
                format!(
                    "{} of {} carry it ({}), ~{distinct} distinct values, {} bytes on the wire",
                    a.items,
                    of_read("records"),
                    percent(a.items as f64 / total),
                    a.bytes
                )
            }],
            policy: policy(
                &id,
                &format!("Remove attribute {key} from {service} logs"),
                "Suggested by the Weir catalog: the attribute adds bytes but no information.",
                ("log", json!({"match": with(vec![service_match(service), json!({"log_attribute": [key], "exists": true})], &spared), "keep": "all", "transform": {"remove": [{"log_attribute": [key]}]}})),
            ),
            claims: carrying,
            about_warn: false,
            removal: Some((key.clone(), a.bytes, a.items)),
        });
    }

    candidates_of_spans(service, s, units, t, &mut out);
    out
}

/// Span and metric candidates (none from a signal none of whose items were read).
fn candidates_of_spans(
    service: &str,
    s: &ServiceSummary,
    units: &[Unit],
    t: &Thresholds,
    out: &mut Vec<Candidate>,
) {
    let spans_read = ReadPart::traces(s);
    let spans = if spans_read.nothing_read() {
        None
    } else {
        Some(&s.traces.spans)
    };
    // Spans: health checks and childless internal spans.
    for (name, sp) in spans.into_iter().flatten() {
        let name_match = if name.contains("<*>") {
            json!({"trace_field": "name", "regex": template_regex(name)})
        } else {
            json!({"trace_field": "name", "equals": name})
        };
        let mine = |u: &Unit| u.signal == "traces" && &u.group == name;
        if is_health(name) {
            let id = format!("health-spans-{}", short_hash(&[service, name]));
            out.push(Candidate {
                id: id.clone(),
                kind: WasteKind::HealthCheckSpans,
                signal: "traces",
                title: format!("{service} traces health checks: span \"{name}\""),
                evidence: vec![format!(
                    "{} spans{} named \"{name}\"",
                    sp.volume.items,
                    if spans_read.is_whole() { "" } else { " read" }
                )],
                policy: policy(
                    &id,
                    &format!("Drop health-check spans from {service}"),
                    "Suggested by the Weir catalog: health-check and readiness-probe spans.",
                    ("trace", json!({"match": [service_match(service), name_match], "keep": {"percentage": 0}})),
                ),
                claims: claims(units, mine),
                about_warn: false,
                removal: None,
            });
            continue;
        }
        let items = sp.volume.items;
        if items >= t.min_items
            && sp.kinds.internal * 10 >= items * 9
            && sp.childless_in_batch * 10 >= items * 9
        {
            let id = format!("noise-spans-{}", short_hash(&[service, name]));
            out.push(Candidate {
                id: id.clone(),
                kind: WasteKind::InstrumentationNoise,
                signal: "traces",
                title: format!("{service}: internal span \"{name}\" never has children"),
                evidence: vec![format!("{items} spans, {} internal, {} without children", sp.kinds.internal, sp.childless_in_batch)],
                policy: policy(
                    &id,
                    &format!("Sample internal span {name} of {service} at 10%"),
                    "Suggested by the Weir catalog: leaf internal spans are instrumentation noise.",
                    ("trace", json!({"match": [service_match(service), name_match, {"span_kind": "SPAN_KIND_INTERNAL"}], "keep": {"percentage": 10}})),
                ),
                claims: claims(units, |u| mine(u) && u.key.ends_with(":1")),
                about_warn: false,
                removal: None,
            });
        }
    }

    if !ReadPart::metrics(s).nothing_read() {
        crate::metric_findings::candidates(service, s, units, t, out);
    }
}

/// Shared by the metric findings.
pub(crate) fn metric_policy(
    id: &str,
    name: &str,
    description: &str,
    service: &str,
    metric: &str,
) -> serde_json::Value {
    policy(
        id,
        name,
        description,
        (
            "metric",
            json!({"match": [service_match(service), {"metric_field": "name", "equals": metric}], "keep": false}),
        ),
    )
}

/// Findings of one service on its own (no existing policies, nothing accepted).
pub fn analyse_service(service: &str, s: &ServiceSummary, t: &Thresholds) -> Vec<Finding> {
    let mut one = BTreeMap::new();
    one.insert(service.to_string(), s.clone());
    crate::advice::advise(&one, &[], &[], t).findings
}
