//! Data subject rights over the catalog: everything stored about a service as one JSON
//! document (access, portability), for `weir catalog export-service` and
//! `GET /api/v1/services/{name}/export` (admins). Erasure is
//! [`crate::control::ControlPlane::delete_service`]; correction is editing or deleting a
//! policy, revoking a token, deleting a service (summaries are measurements: they are not
//! edited, they are erased and measured again).

use rusqlite::params;
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
        if summaries.is_empty() && edges.is_empty() && policies.is_empty() && audit.is_empty() {
            return Err(ControlError::NotFound {
                what: "service",
                id: service.to_string(),
            });
        }
        Ok(json!({
            "service": service,
            "exported_at": now_secs(),
            "summaries": summaries,
            "reported_by_edges": edges,
            "findings": findings,
            "policies": policies,
            "audit": audit,
        }))
    }
}
