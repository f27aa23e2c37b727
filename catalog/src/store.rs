//! The control plane's embedded store: one SQLite file holding the catalog (metadata
//! summaries only), policies, edge status, API tokens (hashed) and the append-only audit log.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::CatalogError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS summaries (
    service    TEXT NOT NULL,
    signal     TEXT NOT NULL,
    body       TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (service, signal)
);
CREATE TABLE IF NOT EXISTS edge_services (
    edge    TEXT NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (edge, service)
);
CREATE TABLE IF NOT EXISTS ingest_streams (
    edge   TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (edge, stream)
);
CREATE TABLE IF NOT EXISTS policies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    shadow      INTEGER NOT NULL,
    origin      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS edges (
    instance_id  TEXT PRIMARY KEY,
    service_name TEXT NOT NULL,
    last_sync    INTEGER NOT NULL,
    last_hash    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_status (
    edge       TEXT NOT NULL,
    policy_id  TEXT NOT NULL,
    hits       INTEGER NOT NULL,
    misses     INTEGER NOT NULL,
    shadow_hits INTEGER NOT NULL DEFAULT 0,
    errors     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (edge, policy_id)
);
CREATE TABLE IF NOT EXISTS tokens (
    id         TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS prometheus_sources (
    source     TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    fetched_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dismissed (
    finding_id TEXT PRIMARY KEY,
    at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// See [`Store::scrub`].
fn scrub(conn: &Connection) -> Result<(), CatalogError> {
    conn.execute_batch("VACUUM")?;
    for attempt in 0..50 {
        // (busy, frames in the log, frames checkpointed); busy = 1 while another connection
        // reads: wait for it and retry.
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        if attempt == 49 {
            tracing::warn!("catalog store: the -wal file could not be truncated after an erasure (readers kept it busy); it will be at the next erasure");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// Unix time in seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A stored policy with its control-plane state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredPolicy {
    /// The policy id (unique).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The policy document in the specification's JSON form.
    pub body: serde_json::Value,
    /// Disabled policies are kept but not served to edges.
    pub enabled: bool,
    /// Served with the shadow label: edges count matches and drop nothing.
    pub shadow: bool,
    /// Where it came from: `user` or `suggestion:<finding id>`.
    pub origin: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// Per-policy status as last reported by one edge.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolicyStatus {
    /// The edge's service.instance.id.
    pub edge: String,
    /// The policy.
    pub policy_id: String,
    /// Match hits accumulated from the edge's reports while the policy was enforced.
    pub hits: i64,
    /// Match hits accumulated while the policy was in shadow mode (what it would have
    /// matched; it dropped nothing).
    pub shadow_hits: i64,
    /// Match misses accumulated.
    pub misses: i64,
    /// Compile errors the edge reported (latest report).
    pub errors: Vec<String>,
    /// Unix seconds of the latest report.
    pub updated_at: i64,
}

/// An edge that has synced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EdgeInfo {
    /// service.instance.id.
    pub instance_id: String,
    /// service.name.
    pub service_name: String,
    /// Unix seconds of its last sync.
    pub last_sync: i64,
    /// The policy-set hash it last received.
    pub last_hash: String,
}

/// A token's record (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    /// Public id (the token's prefix part).
    pub id: String,
    /// Role name.
    pub role: String,
    /// Free-text name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// For an edge token: the edge name it is bound to (see `auth::Principal::edge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// Unix seconds after which the token is refused; `None`: never expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Unix seconds of its last successful use (to the minute); `None`: never used.
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    /// Sequence number, rising.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who: `token:<id>` or `cli`.
    pub actor: String,
    /// What: `policy.create`, `policy.update`, `policy.delete`, `suggestion.accept`,
    /// `token.create`, `token.revoke`, `catalog.delete_service`, ...
    pub action: String,
    /// On what (a policy id, a token id, a service).
    pub target: String,
    /// State before, as JSON, where there was one.
    pub before: Option<serde_json::Value>,
    /// State after, as JSON, where there is one.
    pub after: Option<serde_json::Value>,
    /// The client address the request came from; `local` for the CLI and the control
    /// plane's own jobs; `None` for records written before addresses were kept.
    #[serde(default)]
    pub client: Option<String>,
    /// The record's link in the tamper-evident chain (see `crate::audit`).
    #[serde(default)]
    pub hash: Option<String>,
}

/// An audit record to append (see [`Store::audit_batch`]).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Who.
    pub actor: String,
    /// From which client address(es).
    pub client: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// State after, as JSON.
    pub after: Option<serde_json::Value>,
}

/// One stored summary row: (service, signal, body, first_seen, last_seen).
pub type SummaryRow = (String, String, String, i64, i64);

/// The store. Cheap operations under one connection lock; ingest staged in memory and
/// written once per interval, lookups cached (see `crate::staging`).
pub struct Store {
    conn: Mutex<Connection>,
    pub(crate) fast: crate::staging::Fast,
    path: std::path::PathBuf,
    key: crate::at_rest::Key,
    key_origin: crate::at_rest::KeyOrigin,
}

impl Drop for Store {
    fn drop(&mut self) {
        // What is staged reaches the file.
        if let Err(e) = self.persist() {
            tracing::warn!(error = %e, "catalog store: staged summaries not written at close");
        }
    }
}

fn parse_json(s: Option<String>) -> Option<serde_json::Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

impl Store {
    /// Opens (creating if needed) the encrypted store at `path`, with the key from
    /// `WEIR_CATALOG_KEY`, `WEIR_CATALOG_KEY_FILE` or `<path>.key` (see [`crate::at_rest`]).
    pub fn open(path: &Path) -> Result<Store, CatalogError> {
        Store::open_with_key_file(path, None)
    }

    /// Opens (creating if needed) the encrypted store at `path`; `key_file` overrides the
    /// default key file. A new database gets a new key (written to the key file, mode
    /// 0600); a plaintext database of an older version is encrypted in place under it.
    pub fn open_with_key_file(path: &Path, key_file: Option<&Path>) -> Result<Store, CatalogError> {
        use crate::at_rest;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CatalogError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let in_memory = path.as_os_str().is_empty() || path == Path::new(":memory:");
        if in_memory {
            // Fuzzing and tests: nothing reaches a disk, so no key file either.
            let conn = Connection::open_in_memory()?;
            return Store::finish_open(
                conn,
                path,
                crate::at_rest::Key::random(),
                crate::at_rest::KeyOrigin::Ephemeral,
            );
        }
        let (mut key, key_origin, key_path) = at_rest::key_for(path, key_file)?;
        if let at_rest::KeyOrigin::Created(p) = &key_origin {
            tracing::info!(key_file = %p.display(), store = %path.display(), "new catalog database key written (mode 0600); the database is encrypted with SQLCipher (AES-256) under it; keep the key apart from backups of the database");
        }
        if at_rest::is_plaintext_database(path) {
            tracing::warn!(store = %path.display(), "the catalog database is plaintext (an older version): encrypting it now");
            at_rest::encrypt_plaintext(path, &key)?;
            tracing::info!(store = %path.display(), "the catalog database is encrypted");
        }
        at_rest::precreate_private(path)?;
        for f in at_rest::store_files(path) {
            weir_tls::at_rest::restrict(&f);
        }
        let connect = |key: &crate::at_rest::Key| -> Result<Connection, CatalogError> {
            let conn = Connection::open(path).map_err(|source| CatalogError::Open {
                path: path.display().to_string(),
                source,
            })?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            at_rest::apply_key(&conn, key)?;
            Ok(conn)
        };
        let conn = match connect(&key) {
            Ok(c) => c,
            Err(first) => match at_rest::finish_interrupted_rekey(path, &key_path) {
                Some(k) => {
                    key = k;
                    connect(&key)?
                }
                None => {
                    return Err(CatalogError::Key(format!(
                        "{} cannot be decrypted with the key from {key_origin}: a wrong key, or \
                         not a Weir catalog database ({first})",
                        path.display()
                    )))
                }
            },
        };
        Store::finish_open(conn, path, key, key_origin)
    }

    /// Settings, schema and migrations on a keyed (or in-memory) connection.
    fn finish_open(
        conn: Connection,
        path: &Path,
        key: crate::at_rest::Key,
        key_origin: crate::at_rest::KeyOrigin,
    ) -> Result<Store, CatalogError> {
        // Erased rows leave no trace: SQLite zeroes deleted cells and freed pages
        // (secure_delete), temporary files of VACUUM and sorting stay in memory, and every
        // erasure ends in `scrub` (VACUUM, then the -wal file truncated).
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        add_column(&conn, "tokens", "edge", "TEXT")?;
        add_column(&conn, "tokens", "expires_at", "INTEGER")?;
        add_column(&conn, "tokens", "last_used_at", "INTEGER")?;
        crate::audit::install(&conn, path)?;
        crate::users::install(&conn)?;
        add_column(
            &conn,
            "policy_status",
            "shadow_hits",
            "INTEGER NOT NULL DEFAULT 0",
        )?;
        add_column(&conn, "policies", "canonical", "BLOB")?;
        add_column(&conn, "policies", "hash", "TEXT")?;
        crate::policy_forms::backfill(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            fast: crate::staging::Fast::default(),
            path: path.to_path_buf(),
            key,
            key_origin,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database key.
    pub fn key(&self) -> &crate::at_rest::Key {
        &self.key
    }

    /// Where the database key came from.
    pub fn key_origin(&self) -> &crate::at_rest::KeyOrigin {
        &self.key_origin
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection, locked, for the crate's other modules (users, audit).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn()
    }

    /// The connection, locked, unless another thread holds it now.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, Connection>> {
        match self.conn.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Runs `f` on the store's connection, under its lock.
    pub(crate) fn with_conn<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.conn())
    }

    // ---- catalog summaries ----

    /// Merges a summary for (service, signal): `merge(old body)` returns the new body.
    pub fn merge_summary(
        &self,
        service: &str,
        signal: &str,
        seen_at: i64,
        merge: impl FnOnce(Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        self.exclusive(|conn| Store::merge_summary_in(conn, service, signal, seen_at, merge))?
    }

    fn merge_summary_in(
        conn: &Connection,
        service: &str,
        signal: &str,
        seen_at: i64,
        merge: impl FnOnce(Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        let tx = conn.unchecked_transaction()?;
        let old: Option<String> = tx
            .query_row(
                "SELECT body FROM summaries WHERE service = ?1 AND signal = ?2",
                params![service, signal],
                |r| r.get(0),
            )
            .optional()?;
        let body = merge(old.as_deref())?;
        tx.execute(
            "INSERT INTO summaries (service, signal, body, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (service, signal) DO UPDATE SET body = ?3, last_seen = MAX(last_seen, ?4)",
            params![service, signal, body, seen_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Merges several services' summaries in one transaction: all are stored or none.
    /// `merge(service, old body)` returns the new body. With `edge`, each service is
    /// recorded as reported by that edge, and the request fails (nothing stored) when the
    /// edge would then report more than `max_edge_services` services, or when the
    /// catalog would hold more than `max_services` services.
    pub fn merge_summaries<'a>(
        &self,
        signal: &str,
        seen_at: i64,
        services: impl IntoIterator<Item = &'a str>,
        edge: Option<(&str, usize)>,
        max_services: usize,
        merge: impl FnMut(&str, Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        self.exclusive(|conn| {
            Store::merge_summaries_in(conn, signal, seen_at, services, edge, max_services, merge)
        })?
    }

    fn merge_summaries_in<'a>(
        conn: &Connection,
        signal: &str,
        seen_at: i64,
        services: impl IntoIterator<Item = &'a str>,
        edge: Option<(&str, usize)>,
        max_services: usize,
        mut merge: impl FnMut(&str, Option<&str>) -> Result<String, CatalogError>,
    ) -> Result<(), CatalogError> {
        let tx = conn.unchecked_transaction()?;
        // Counted once, then kept up to date as services are added.
        let mut in_catalog: i64 =
            tx.query_row("SELECT COUNT(DISTINCT service) FROM summaries", [], |r| {
                r.get(0)
            })?;
        let mut of_edge: i64 = match edge {
            Some((edge, _)) => tx.query_row(
                "SELECT COUNT(*) FROM edge_services WHERE edge = ?1",
                params![edge],
                |r| r.get(0),
            )?,
            None => 0,
        };
        for service in services {
            if let Some((edge, max)) = edge {
                let added = tx.execute(
                    "INSERT OR IGNORE INTO edge_services (edge, service) VALUES (?1, ?2)",
                    params![edge, service],
                )?;
                if added > 0 {
                    of_edge += 1;
                    let n = of_edge;
                    if n as u64 > max as u64 {
                        return Err(CatalogError::Limit(format!(
                            "services: edge {edge:?} would report {n} services, the per-edge limit is {max}"
                        )));
                    }
                }
            }
            let old: Option<String> = tx
                .query_row(
                    "SELECT body FROM summaries WHERE service = ?1 AND signal = ?2",
                    params![service, signal],
                    |r| r.get(0),
                )
                .optional()?;
            if old.is_none() {
                let n = in_catalog;
                in_catalog += 1;
                if n as u64 >= max_services as u64 {
                    return Err(CatalogError::Limit(format!(
                        "services: the catalog holds {n} services, the limit is {max_services}"
                    )));
                }
            }
            let body = merge(service, old.as_deref())?;
            tx.execute(
                "INSERT INTO summaries (service, signal, body, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (service, signal) DO UPDATE SET body = ?3, last_seen = MAX(last_seen, ?4)",
                params![service, signal, body, seen_at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// All summaries as (service, signal, body, first_seen, last_seen), after writing what
    /// is staged.
    pub fn summaries(&self) -> Result<Vec<SummaryRow>, CatalogError> {
        self.persist()?;
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT service, signal, body, first_seen, last_seen FROM summaries ORDER BY service, signal",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes every summary of a service, and the job of that name from Prometheus
    /// snapshots, leaving no trace of it in the files (see [`Store::scrub`]); returns how
    /// many rows went or changed.
    pub fn delete_service(&self, service: &str) -> Result<usize, CatalogError> {
        self.exclusive(|conn| Store::delete_service_in(conn, service))?
    }

    fn delete_service_in(conn: &Connection, service: &str) -> Result<usize, CatalogError> {
        conn.execute(
            "DELETE FROM edge_services WHERE service = ?1",
            params![service],
        )?;
        let mut n = conn.execute("DELETE FROM summaries WHERE service = ?1", params![service])?;
        // The job of that name in Prometheus snapshots (the service a Weir edge scraping it
        // reports).
        let rows: Vec<(String, String)> = {
            let mut st = conn.prepare("SELECT source, body FROM prometheus_sources")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (source, body) in rows {
            let mut snap: crate::prometheus::Snapshot = serde_json::from_str(&body)?;
            if snap.remove_job(service) {
                conn.execute(
                    "UPDATE prometheus_sources SET body = ?2 WHERE source = ?1",
                    params![source, serde_json::to_string(&snap)?],
                )?;
                n += 1;
            }
        }
        if n > 0 {
            scrub(conn)?;
        }
        Ok(n)
    }

    /// Deletes summaries not seen since `cutoff` (unix seconds), leaving no trace of them in
    /// the files; returns how many went.
    pub fn prune_unseen_since(&self, cutoff: i64) -> Result<usize, CatalogError> {
        self.exclusive(|conn| Store::prune_unseen_since_in(conn, cutoff))?
    }

    fn prune_unseen_since_in(conn: &Connection, cutoff: i64) -> Result<usize, CatalogError> {
        let n = conn.execute(
            "DELETE FROM summaries WHERE last_seen < ?1",
            params![cutoff],
        )?;
        conn.execute(
            "DELETE FROM edge_services WHERE service NOT IN (SELECT service FROM summaries)",
            [],
        )?;
        if n > 0 {
            scrub(conn)?;
        }
        Ok(n)
    }

    /// Rewrites the database so nothing deleted is left in any of its files: VACUUM (drops
    /// free pages, which secure_delete has zeroed already, and any written before it was
    /// on), then a TRUNCATE checkpoint, which copies the WAL into the database and empties
    /// the -wal file (it held older images of the pages). The -shm file is an index of the
    /// WAL and holds no content.
    pub fn scrub(&self) -> Result<(), CatalogError> {
        scrub(&self.conn())
    }

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
            "SELECT id, canonical FROM policies WHERE enabled AND canonical IS NOT NULL ORDER BY id",
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
            "INSERT OR REPLACE INTO dismissed (finding_id, at) VALUES (?1, ?2)",
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

    // ---- tokens ----

    /// Stores a token's hash (audited).
    pub fn put_token(&self, t: &TokenInfo, hash: &[u8], actor: &str) -> Result<(), CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO tokens (id, hash, role, name, created_at, edge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![t.id, hash, t.role, t.name, t.created_at, t.edge, t.expires_at],
        )?;
        insert_audit(&tx, actor, "token.create", &t.id, None, Some(to_json(t)?))?;
        tx.commit()?;
        self.fast.forget_tokens();
        Ok(())
    }

    /// The live (not revoked) token with this hash.
    pub fn token_by_hash(&self, hash: &[u8]) -> Result<Option<(TokenInfo, Vec<u8>)>, CatalogError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT id, role, name, created_at, revoked_at, hash, edge, expires_at, last_used_at FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
                params![hash],
                |r| {
                    Ok((
                        TokenInfo {
                            id: r.get(0)?,
                            role: r.get(1)?,
                            name: r.get(2)?,
                            created_at: r.get(3)?,
                            revoked_at: r.get(4)?,
                            edge: r.get(6)?,
                            expires_at: r.get(7)?,
                            last_used_at: r.get(8)?,
                        },
                        r.get(5)?,
                    ))
                },
            )
            .optional()?)
    }

    /// All tokens (without hashes).
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, CatalogError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, role, name, created_at, revoked_at, edge, expires_at, last_used_at FROM tokens ORDER BY created_at, id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                role: r.get(1)?,
                name: r.get(2)?,
                created_at: r.get(3)?,
                revoked_at: r.get(4)?,
                edge: r.get(5)?,
                expires_at: r.get(6)?,
                last_used_at: r.get(7)?,
            })
        })?;
        let mut out: Vec<TokenInfo> = rows.collect::<Result<_, _>>()?;
        drop(st);
        drop(conn);
        // Uses buffered for the next persist count as recorded.
        let pending = self.pending_touches();
        if !pending.is_empty() {
            for t in &mut out {
                if let Some(at) = pending.get(&t.id) {
                    t.last_used_at = Some(t.last_used_at.map_or(*at, |u| u.max(*at)));
                }
            }
        }
        Ok(out)
    }

    /// Records that token `id` was used at `now` (written at most once a minute per token).
    pub fn touch_token(&self, id: &str, now: i64) -> Result<(), CatalogError> {
        self.conn().execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - 60)",
            params![id, now],
        )?;
        Ok(())
    }

    /// Revokes a token (audited); false when no live token has this id.
    pub fn revoke_token(&self, id: &str, actor: &str) -> Result<bool, CatalogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_secs()],
        )?;
        if n > 0 {
            insert_audit(&tx, actor, "token.revoke", id, None, None)?;
        }
        tx.commit()?;
        self.fast.forget_tokens();
        Ok(n > 0)
    }

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
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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

