//! JSON views of the catalog for the API and the UI: numbers and names, never sketches'
//! registers or anything resembling content.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use weir_summary::summary::{AttributeSchema, ServiceSummary};

use crate::control::ControlPlane;
use crate::units::ReadPart;
use crate::CatalogError;

/// Totals per service and signal, the waste found and the saving: the same ledger as the
/// findings page, the API and the CLI report.
pub fn overview(c: &ControlPlane) -> Result<Value, CatalogError> {
    let advice = c.advice()?;
    let catalog = c.catalog()?;
    let mut services = Vec::new();
    for (name, (s, _, _)) in &catalog {
        let Some(l) = advice.services.iter().find(|l| &l.service == name) else {
            continue;
        };
        let scale = 86_400.0 / l.window_seconds;
        let signal = |r: ReadPart| {
            json!({"items": r.volume.items, "bytes": r.volume.bytes, "bytes_per_day": r.volume.bytes as f64 * scale,
                   "unsummarised": r.unsummarised_view()})
        };
        let signals = json!({
            "logs": signal(ReadPart::logs(s)),
            "traces": signal(ReadPart::traces(s)),
            "metrics": signal(ReadPart::metrics(s)),
        });
        services.push(json!({
            "service": name,
            "signals": signals,
            "bytes_per_day": l.bytes_per_day,
            "saving_bytes_per_day": l.saving_bytes_per_day,
            "covered_bytes_per_day": l.covered_bytes_per_day,
            "window_seconds": l.window_seconds,
            "projection": format!("projected per day from the last {} of data", crate::advice::human_window(l.window_seconds)),
            "notes": l.notes,
        }));
    }
    Ok(json!({
        "services": services,
        "bytes_per_day": advice.bytes_per_day,
        "findings": advice.findings.len(),
        "saving_bytes_per_day": advice.saving_bytes_per_day,
    }))
}

/// The findings page: open findings, accepted ones (estimated against measured), withheld
/// candidates with their reasons, and the ledger total.
pub fn findings(c: &ControlPlane) -> Result<Value, CatalogError> {
    let a = c.advice()?;
    Ok(json!({
        "findings": a.findings,
        "accepted": a.accepted,
        "withheld": a.withheld,
        "saving_bytes_per_day": a.saving_bytes_per_day,
        "bytes_per_day": a.bytes_per_day,
        "services": a.services,
    }))
}

fn attributes(m: &BTreeMap<String, AttributeSchema>, total: u64) -> Vec<Value> {
    m.iter()
        .map(|(k, a)| {
            json!({
                "key": k,
                "types": a.types,
                "share": if total > 0 { a.items as f64 / total as f64 } else { 0.0 },
                "items": a.items,
                "bytes": a.bytes,
                "distinct_estimate": a.distinct.estimate(),
            })
        })
        .collect()
}

/// `n` of the `read` items of a signal as a share (0 when nothing was read).
fn share_of(n: u64, read: u64) -> f64 {
    if read > 0 {
        n as f64 / read as f64
    } else {
        0.0
    }
}

