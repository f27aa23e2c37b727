//! From candidates to the findings shown: every policy is dry-run on the catalog's units
//! ([`crate::dryrun`]), checked by the one safety rule ([`vet`]), and its saving counted once
//! in the savings ledger. See docs/ADVICE.md for the rules as a user reads them.
//!
//! Everything here is a pure function of one service's aggregates and the stored policies
//! ([`advise_service`]); the fleet view ([`advise`]) only adds services up, so it can later be
//! computed incrementally per service.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use weir_summary::summary::ServiceSummary;

use crate::analysis::{candidates, Candidate, Finding, Measured, Thresholds, Withheld, WouldDrop};
use crate::dryrun::{keep_effect, matches, Sample};
use crate::units::{read_notes, units_of, window_seconds, ReadPart, Unit, UnsummarisedSignals};

/// A stored policy as the ledger sees it.
#[derive(Debug, Clone)]
pub struct ExistingPolicy {
    /// Policy id (a finding's id when it came from a suggestion).
    pub id: String,
    /// The document.
    pub body: serde_json::Value,
    /// Served in shadow mode.
    pub shadow: bool,
    /// Served at all.
    pub enabled: bool,
    /// Match hits edges reported while it was enforced.
    pub enforced_hits: i64,
    /// Match hits edges reported while it was in shadow mode.
    pub shadow_hits: i64,
}

/// One service's part of the ledger.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceLedger {
    /// service.name.
    pub service: String,
    /// The projection window in seconds.
    pub window_seconds: f64,
    /// All its bytes, per day.
    pub bytes_per_day: f64,
    /// What its open findings save together, per day, each record counted once.
    pub saving_bytes_per_day: f64,
    /// What its existing policies drop (or would, in shadow mode), per day.
    pub covered_bytes_per_day: f64,
    /// Per signal, the items and bytes the edges counted without reading them: the
    /// findings' counts are of the rest, and their per-day figures are scaled up to all.
    #[serde(default)]
    pub unsummarised: UnsummarisedSignals,
    /// Per signal with an unsummarised part: how much was read, or that nothing was and so
    /// nothing is suggested from its content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The fleet's advice.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Advice {
    /// Open findings, largest ledger saving first.
    pub findings: Vec<Finding>,
    /// Accepted findings (their policy exists): estimated against measured.
    pub accepted: Vec<Finding>,
    /// Candidates not shown, with the reason.
    pub withheld: Vec<Withheld>,
    /// Per service.
    pub services: Vec<ServiceLedger>,
    /// Sum of the services' bytes per day.
    pub bytes_per_day: f64,
    /// Sum of the open findings' savings per day (the one ledger total).
    pub saving_bytes_per_day: f64,
    /// Sum of the open Prometheus findings' savings in series (their ledger counts series:
    /// Prometheus reports no bytes; `crate::prom_findings`).
    #[serde(default)]
    pub saving_series: u64,
}