/// Adds a column to a table made by an older build (no-op when it exists).
fn add_column(conn: &Connection, table: &str, column: &str, ty: &str) -> Result<(), CatalogError> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = st.query_map([], |r| r.get::<_, String>(1))?;
    for n in names {
        if n? == column {
            return Ok(());
        }
    }
    conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
    Ok(())
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
                 CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) THEN 0 ELSE ?3 END,
                 ?4, ?5, ?6,
                 CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) THEN ?3 ELSE 0 END)
             ON CONFLICT (edge, policy_id) DO UPDATE SET
                 hits = MIN(hits + CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) THEN 0 ELSE ?3 END, 9007199254740992),
                 shadow_hits = MIN(shadow_hits + CASE WHEN (SELECT shadow FROM policies WHERE id = ?2) THEN ?3 ELSE 0 END, 9007199254740992),
                 misses = MIN(misses + ?4, 9007199254740992), errors = ?5, updated_at = ?6",
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

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, CatalogError> {
    Ok(serde_json::to_value(v)?)
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

fn insert_audit(
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

fn row_policy(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPolicy> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        (dir, s)
    }

    fn policy(id: &str) -> StoredPolicy {
        StoredPolicy {
            id: id.into(),
            name: "drop debug".into(),
            body: serde_json::json!({"id": id, "name": "drop debug", "log": {"match": [], "keep": "none"}}),
            enabled: true,
            shadow: false,
            origin: "user".into(),
            created_at: 10,
            modified_at: 10,
        }
    }

    #[test]
    fn policy_changes_are_audited_with_before_and_after() {
        let (_d, s) = store();
        s.put_policy(&policy("p1"), "token:abc", "policy.create")
            .unwrap();
        let mut p = policy("p1");
        p.enabled = false;
        let before = s
            .put_policy(&p, "token:abc", "policy.update")
            .unwrap()
            .unwrap();
        assert!(before.enabled);
        assert!(!s.policy("p1").unwrap().unwrap().enabled);
        s.delete_policy("p1", "cli").unwrap();
        assert!(s.policy("p1").unwrap().is_none());
        let log = s.audit_log(0, 100).unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["policy.create", "policy.update", "policy.delete"]);
        assert_eq!(log[1].before.as_ref().unwrap()["enabled"], true);
        assert_eq!(log[1].after.as_ref().unwrap()["enabled"], false);
        assert!(log[2].after.is_none());
        assert_eq!(log[0].actor, "token:abc");
    }

    #[test]
    fn audit_log_is_append_only() {
        let (_d, s) = store();
        s.audit("cli", "x", "y", None, None).unwrap();
        let conn = s.conn();
        let e = conn.execute("DELETE FROM audit", []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
        let e = conn
            .execute("UPDATE audit SET actor = 'z'", [])
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }

    #[test]
    fn sync_status_accumulates_hits() {
        let (_d, s) = store();
        let edge = EdgeInfo {
            instance_id: "e1".into(),
            service_name: "edge".into(),
            last_sync: 5,
            last_hash: "h".into(),
        };
        s.record_sync(&edge, &[("p1".into(), 3, 1, vec![])])
            .unwrap();
        s.record_sync(&edge, &[("p1".into(), 4, 0, vec!["bad".into()])])
            .unwrap();
        let st = s.policy_statuses().unwrap();
        assert_eq!(
            (st[0].hits, st[0].misses, st[0].errors.clone()),
            (7, 1, vec!["bad".to_string()])
        );
        assert_eq!(s.edges().unwrap().len(), 1);
    }

    #[test]
    fn summaries_merge_prune_and_delete() {
        let (_d, s) = store();
        let add = |old: Option<&str>, n: i64| -> Result<String, CatalogError> {
            let prev: i64 = old.map(|o| o.parse().unwrap()).unwrap_or(0);
            Ok((prev + n).to_string())
        };
        s.merge_summary("a", "logs", 100, |o| add(o, 2)).unwrap();
        s.merge_summary("a", "logs", 200, |o| add(o, 3)).unwrap();
        s.merge_summary("b", "logs", 50, |o| add(o, 1)).unwrap();
        let all = s.summaries().unwrap();
        assert_eq!(all[0].2, "5");
        assert_eq!((all[0].3, all[0].4), (100, 200));
        assert_eq!(s.prune_unseen_since(60).unwrap(), 1);
        assert_eq!(s.delete_service("a").unwrap(), 1);
        assert!(s.summaries().unwrap().is_empty());
    }
}
