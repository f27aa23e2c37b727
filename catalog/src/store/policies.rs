//! Policies and what surrounds them: the policies served to edges (with their canonical
//! forms), edges' syncs and per-policy status, the read-only sources' snapshots and the
//! dismissed findings.

use crate::db::{params, Connection, OptionalExtension};

use super::audit::insert_audit;
use super::{now_secs, scrub, to_json, EdgeInfo, PolicyStatus, Store, StoredPolicy};
use crate::CatalogError;

impl Store {
    // ---- policies ----

    /// All policies, by id.
    pub fn policies(&self) -> Result<Vec<StoredPolicy>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, name, body, enabled, shadow, origin, created_at, modified_at FROM policies ORDER BY id",
        )?;
        let rows = st.query_map([], row_policy)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One policy.
    pub fn policy(&self, id: &str) -> Result<Option<StoredPolicy>, CatalogError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT id, name, body, enabled, shadow, origin, created_at, modified_at FROM policies WHERE id = ?1",
                params![id],
                row_policy,
            )
            .optional()?)
    }

    /// Inserts or replaces a policy, recording the change in the audit log in the same
    /// transaction. Returns the previous version.
    pub fn put_policy(
        &self,
        p: &StoredPolicy,
        actor: &str,
        action: &str,
    ) -> Result<Option<StoredPolicy>, CatalogError> {
        // Buffered sync reports count under the mode the policy had when they came.
        self.persist()?;
        let before = self.policy(&p.id)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (canonical, hash) = crate::policy_forms::served_form(&p.id, &p.body, p.shadow);
        tx.execute(
            "INSERT INTO policies (id, name, body, enabled, shadow, origin, created_at, modified_at,
                 canonical, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET name = ?2, body = ?3, enabled = ?4, shadow = ?5,
                 origin = ?6, modified_at = ?8, canonical = ?9, hash = ?10",
            params![
                p.id,
                p.name,
                p.body.to_string(),
                p.enabled,
                p.shadow,
                p.origin,
                p.created_at,
                p.modified_at,
                canonical,
                hash
            ],
        )?;
        insert_audit(
            &tx,
            actor,
            action,
            &p.id,
            before.as_ref().map(to_json).transpose()?,
            Some(to_json(p)?),
        )?;
        tx.commit()?;
        self.fast.bump_policies();
        Ok(before)
    }

    /// The canonical forms of the policies served to edges (enabled ones whose document
    /// reads; shadow ones carry the shadow label), by id, as stored when each was written.
    pub fn served_forms(&self) -> Result<Vec<(String, Vec<u8>)>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, canonical FROM policies WHERE enabled <> 0 AND canonical IS NOT NULL ORDER BY id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a policy (audited). Returns it, or `None` when there was none.
    pub fn delete_policy(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<Option<StoredPolicy>, CatalogError> {
        let before = self.policy(id)?;
        let Some(b) = before.clone() else {
            return Ok(None);
        };
        self.persist()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM policies WHERE id = ?1", params![id])?;
        insert_audit(&tx, actor, "policy.delete", id, Some(to_json(&b)?), None)?;
        tx.commit()?;
        self.fast.bump_policies();
        scrub(&conn)?;
        Ok(before)
    }

    // ---- edges and status ----

    /// Records a sync from an edge and adds its per-policy counts; hits count as shadow hits
    /// when the policy is in shadow mode at the time of the report.
    pub fn record_sync(
        &self,
        edge: &EdgeInfo,
        statuses: &[(String, i64, i64, Vec<String>)],
    ) -> Result<(), CatalogError> {
        self.persist()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        record_sync_in(&tx, edge, statuses)?;
        tx.commit()?;
        drop(conn);
        self.fast.bump();
        Ok(())
    }

    /// Every edge that has synced.
    pub fn edges(&self) -> Result<Vec<EdgeInfo>, CatalogError> {
        self.persist()?;
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT instance_id, service_name, last_sync, last_hash FROM edges ORDER BY instance_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(EdgeInfo {
                instance_id: r.get(0)?,
                service_name: r.get(1)?,
                last_sync: r.get(2)?,
                last_hash: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Per-edge status of every policy.
    pub fn policy_statuses(&self) -> Result<Vec<PolicyStatus>, CatalogError> {
        self.persist()?;
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT edge, policy_id, hits, misses, errors, updated_at, shadow_hits FROM policy_status ORDER BY policy_id, edge",
        )?;
        let rows = st.query_map([], |r| {
            let errors: String = r.get(4)?;
            Ok(PolicyStatus {
                edge: r.get(0)?,
                policy_id: r.get(1)?,
                hits: r.get(2)?,
                misses: r.get(3)?,
                errors: serde_json::from_str(&errors).unwrap_or_default(),
                updated_at: r.get(5)?,
                shadow_hits: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- read-only sources ----

    /// Stores the newest snapshot of a Prometheus server (replacing its previous one;
    /// metadata and counts only, see `crate::prometheus`).
    pub fn put_prometheus_snapshot(
        &self,
        snap: &crate::prometheus::Snapshot,
    ) -> Result<(), CatalogError> {
        let body = serde_json::to_string(snap)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO prometheus_sources (source, body, fetched_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET body = ?2, fetched_at = ?3",
            params![snap.source, body, snap.fetched_at],
        )?;
        tx.commit()?;
        self.fast.bump();
        Ok(())
    }

    /// The stored Prometheus snapshots, by source.
    pub fn prometheus_snapshots(&self) -> Result<Vec<crate::prometheus::Snapshot>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT body FROM prometheus_sources ORDER BY source")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for b in rows {
            out.push(serde_json::from_str(&b?)?);
        }
        Ok(out)
    }

    /// Forgets a Prometheus source (leaving no trace of it in the files); whether it was
    /// stored.
    pub fn delete_prometheus_source(&self, source: &str) -> Result<bool, CatalogError> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM prometheus_sources WHERE source = ?1",
            params![source],
        )?;
        if n > 0 {
            scrub(&conn)?;
        }
        self.fast.bump();
        Ok(n > 0)
    }

    // ---- findings ----

    /// Marks a finding dismissed.
    pub fn dismiss(&self, finding_id: &str, actor: &str) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO dismissed (finding_id, at) VALUES (?1, ?2)
             ON CONFLICT (finding_id) DO UPDATE SET at = excluded.at",
            params![finding_id, now_secs()],
        )?;
        insert_audit(&tx, actor, "finding.dismiss", finding_id, None, None)?;
        tx.commit()?;
        self.fast.bump();
        Ok(())
    }

    /// Ids of dismissed findings.
    pub fn dismissed(&self) -> Result<Vec<String>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT finding_id FROM dismissed")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Records one edge's sync and adds its per-policy counts, inside the caller's transaction;
/// hits count as shadow hits when the policy is in shadow mode when they are written.
pub(crate) fn record_sync_in(
    tx: &Connection,
    edge: &EdgeInfo,
    statuses: &[(String, i64, i64, Vec<String>)],
) -> Result<(), CatalogError> {
    tx.execute(
            "INSERT INTO edges (instance_id, service_name, last_sync, last_hash) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (instance_id) DO UPDATE SET service_name = ?2, last_sync = ?3, last_hash = ?4",
        params![edge.instance_id, edge.service_name, edge.last_sync, edge.last_hash],
    )?;
    for (policy_id, hits, misses, errors) in statuses {
        tx.execute(
            "INSERT INTO policy_status (edge, policy_id, hits, misses, errors, updated_at, shadow_hits)
             VALUES (?1, ?2,
                 CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) <> 0 THEN 0 ELSE CAST(?3 AS BIGINT) END,
                 ?4, ?5, ?6,
                 CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) <> 0 THEN CAST(?3 AS BIGINT) ELSE 0 END)
             ON CONFLICT (edge, policy_id) DO UPDATE SET
                 hits = MIN(policy_status.hits + CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) <> 0 THEN 0 ELSE CAST(?3 AS BIGINT) END, 9007199254740992),
                 shadow_hits = MIN(policy_status.shadow_hits + CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) <> 0 THEN CAST(?3 AS BIGINT) ELSE 0 END, 9007199254740992),
                 misses = MIN(policy_status.misses + ?4, 9007199254740992), errors = ?5, updated_at = ?6",
            params![
                edge.instance_id,
                policy_id,
                hits,
                misses,
                serde_json::to_string(errors)?,
                edge.last_sync
            ],
        )?;
    }
    Ok(())
}

fn row_policy(r: &crate::db::Row<'_>) -> crate::db::Result<StoredPolicy> {
    let body: String = r.get(2)?;
    Ok(StoredPolicy {
        id: r.get(0)?,
        name: r.get(1)?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        enabled: r.get(3)?,
        shadow: r.get(4)?,
        origin: r.get(5)?,
        created_at: r.get(6)?,
        modified_at: r.get(7)?,
    })
}