/// One service: templates, attribute schema with cardinality, metrics, span names. Shares
/// (templates, span names, metrics, attributes) are of the items read: when the edge
/// counted some without reading them (`unsummarised`, per signal), the names, counts and
/// attributes describe the rest, while `items` and `bytes` stay the whole volume.
pub fn service(name: &str, s: &ServiceSummary) -> Value {
    let (logs, traces, metrics) = (ReadPart::logs(s), ReadPart::traces(s), ReadPart::metrics(s));
    let (log_read, span_read, point_read) =
        (logs.read().items, traces.read().items, metrics.read().items);
    let mut templates: Vec<Value> = s
        .logs
        .templates
        .iter()
        .map(|(id, t)| {
            json!({
                "id": id, "template": t.template, "count": t.count, "bytes": t.bytes,
                "share": share_of(t.count, log_read), "severity": t.severity, "first_seen_unix_nano": t.seen.first_unix_nano,
                "last_seen_unix_nano": t.seen.last_unix_nano, "attribute_keys": t.attribute_keys,
            })
        })
        .collect();
    templates.sort_by_key(|t| std::cmp::Reverse(t["count"].as_u64().unwrap_or(0)));
    let metrics_list: Vec<Value> = s
        .metrics
        .metrics
        .iter()
        .map(|(n, m)| {
            json!({
                "name": n, "kind": m.kind, "unit": m.unit, "temporality": m.temporality,
                "points": m.volume.items, "bytes": m.volume.bytes,
                "share": share_of(m.volume.items, point_read),
                "series_estimate": m.series.estimate(), "constant": m.constant.is_constant(),
                "attribute_keys": m.attribute_keys.iter().map(|(k, d)| json!({"key": k, "distinct_estimate": d.estimate()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let spans: Vec<Value> = s
        .traces
        .spans
        .iter()
        .map(|(n, sp)| {
            json!({
                "name": n, "count": sp.volume.items, "bytes": sp.volume.bytes,
                "share": share_of(sp.volume.items, span_read), "kinds": sp.kinds,
                "status": sp.status, "p50_ms": sp.duration_ms.quantile_ms(0.5),
                "p99_ms": sp.duration_ms.quantile_ms(0.99), "attribute_keys": sp.attribute_keys,
            })
        })
        .collect();
    json!({
        "service": name,
        "logs": {
            "items": s.logs.volume.items, "bytes": s.logs.volume.bytes, "severity": s.logs.severity,
            "unsummarised": logs.unsummarised_view(),
            "templates": templates,
            "attributes": attributes(&s.logs.attributes.item, log_read),
            "resource_attributes": attributes(&s.logs.attributes.resource, log_read),
        },
        "traces": {
            "items": s.traces.volume.items, "bytes": s.traces.volume.bytes,
            "unsummarised": traces.unsummarised_view(), "spans": spans,
            "attributes": attributes(&s.traces.attributes.item, span_read),
        },
        "metrics": {
            "items": s.metrics.volume.items, "bytes": s.metrics.volume.bytes,
            "unsummarised": metrics.unsummarised_view(), "metrics": metrics_list,
            "attributes": attributes(&s.metrics.attributes.item, point_read),
        },
        "notes": crate::units::read_notes(s),
    })
}

/// Policies with the hits, misses and errors edges reported, and which edges hold the
/// current set.
pub fn policies(c: &ControlPlane) -> Result<Value, CatalogError> {
    let statuses = c.store().policy_statuses()?;
    let edges = c.store().edges()?;
    let current_hash = c.served_set()?.hash.clone();
    // Bytes of the hits, for policies whose records the catalog knows (accepted findings).
    let measured: BTreeMap<String, (f64, f64)> = c
        .advice()?
        .accepted
        .into_iter()
        .filter_map(|f| {
            f.measured
                .map(|m| (f.id, (m.enforced_bytes, m.shadow_bytes)))
        })
        .collect();
    let list: Vec<Value> = c
        .store()
        .policies()?
        .into_iter()
        .map(|p| {
            let mine: Vec<_> = statuses.iter().filter(|s| s.policy_id == p.id).collect();
            let enforced: i64 = mine.iter().map(|s| s.hits).sum();
            let shadow: i64 = mine.iter().map(|s| s.shadow_hits).sum();
            let misses: i64 = mine.iter().map(|s| s.misses).sum();
            let errors: Vec<&String> = mine.iter().flat_map(|s| &s.errors).collect();
            let bytes = measured.get(&p.id).copied();
            json!({"policy": p, "hits": enforced + shadow, "enforced_hits": enforced,
                   "shadow_hits": shadow, "enforced_bytes": bytes.map(|b| b.0),
                   "shadow_bytes": bytes.map(|b| b.1), "misses": misses, "errors": errors,
                   "per_edge": mine})
        })
        .collect();
    let edges: Vec<Value> = edges
        .into_iter()
        .map(|e| {
            let stale = crate::store::now_secs() - e.last_sync > c.stale_after_secs();
            json!({"edge": e.instance_id, "service": e.service_name, "last_sync": e.last_sync,
                   "last_seen": e.last_sync, "stale": stale,
                   "in_sync": !stale && e.last_hash == current_hash})
        })
        .collect();
    Ok(json!({"policies": list, "edges": edges, "hash": current_hash}))
}