/// "the last 2h 5m", "the last 45 s".
pub fn human_window(seconds: f64) -> String {
    let s = seconds.round() as u64;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// The safety rule, the same for every suggestion (docs/ADVICE.md):
/// - the policy matches exactly the units the finding claims;
/// - it matches nothing of another service;
/// - it never drops or changes security-relevant events;
/// - it drops WARN-or-above records only when the finding is about exactly those records
///   and says so, and then only with a floor (a sample above 0 % or a rate limit).
pub fn vet(
    c: &Candidate,
    service: &str,
    units: &[Unit],
    samples: &[&Sample],
) -> Result<Vec<bool>, String> {
    let matched = matches(&c.policy, service, samples)?;
    let claimed = |want: bool| {
        units
            .iter()
            .zip(matched.iter().zip(&c.claims))
            .filter(|(_, (m, cl))| **m == want && **cl != want)
            .map(|(u, _)| u.items)
            .sum::<u64>()
    };
    let (extra, missed) = (claimed(true), claimed(false));
    if extra > 0 || missed > 0 {
        return Err(format!(
            "the dry-run of its policy does not match what it claims: {extra} records matched that it does not claim, {missed} claimed records not matched"
        ));
    }
    let other = matches(&c.policy, "weir.dry-run.another-service", samples)?;
    if other.iter().any(|m| *m) {
        return Err("its policy would also match other services".into());
    }
    let effect = keep_effect(&c.policy);
    let changes = effect.drops() || c.removal.is_some();
    for (u, _) in units.iter().zip(&matched).filter(|(_, m)| **m) {
        if u.security && changes {
            return Err(format!(
                "it would drop or change {} security-relevant records (authentication, authorisation or audit)",
                u.items
            ));
        }
        if effect.drops() && u.severity.protected() {
            if !c.about_warn {
                return Err(format!(
                    "it would drop {} {} records and the finding is not about them",
                    u.items,
                    u.severity_label()
                ));
            }
            if !effect.has_floor() {
                return Err(format!(
                    "it would drop every {} record: WARN and above are only sampled or rate-limited with a floor",
                    u.severity_label()
                ));
            }
        }
        if c.about_warn && !u.severity.protected() {
            return Err("a finding about WARN-or-above records matches lower ones".into());
        }
    }
    Ok(matched)
}

struct Vetted {
    c: Candidate,
    matched: Vec<bool>,
    share: f64,
    gross: f64,
}

fn matched_peak(units: &[Unit], matched: &[bool]) -> f64 {
    units
        .iter()
        .zip(matched)
        .filter(|(_, m)| **m)
        .map(|(u, _)| u.peak_per_second)
        .max()
        .unwrap_or(0) as f64
}

/// Items and bytes of the matched units as read.
fn matched_read(units: &[Unit], matched: &[bool]) -> (u64, u64) {
    units
        .iter()
        .zip(matched)
        .filter(|(_, m)| **m)
        .fold((0, 0), |(i, b), (u, _)| (i + u.items, b + u.bytes))
}

/// Items and bytes of the matched units over their signals' whole volumes (as read when
/// every item was read; see [`crate::units::ReadPart`]).
fn matched_sum(units: &[Unit], matched: &[bool]) -> (f64, f64) {
    units
        .iter()
        .zip(matched)
        .filter(|(_, m)| **m)
        .fold((0.0, 0.0), |(i, b), (u, _)| {
            (i + u.est_items(), b + u.est_bytes())
        })
}

fn would_drop(service: &str, units: &[Unit], matched: &[bool], share: f64) -> WouldDrop {
    let mut w = WouldDrop::default();
    for (u, _) in units.iter().zip(matched).filter(|(_, m)| **m) {
        let a = w.by_severity.entry(u.severity_label()).or_default();
        a.items += u.est_items() * share;
        a.bytes += u.est_bytes() * share;
        let s = w.by_service.entry(service.to_string()).or_default();
        s.items += u.est_items() * share;
        s.bytes += u.est_bytes() * share;
    }
    w
}

/// A finding of `signal` whose figures are estimated from the read part of it: the share
/// read, and its evidence says so (nothing changes when every item was read).
fn mark_estimate(s: &ServiceSummary, signal: &str, evidence: &mut Vec<String>) -> Option<f64> {
    let read = ReadPart::of(s, signal);
    let noun = match signal {
        "traces" => "spans",
        "metrics" => "data points",
        _ => "records",
    };
    let note = read.estimate_note(noun)?;
    evidence.push(note);
    Some(read.read_share())
}

/// The advice for one service: a pure function of its summary and the stored policies.
pub fn advise_service(
    service: &str,
    s: &ServiceSummary,
    existing: &[ExistingPolicy],
    dismissed: &[String],
    t: &Thresholds,
) -> (ServiceLedger, Vec<Finding>, Vec<Finding>, Vec<Withheld>) {
    let units = units_of(s);
    let samples: Vec<&Sample> = units.iter().map(|u| &u.sample).collect();
    let window = window_seconds(s);
    let scale = 86_400.0 / window;
    let projection = format!(
        "projected per day from the last {} of data",
        human_window(window)
    );
    let total_bytes = (s.logs.volume.bytes + s.traces.volume.bytes + s.metrics.volume.bytes) as f64;

    // What existing policies (enforced or shadow) already cover: those records are not
    // counted again.
    let mut owner: Vec<Option<(String, f64)>> = vec![None; units.len()];
    let mut removed_keys: BTreeSet<String> = BTreeSet::new();
    let mut covered = 0.0;
    let mut policy_matches: BTreeMap<&str, (Vec<bool>, f64)> = BTreeMap::new();
    for p in existing.iter().filter(|p| p.enabled) {
        let Ok(m) = matches(&p.body, service, &samples) else {
            continue;
        };
        let effect = keep_effect(&p.body);
        let (items, _) = matched_sum(&units, &m);
        let share = effect.drop_share(items, window, matched_peak(&units, &m));
        for (i, _) in m.iter().enumerate().filter(|(_, x)| **x) {
            if share > 0.0 && owner[i].is_none() {
                owner[i] = Some((format!("policy {}", p.id), share));
                covered += units[i].est_bytes() * share;
            }
        }
        removed_keys.extend(crate::dryrun::removed_log_attributes(&p.body));
        policy_matches.insert(&p.id, (m, share));
    }

    // Attribute bytes are of the log records read: scaled up like the records.
    let attr_scale = ReadPart::logs(s).bytes_scale();
    let mut withheld = Vec::new();
    let mut vetted = Vec::new();
    let mut accepted_c = Vec::new();
    for c in candidates(service, s, &units, window, t) {
        if let Some(p) = existing.iter().find(|p| p.id == c.id) {
            accepted_c.push((c, p));
            continue;
        }
        if dismissed.contains(&c.id) {
            continue;
        }
        match vet(&c, service, &units, &samples) {
            Err(reason) => withheld.push(Withheld {
                id: c.id,
                service: service.into(),
                kind: c.kind,
                title: c.title,
                reason,
            }),
            Ok(matched) => {
                let (items, bytes) = matched_sum(&units, &matched);
                let (share, gross) = match &c.removal {
                    Some((_, attr_bytes, _)) => (0.0, *attr_bytes as f64 * attr_scale),
                    None => {
                        let share = keep_effect(&c.policy).drop_share(
                            items,
                            window,
                            matched_peak(&units, &matched),
                        );
                        (share, bytes * share)
                    }
                };
                vetted.push(Vetted {
                    c,
                    matched,
                    share,
                    gross,
                });
            }
        }
    }
    // The ledger: drops first, largest first (ties by id), each unit to one owner; then
    // attribute removals, on the records no drop takes.
    vetted.sort_by(|a, b| {
        a.c.removal
            .is_some()
            .cmp(&b.c.removal.is_some())
            .then(b.gross.total_cmp(&a.gross))
            .then(a.c.id.cmp(&b.c.id))
    });
    let mut findings = Vec::new();
    for v in vetted {
        let mut overlaps = BTreeSet::new();
        let net = match &v.c.removal {
            None => {
                let mut net = 0.0;
                for (i, _) in v.matched.iter().enumerate().filter(|(_, m)| **m) {
                    match &owner[i] {
                        Some((o, _)) => {
                            overlaps.insert(o.clone());
                        }
                        None => {
                            net += units[i].est_bytes() * v.share;
                            if v.share > 0.0 {
                                owner[i] = Some((format!("finding {}", v.c.id), v.share));
                            }
                        }
                    }
                }
                net
            }
            Some((key, attr_bytes, _)) => {
                if removed_keys.contains(key) {
                    overlaps.insert(format!("a policy removing {key}"));
                    0.0
                } else {
                    removed_keys.insert(key.clone());
                    // Records a drop already takes carry no attribute to remove.
                    let (mut all, mut gone) = (0.0, 0.0);
                    for (i, _) in v.matched.iter().enumerate().filter(|(_, m)| **m) {
                        all += units[i].est_items();
                        if let Some((o, share)) = &owner[i] {
                            gone += units[i].est_items() * share;
                            overlaps.insert(o.clone());
                        }
                    }
                    let kept = if all > 0.0 { 1.0 - gone / all } else { 1.0 };
                    *attr_bytes as f64 * attr_scale * kept
                }
            }
        };
        if net <= 0.0 && !overlaps.is_empty() && overlaps.iter().all(|o| !o.starts_with("finding"))
        {
            withheld.push(Withheld {
                id: v.c.id,
                service: service.into(),
                kind: v.c.kind,
                title: v.c.title,
                reason: format!(
                    "its records are already covered by {}",
                    overlaps.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        }
        let (items, bytes) = matched_sum(&units, &v.c.claims);
        let mut evidence = v.c.evidence;
        let read_share = mark_estimate(s, v.c.signal, &mut evidence);
        findings.push(Finding {
            id: v.c.id.clone(),
            service: service.into(),
            signal: v.c.signal.into(),
            kind: v.c.kind,
            title: v.c.title,
            evidence,
            items_per_day: items * scale,
            bytes_per_day: bytes * scale,
            saving_bytes_per_day: net * scale,
            gross_saving_bytes_per_day: v.gross * scale,
            window_seconds: window,
            projection: projection.clone(),
            would_drop: would_drop(service, &units, &v.matched, v.share),
            overlaps: overlaps.into_iter().collect(),
            status: "open".into(),
            measured: None,
            policy: v.c.policy,
            series: None,
            read_share,
        });
    }
    findings.sort_by(|a, b| {
        b.saving_bytes_per_day
            .total_cmp(&a.saving_bytes_per_day)
            .then(a.id.cmp(&b.id))
    });

    let accepted = accepted_c
        .into_iter()
        .map(|(c, p)| {
            let (m, share) = policy_matches
                .get(p.id.as_str())
                .cloned()
                .unwrap_or_else(|| (vec![false; units.len()], 0.0));
            let (items, bytes) = matched_sum(&units, &m);
            // The average size of the records it matches, as read.
            let (read_items, read_bytes) = matched_read(&units, &m);
            let avg = read_bytes as f64 / read_items.max(1) as f64;
            let est_bytes = match &c.removal {
                Some((_, b, _)) => *b as f64 * attr_scale,
                None => bytes * share,
            };
            let est_items = if c.removal.is_some() {
                0.0
            } else {
                items * share
            };
            let mut evidence = c.evidence;
            let read_share = mark_estimate(s, c.signal, &mut evidence);
            Finding {
                id: c.id.clone(),
                service: service.into(),
                signal: c.signal.into(),
                kind: c.kind,
                title: c.title,
                evidence,
                items_per_day: items * scale,
                bytes_per_day: bytes * scale,
                saving_bytes_per_day: 0.0,
                gross_saving_bytes_per_day: est_bytes * scale,
                window_seconds: window,
                projection: projection.clone(),
                would_drop: would_drop(service, &units, &m, share),
                overlaps: Vec::new(),
                status: if p.shadow { "shadow" } else { "enforced" }.into(),
                measured: Some(Measured {
                    mode: if p.shadow { "shadow" } else { "enforced" }.into(),
                    estimated_items_per_day: est_items * scale,
                    estimated_bytes_per_day: est_bytes * scale,
                    enforced_items: p.enforced_hits,
                    shadow_items: p.shadow_hits,
                    enforced_bytes: p.enforced_hits as f64 * avg,
                    shadow_bytes: p.shadow_hits as f64 * avg,
                }),
                policy: p.body.clone(),
                series: None,
                read_share,
            }
        })
        .collect();

    let ledger = ServiceLedger {
        service: service.into(),
        window_seconds: window,
        bytes_per_day: total_bytes * scale,
        saving_bytes_per_day: findings.iter().map(|f| f.saving_bytes_per_day).sum(),
        covered_bytes_per_day: covered * scale,
        unsummarised: UnsummarisedSignals::of(s),
        notes: read_notes(s),
    };
    (ledger, findings, accepted, withheld)
}

/// Adds the Prometheus findings ([`crate::prom_findings`]) to the advice: open findings
/// by bytes saved, then series saved, then id.
pub fn merge_prometheus(out: &mut Advice, p: crate::prom_findings::PromAdvice) {
    out.findings.extend(p.findings);
    out.accepted.extend(p.accepted);
    out.withheld.extend(p.withheld);
    out.saving_series += p.saving_series;
    let series = |f: &Finding| f.series.as_ref().map_or(0, |s| s.saving_series);
    out.findings.sort_by(|a, b| {
        b.saving_bytes_per_day
            .total_cmp(&a.saving_bytes_per_day)
            .then(series(b).cmp(&series(a)))
            .then(a.id.cmp(&b.id))
    });
}

/// The advice over every service: the per-service results added up.
pub fn advise(
    catalog: &BTreeMap<String, ServiceSummary>,
    existing: &[ExistingPolicy],
    dismissed: &[String],
    t: &Thresholds,
) -> Advice {
    let mut out = Advice::default();
    for (name, s) in catalog {
        let (ledger, findings, accepted, withheld) =
            advise_service(name, s, existing, dismissed, t);
        out.bytes_per_day += ledger.bytes_per_day;
        out.saving_bytes_per_day += ledger.saving_bytes_per_day;
        out.services.push(ledger);
        out.findings.extend(findings);
        out.accepted.extend(accepted);
        out.withheld.extend(withheld);
    }
    out.findings.sort_by(|a, b| {
        b.saving_bytes_per_day
            .total_cmp(&a.saving_bytes_per_day)
            .then(a.id.cmp(&b.id))
    });
    out
}
