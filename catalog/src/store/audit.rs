//! The append-only audit log: records written alone or inside a caller's transaction
//! (each a link of the keyed hash chain of `crate::audit`), and read back in order.

use std::path::Path;

use crate::db::{params, Connection};

use super::{AuditEntry, AuditRecord, Store};
use crate::CatalogError;

impl Store {
    // ---- audit ----

    /// Appends an audit record on its own.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), CatalogError> {
        let conn = self.conn();
        insert_audit(&conn, actor, action, target, before, after)
    }

    /// Appends an audit record naming the client address it came from.
    pub fn audit_with_client(
        &self,
        actor: &str,
        client: &str,
        action: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), CatalogError> {
        let conn = self.conn();
        crate::audit::with_client(client, || {
            insert_audit(&conn, actor, action, target, before, after)
        })
    }

    /// Appends several records in one transaction, each naming its client address.
    pub fn audit_batch(&self, records: &[AuditRecord]) -> Result<(), CatalogError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(crate::db::TransactionBehavior::Immediate)?;
        for r in records {
            crate::audit::with_client(&r.client, || {
                insert_audit(&tx, &r.actor, &r.action, &r.target, None, r.after.clone())
            })?;
        }
        tx.commit()?;
        crate::audit::anchor_newest(&conn, Path::new(conn.path().unwrap_or_default()))?;
        Ok(())
    }

    /// The audit log, newest last, from `since_seq` (exclusive), at most `limit` records.
    pub fn audit_log(&self, since_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT seq, at, actor, action, target, before, after, client, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st.query_map(params![since_seq, limit], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                before: parse_json(r.get(5)?),
                after: parse_json(r.get(6)?),
                client: r.get(7)?,
                hash: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Appends an audit record inside the caller's transaction (for the crate's other
/// modules).
pub(crate) fn audit_in(
    conn: &Connection,
    actor: &str,
    action: &str,
    target: &str,
    after: Option<serde_json::Value>,
) -> Result<(), CatalogError> {
    insert_audit(conn, actor, action, target, None, after)
}

pub(super) fn insert_audit(
    conn: &Connection,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), CatalogError> {
    if conn.is_autocommit() {
        // On its own: one write transaction, so no other writer slips in between the
        // read of the chain's end and the new link.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = crate::audit::append(
            conn,
            actor,
            action,
            target,
            before.map(|v| v.to_string()),
            after.map(|v| v.to_string()),
        );
        match r {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        crate::audit::anchor_newest(conn, Path::new(conn.path().unwrap_or_default()))?;
        return Ok(());
    }
    crate::audit::append(
        conn,
        actor,
        action,
        target,
        before.map(|v| v.to_string()),
        after.map(|v| v.to_string()),
    )
}

fn parse_json(s: Option<String>) -> Option<serde_json::Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}
