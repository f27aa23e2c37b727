//! The control plane's store: the catalog (metadata summaries only), policies, edge status,
//! API tokens (hashed), users and the append-only audit log, in one embedded SQLite file
//! (the default) or in a PostgreSQL database several control planes share (see `crate::db`).
//!
//! Here: the schema, the row types, opening (key, migration of older files) and the
//! connection lock. The operations on each part are in `summaries`, `policies` (with
//! edges, sources and dismissed findings), `tokens` and `audit`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::Connection;
use serde::{Deserialize, Serialize};

use crate::CatalogError;

mod audit;
mod policies;
mod summaries;
mod tokens;

pub(crate) use audit::audit_in;
pub(crate) use policies::record_sync_in;

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
    let Some(conn) = conn.sqlite() else {
        // PostgreSQL: VACUUM has made the space of erased rows reusable; what the
        // server's write-ahead log and backups hold is the database operator's
        // (docs/SECURITY.md).
        return Ok(());
    };
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

impl Store {
    /// Opens (creating if needed) the store in the PostgreSQL database at `url`; `files`
    /// names the key files (`<files>.audit-key`, `<files>.sketch-key`, ...), which every
    /// replica on the same database must share. Tables made by an older build are
    /// migrated, by one replica at a time.
    pub fn open_postgres(url: &str, files: &Path) -> Result<Store, CatalogError> {
        Store::open_postgres_tls(url, files, None)
    }

    /// As [`Store::open_postgres`], over TLS with `tls` (rustls; the server's certificate
    /// and the URL's host are checked; plain text is refused) when given.
    pub fn open_postgres_tls(
        url: &str,
        files: &Path,
        tls: Option<std::sync::Arc<weir_tls::rustls::ClientConfig>>,
    ) -> Result<Store, CatalogError> {
        let conn = crate::db::pg::PgConn::connect(url, &files.display().to_string(), tls)
            .map_err(CatalogError::Postgres)?;
        Store::finish_open(
            Connection::Pg(Box::new(conn)),
            files,
            crate::at_rest::Key::random(),
            crate::at_rest::KeyOrigin::Ephemeral,
        )
    }

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
            let conn = rusqlite::Connection::open_in_memory()?;
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
        let connect = |key: &crate::at_rest::Key| -> Result<rusqlite::Connection, CatalogError> {
            let conn = rusqlite::Connection::open(path).map_err(|source| CatalogError::Open {
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
        conn: impl Into<Connection>,
        path: &Path,
        key: crate::at_rest::Key,
        key_origin: crate::at_rest::KeyOrigin,
    ) -> Result<Store, CatalogError> {
        let conn: Connection = conn.into();
        if let Some(c) = conn.sqlite() {
            // Erased rows leave no trace: SQLite zeroes deleted cells and freed pages
            // (secure_delete), temporary files of VACUUM and sorting stay in memory, and
            // every erasure ends in `scrub` (VACUUM, then the -wal file truncated).
            c.pragma_update(None, "secure_delete", "ON")?;
            c.pragma_update(None, "temp_store", "MEMORY")?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
        }
        let pg = conn.is_postgres();
        if pg {
            // One replica migrates at a time (the others wait for the write lock).
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        let migrated = (|| -> Result<(), CatalogError> {
            conn.execute_batch(SCHEMA)?;
            add_column(&conn, "tokens", "edge", "TEXT")?;
            add_column(&conn, "tokens", "expires_at", "INTEGER")?;
            add_column(&conn, "tokens", "last_used_at", "INTEGER")?;
            crate::audit::install(&conn, path)?;
            crate::users::install(&conn)?;
            if pg {
                crate::sealed::check_sketch_key(&conn, path)?;
                crate::sealed::seal_clear_totp(&conn)?;
            }
            add_column(
                &conn,
                "policy_status",
                "shadow_hits",
                "INTEGER NOT NULL DEFAULT 0",
            )?;
            add_column(&conn, "policies", "canonical", "BLOB")?;
            add_column(&conn, "policies", "hash", "TEXT")?;
            if let Connection::Pg(c) = &conn {
                c.install_native()?;
            }
            crate::policy_forms::backfill(&conn)?;
            Ok(())
        })();
        if pg {
            match migrated {
                Ok(()) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
        } else {
            migrated?;
        }
        let fast = crate::staging::Fast::default();
        fast.shared.store(pg, std::sync::atomic::Ordering::Relaxed);
        Ok(Store {
            conn: Mutex::new(conn),
            fast,
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
}

/// Adds a column to a table made by an older build (no-op when it exists).
fn add_column(conn: &Connection, table: &str, column: &str, ty: &str) -> Result<(), CatalogError> {
    Ok(conn.add_column(table, column, ty)?)
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, CatalogError> {
    Ok(serde_json::to_value(v)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        (dir, s)
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
}
