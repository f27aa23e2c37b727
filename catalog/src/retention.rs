//! Retention of every table of the store, enforced by the control plane's periodic job
//! (hourly) and by `weir admin retention apply`.
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     retention: 720h              # catalog summaries (and Prometheus snapshots) not seen for this long
//!     retention_per_table:         # every other table; 0s keeps forever
//!       edges: 720h                # edges that have not synced for this long
//!       policy_status: 720h        # per-edge policy counters not updated for this long
//!       dismissed_findings: 2160h  # dismissals older than this (a finding still true shows again)
//!       revoked_tokens: 2160h      # tokens revoked or expired this long ago (live ones kept)
//!       disabled_users: 2160h      # users disabled this long ago
//!                                  # (expired sessions are always removed)
//!       audit: 8760h               # audit records older than this
//! ```
//!
//! Rows are removed so that nothing of them is left in the files (`secure_delete`, then
//! VACUUM and a truncated WAL: [`crate::store::Store::scrub`]). Audit records go through
//! the audit's own pruning (`crate::audit`): it keeps the newest record and appends an
//! `audit.prune` record carrying the hash the remaining chain starts from, so
//! `weir admin audit verify` still passes.

use std::time::Duration;

use crate::db::params;
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::CatalogError;

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 24 * 3600)
}
fn d30() -> Duration {
    days(30)
}
fn d90() -> Duration {
    days(90)
}
fn d365() -> Duration {
    days(365)
}

/// How long rows of each table (besides the catalog summaries) are kept. `0s`: forever.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionPerTable {
    /// Edges that have not synced for this long (and the services recorded under their
    /// names that no summary holds any more). Default: 720h (30 days).
    #[serde(default = "d30", with = "humantime_serde")]
    pub edges: Duration,
    /// Per-edge policy counters not updated for this long. Default: 720h.
    #[serde(default = "d30", with = "humantime_serde")]
    pub policy_status: Duration,
    /// Dismissals of findings older than this. Default: 2160h (90 days).
    #[serde(default = "d90", with = "humantime_serde")]
    pub dismissed_findings: Duration,
    /// Tokens revoked, or expired, this long ago (never a live token). Default: 2160h.
    #[serde(default = "d90", with = "humantime_serde")]
    pub revoked_tokens: Duration,
    /// Users disabled this long ago (their sessions go when they are disabled). Default:
    /// 2160h.
    #[serde(default = "d90", with = "humantime_serde")]
    pub disabled_users: Duration,
    /// Audit records older than this (the newest record always stays). Default: 8760h
    /// (365 days).
    #[serde(default = "d365", with = "humantime_serde")]
    pub audit: Duration,
}

impl Default for RetentionPerTable {
    fn default() -> Self {
        RetentionPerTable {
            edges: d30(),
            policy_status: d30(),
            dismissed_findings: d90(),
            revoked_tokens: d90(),
            disabled_users: d90(),
            audit: d365(),
        }
    }
}

/// The full retention settings: the summaries' and every other table's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Catalog summaries not seen for this long (`control_plane.retention`). `0s`: forever.
    pub summaries: Duration,
    /// Every other table.
    pub tables: RetentionPerTable,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            summaries: d30(),
            tables: RetentionPerTable::default(),
        }
    }
}

/// Rows removed by one run, per table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pruned {
    /// Catalog summaries (service, signal) and Prometheus snapshots.
    pub summaries: usize,
    /// Edges.
    pub edges: usize,
    /// (edge name, service) records.
    pub edge_services: usize,
    /// Per-edge policy counters.
    pub policy_status: usize,
    /// Dismissed findings.
    pub dismissed_findings: usize,
    /// Revoked or expired tokens.
    pub revoked_tokens: usize,
    /// Disabled users.
    pub disabled_users: usize,
    /// Expired sessions (always removed: a session past its expiry is of no use).
    pub sessions: usize,
    /// Audit records.
    pub audit: usize,
}

impl Pruned {
    /// Rows removed in all.
    pub fn total(&self) -> usize {
        self.summaries
            + self.edges
            + self.edge_services
            + self.policy_status
            + self.dismissed_findings
            + self.revoked_tokens
            + self.disabled_users
            + self.sessions
            + self.audit
    }
}

fn cutoff(now: i64, keep: Duration) -> Option<i64> {
    (!keep.is_zero()).then(|| now.saturating_sub(keep.as_secs() as i64))
}

impl Store {
    /// Removes every row older than its table's retention, as of `now` (unix seconds; the
    /// periodic job passes the current time, tests any other), leaving no trace of them in
    /// the files.
    pub fn apply_retention(&self, now: i64, r: &Retention) -> Result<Pruned, CatalogError> {
        let mut p = Pruned::default();
        self.exclusive(|conn| -> Result<(), CatalogError> {
            let tx = conn.unchecked_transaction()?;
            if let Some(c) = cutoff(now, r.summaries) {
                p.summaries =
                    tx.execute("DELETE FROM summaries WHERE last_seen < ?1", params![c])?;
                // Prometheus snapshots not refreshed for as long count as catalog entries.
                p.summaries += tx.execute(
                    "DELETE FROM prometheus_sources WHERE fetched_at < ?1",
                    params![c],
                )?;
            }
            if let Some(c) = cutoff(now, r.tables.edges) {
                p.edges = tx.execute("DELETE FROM edges WHERE last_sync < ?1", params![c])?;
                // Summary sequence numbers of exporter runs not heard from for as long.
                tx.execute("DELETE FROM ingest_streams WHERE at < ?1", params![c])?;
            }
            p.edge_services = tx.execute(
                "DELETE FROM edge_services WHERE service NOT IN (SELECT service FROM summaries)",
                [],
            )?;
            if let Some(c) = cutoff(now, r.tables.policy_status) {
                p.policy_status = tx.execute(
                    "DELETE FROM policy_status WHERE updated_at < ?1",
                    params![c],
                )?;
            }
            if let Some(c) = cutoff(now, r.tables.dismissed_findings) {
                p.dismissed_findings =
                    tx.execute("DELETE FROM dismissed WHERE at < ?1", params![c])?;
            }
            if let Some(c) = cutoff(now, r.tables.revoked_tokens) {
                p.revoked_tokens = tx.execute(
                    "DELETE FROM tokens WHERE (revoked_at IS NOT NULL AND revoked_at < ?1)
                         OR (expires_at IS NOT NULL AND expires_at < ?1)",
                    params![c],
                )?;
            }
            if let Some(c) = cutoff(now, r.tables.disabled_users) {
                p.disabled_users = tx.execute(
                    "DELETE FROM users WHERE disabled_at IS NOT NULL AND disabled_at < ?1",
                    params![c],
                )?;
            }
            p.sessions = tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            tx.commit()?;
            // The audit's own pruning keeps its hash chain verifiable (an `audit.prune`
            // record carries the hash the rest chains from) and never removes the newest
            // record.
            if let Some(c) = cutoff(now, r.tables.audit) {
                p.audit = crate::audit::prune_before(conn, c, "retention")?;
            }
            Ok(())
        })??;
        if p.total() > 0 {
            self.scrub()?;
            tracing::info!(?p, "retention removed rows");
        }
        Ok(p)
    }
}
