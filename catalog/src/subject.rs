//! Data subject rights over the catalog: everything stored about a service as one JSON
//! document (access, portability), for `weir catalog export-service` and
//! `GET /api/v1/services/{name}/export` (admins). Erasure is
//! [`crate::control::ControlPlane::delete_service`] for a service and
//! [`ControlPlane::erase_value`] for one value wherever it was seen; correction is editing or deleting a
//! policy, revoking a token, deleting a service (summaries are measurements: they are not
//! edited, they are erased and measured again).

use crate::db::params;
use serde_json::{json, Value};

use crate::control::{ControlError, ControlPlane};
use crate::store::now_secs;

/// Whether `v` holds the string `s` anywhere (as a value or a key).
fn mentions(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| mentions(x, s)),
        Value::Object(o) => o.iter().any(|(k, x)| k == s || mentions(x, s)),
        _ => false,
    }
}

impl ControlPlane {
    /// Everything the store holds about `service`: its summaries per signal (as stored,
    /// with first and last seen), the edges that reported it, the findings about it and
    /// whether each was dismissed, the policies that name it with their per-edge status,
    /// and the audit records about it (by name, or by the keyed fingerprint an erasure
    /// leaves). `NotFound` when the store holds nothing of it.
    pub fn export_service(&self, service: &str) -> Result<Value, ControlError> {
        let store = self.store();
        let summaries: Vec<Value> = store
            .summaries()?
            .into_iter()
            .filter(|r| r.0 == service)
            .map(|(_, signal, body, first_seen, last_seen)| {
                json!({
                    "signal": signal,
                    "first_seen": first_seen,
                    "last_seen": last_seen,
                    "summary": serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body)),
                })
            })
            .collect();
        let edges: Vec<String> = store
            .with_conn(|c| -> Result<Vec<String>, rusqlite::Error> {
                let mut st =
                    c.prepare("SELECT edge FROM edge_services WHERE service = ?1 ORDER BY edge")?;
                let rows = st.query_map(params![service], |r| r.get(0))?;
                rows.collect()
            })
            .map_err(crate::CatalogError::from)?;
        let dismissed = store.dismissed()?;
        let findings: Vec<Value> = self
            .findings()?
            .into_iter()
            .filter(|f| f.service == service)
            .map(|f| {
                let mut v = serde_json::to_value(&f).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("dismissed".into(), dismissed.contains(&f.id).into());
                }
                v
            })
            .collect();
        let statuses = store.policy_statuses()?;
        let policies: Vec<Value> = store
            .policies()?
            .into_iter()
            .filter(|p| mentions(&p.body, service))
            .map(|p| {
                let status: Vec<_> = statuses.iter().filter(|s| s.policy_id == p.id).collect();
                json!({"policy": p, "status": status})
            })
            .collect();
        let fingerprint = self.service_fingerprint(service);
        let audit: Vec<Value> = store
            .audit_log(0, i64::MAX)?
            .into_iter()
            .filter(|e| {
                e.target == service
                    || e.target == fingerprint
                    || e.before.as_ref().is_some_and(|v| mentions(v, service))
                    || e.after.as_ref().is_some_and(|v| mentions(v, service))
            })
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        let prometheus: Vec<Value> = store
            .prometheus_snapshots()?
            .iter()
            .filter_map(|s| s.job_view(service))
            .collect();
        if summaries.is_empty()
            && edges.is_empty()
            && policies.is_empty()
            && audit.is_empty()
            && prometheus.is_empty()
        {
            return Err(ControlError::NotFound {
                what: "service",
                id: service.to_string(),
            });
        }
        Ok(json!({
            "service": service,
            "exported_at": now_secs(),
            "summaries": summaries,
            "prometheus": prometheus,
            "reported_by_edges": edges,
            "findings": findings,
            "policies": policies,
            "audit": audit,
        }))
    }
}

/// What [`ControlPlane::erase_value`] changed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ValueErasure {
    /// Exact sketches (up to 128 values) the value's hash was removed from.
    pub removed_from_sketches: usize,
    /// HyperLogLog sketches whose register the value may have set: emptied (a register
    /// cannot forget one value; the distinct counts of those attributes restart).
    pub sketches_reset: usize,
    /// Metric constant-value checks that held the value: forgotten (marked varied).
    pub constants_forgotten: usize,
    /// Summary rows rewritten.
    pub rows: usize,
}

/// The keyed hashes a value given as text may have been stored under: as a string, and
/// as an int, a double or a bool when it reads as one (the catalog hashes each type apart).
fn candidate_hashes(key: &weir_summary::SketchKey, value: &str) -> Vec<u64> {
    let mut out = vec![key.hash_tagged(1, value.as_bytes())];
    if let Ok(i) = value.parse::<i64>() {
        out.push(key.hash_tagged(3, &i.to_le_bytes()));
    }
    if let Ok(d) = value.parse::<f64>() {
        out.push(key.hash_tagged(4, &d.to_bits().to_le_bytes()));
    }
    match value {
        "true" => out.push(key.hash_tagged(2, &[1])),
        "false" => out.push(key.hash_tagged(2, &[0])),
        _ => {}
    }
    out
}

/// The distinct sketch's sparse encoding of a hash: its low 25 bits as the index, and as
/// the rank one plus the run of one bits from bit 12 (weir-summary's `sketch_wire` reads
/// this form back).
fn encoded(hash: u64) -> u32 {
    let idx = (hash & ((1 << 25) - 1)) as u32;
    let rank = ((hash >> 12).trailing_ones() + 1).min(52);
    (idx << 6) | rank
}

/// HyperLogLog register `idx` of a sketch's packed registers (6 bits each, after two
/// header words).
fn register(words: &[u64], idx: usize) -> u64 {
    let bit = idx * 6;
    let word = bit / 32 + 2;
    let pos = bit % 32;
    let low = 6.min(32 - pos);
    let high = 6 - low;
    let first = words.get(word).copied().unwrap_or(0);
    let second = words.get(word + 1).copied().unwrap_or(0);
    ((first >> pos) & ((1 << low) - 1)) | ((second & ((1 << high) - 1)) << low)
}

/// Removes `hashes` from one stored distinct sketch `[word, registers]`; returns
/// (removed, reset).
fn erase_from_sketch(sketch: &mut Value, hashes: &[u64]) -> (bool, bool) {
    let Some(arr) = sketch.as_array() else {
        return (false, false);
    };
    let word = arr.first().and_then(Value::as_u64).unwrap_or(0);
    let regs: Option<Vec<u64>> = arr
        .get(1)
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_u64).collect());
    let targets: Vec<u64> = hashes.iter().map(|h| u64::from(encoded(*h))).collect();
    let write_small = |items: &[u64]| -> Value {
        let mut w = 0u64;
        if let Some(a) = items.first() {
            w |= a << 2;
        }
        if let Some(b) = items.get(1) {
            w |= b << 33;
        }
        json!([w, null])
    };
    match (word & 0b11, regs) {
        (0, None) => {
            let items: Vec<u64> = [(word >> 2) & 0x7fff_ffff, (word >> 33) & 0x7fff_ffff]
                .into_iter()
                .filter(|h| *h != 0)
                .collect();
            let kept: Vec<u64> = items
                .iter()
                .copied()
                .filter(|h| !targets.contains(h))
                .collect();
            if kept.len() == items.len() {
                return (false, false);
            }
            *sketch = write_small(&kept);
            (true, false)
        }
        (1, Some(items)) => {
            let kept: Vec<u64> = items
                .iter()
                .copied()
                .filter(|h| !targets.contains(h))
                .collect();
            if kept.len() == items.len() {
                return (false, false);
            }
            *sketch = if kept.len() <= 2 {
                write_small(&kept)
            } else {
                json!([word, kept])
            };
            (true, false)
        }
        (3, Some(words)) => {
            let touched = hashes.iter().any(|h| {
                let idx = (h & 4095) as usize;
                let rank = u64::from(((h >> 12).trailing_ones() + 1).min(52));
                register(&words, idx) >= rank
            });
            if touched {
                *sketch = json!([0, null]);
            }
            (false, touched)
        }
        _ => (false, false),
    }
}

/// Walks a stored summary, erasing `hashes` wherever a value hash is kept.
fn erase_in_summary(
    v: &mut Value,
    hashes: &[u64],
    key: &weir_summary::SketchKey,
    out: &mut ValueErasure,
) {
    let Some(o) = v.as_object_mut() else {
        if let Some(a) = v.as_array_mut() {
            for x in a {
                erase_in_summary(x, hashes, key, out);
            }
        }
        return;
    };
    // Whether one of this metric's (attribute key, value) pair sketches held the value.
    let mut pair_held = false;
    for (k, x) in o.iter_mut() {
        match k.as_str() {
            // Attribute schemas: value hashes.
            "distinct" => {
                let (removed, reset) = erase_from_sketch(x, hashes);
                out.removed_from_sketches += usize::from(removed);
                out.sketches_reset += usize::from(reset);
            }
            // Metric attribute keys: hashes of (attribute key, value) pairs.
            "attribute_keys" if x.is_object() => {
                if let Some(m) = x.as_object_mut() {
                    for (name, s) in m.iter_mut() {
                        let pairs: Vec<u64> = hashes
                            .iter()
                            .map(|vh| key.hash(name.as_bytes()).rotate_left(17) ^ vh)
                            .collect();
                        let (removed, reset) = erase_from_sketch(s, &pairs);
                        out.removed_from_sketches += usize::from(removed);
                        out.sketches_reset += usize::from(reset);
                        pair_held |= removed || reset;
                    }
                }
            }
            // A metric's constant-value check.
            "constant" => {
                let held = x
                    .get("value_hash")
                    .and_then(Value::as_u64)
                    .is_some_and(|h| hashes.contains(&h));
                if held {
                    *x = json!({"value_hash": null, "varied": true});
                    out.constants_forgotten += 1;
                }
            }
            _ => erase_in_summary(x, hashes, key, out),
        }
    }
    // A series hash covers a whole attribute set: one value cannot be taken out of it, so
    // the series sketch of a metric that carried the value is emptied.
    if pair_held {
        if let Some(series) = o.get_mut("series") {
            if *series != json!([0, null]) {
                *series = json!([0, null]);
                out.sketches_reset += 1;
            }
        }
    }
}

impl ControlPlane {
    /// Erases every stored trace of one attribute or metric value, found by its keyed
    /// hashes (as a string, and as an int, double or bool when it reads as one): removed
    /// from the exact distinct sketches (up to 128 values) that hold it, HyperLogLog
    /// sketches whose register it may have set emptied, the series sketch of every metric
    /// that carried it emptied (a series hash covers a whole attribute set), metric
    /// constant checks holding it forgotten; then the files are scrubbed. The catalog never stored the value itself.
    /// Audited by a keyed fingerprint of the value, not the value.
    pub fn erase_value(&self, value: &str, actor: &str) -> Result<ValueErasure, ControlError> {
        let key = self.sketch_key();
        let hashes = candidate_hashes(&key, value);
        let mut out = ValueErasure::default();
        self.store()
            .exclusive(|c| -> Result<(), crate::CatalogError> {
                let tx = c.unchecked_transaction()?;
                let rows: Vec<(String, String, String)> = {
                    let mut st = tx.prepare("SELECT service, signal, body FROM summaries")?;
                    let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    r.collect::<Result<_, _>>()?
                };
                for (service, signal, body) in rows {
                    let Ok(mut v) = serde_json::from_str::<Value>(&body) else {
                        continue;
                    };
                    let before = out.clone();
                    erase_in_summary(&mut v, &hashes, &key, &mut out);
                    if out != before {
                        tx.execute(
                            "UPDATE summaries SET body = ?3 WHERE service = ?1 AND signal = ?2",
                            params![service, signal, v.to_string()],
                        )?;
                        out.rows += 1;
                    }
                }
                tx.commit()?;
                Ok(())
            })??;
        if out.rows > 0 {
            self.store().scrub()?;
        }
        let fingerprint = format!("value#{:016x}", key.hash(value.as_bytes()));
        self.store().audit(
            actor,
            "catalog.erase_value",
            &fingerprint,
            None,
            Some(serde_json::to_value(&out).map_err(crate::CatalogError::from)?),
        )?;
        Ok(out)
    }
}
