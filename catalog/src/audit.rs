//! The audit log's integrity and context.
//!
//! **Tamper evidence.** Every record carries `hash = HMAC-SHA256(key, previous record's
//! hash + "\n" + the record's content)`, where the content is the JSON array
//! `[seq, at, actor, client, action, target, before, after]` as stored. The key is the
//! deployment's audit key, `<db>.audit-key` (32 random bytes in hex, mode 0600, made on
//! first use), kept beside the database and never in it. Keyed rather than a bare hash:
//! with a bare hash anyone who can write the file could edit a record and recompute every
//! hash after it; with the key they cannot without also reading the key file.
//! `weir admin audit verify` recomputes the chain and names the first record that does not
//! match: an edited record breaks its own hash, a deleted one leaves a gap in `seq` and
//! breaks the next hash, a reordered one breaks both. Deleting the newest records leaves no
//! gap, so the newest committed record is also written to `<db>.audit-head` (the anchor:
//! seq and hash, moved forward only, never past a record that does not match it) after
//! each record written outside a transaction and once a minute by the control plane; verify
//! fails when the log ends before the anchor or the anchored record differs. What this does
//! not cover: someone who holds the key file can rewrite the whole chain, and someone who
//! can write both the database and the anchor can cut the newest records back to an older
//! record; `weir admin audit export` to storage elsewhere is the defence against both.
//! Pruning old records ([`prune_before`]) writes an `audit.prune` record carrying the hash
//! the remaining chain starts from, so a deletion of the oldest records without one shows.
//!
//! **Client addresses.** Records written while serving a request name its client address
//! ([`scope_client`], [`with_client`]); the CLI and the control plane's own jobs write
//! `local`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::db::{params, Connection, OptionalExtension};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::store::now_secs;
use crate::CatalogError;

thread_local! {
    static CLIENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

tokio::task_local! {
    static TASK_CLIENT: String;
}

/// Runs `f` with `client` as the client address of the audit records it writes.
pub fn with_client<R>(client: &str, f: impl FnOnce() -> R) -> R {
    let old = CLIENT.with(|c| c.replace(Some(client.to_string())));
    let r = f();
    CLIENT.with(|c| *c.borrow_mut() = old);
    r
}

/// Runs the future `f` (a request being served) with `client` as the client address of
/// the audit records written while it is polled.
pub async fn scope_client<F: std::future::Future>(client: String, f: F) -> F::Output {
    TASK_CLIENT.scope(client, f).await
}

/// The client address of the record being written: set by [`with_client`] or
/// [`scope_client`], else `local` (the CLI, the control plane's own jobs).
pub fn current_client() -> String {
    CLIENT
        .with(|c| c.borrow().clone())
        .or_else(|| TASK_CLIENT.try_with(Clone::clone).ok())
        .unwrap_or_else(|| "local".to_string())
}

/// The audit key file of the store at `db`: `<db>.audit-key`.
pub fn key_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".audit-key");
    PathBuf::from(p)
}

/// The anchor file of the store at `db`: `<db>.audit-head`.
pub fn anchor_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".audit-head");
    PathBuf::from(p)
}

/// Keys of the open stores, by the database path SQLite reports for the connection.
static KEYS: Mutex<Option<HashMap<String, [u8; 32]>>> = Mutex::new(None);

fn io_err(path: &Path, source: std::io::Error) -> CatalogError {
    CatalogError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], CatalogError> {
    let parse = |text: &str| -> Result<[u8; 32], CatalogError> {
        let t = text.trim();
        let mut k = [0u8; 32];
        if t.len() != 64 {
            return Err(CatalogError::Limit(format!(
                "{}: an audit key is 64 hex digits, this file holds {} characters",
                path.display(),
                t.len()
            )));
        }
        for (i, b) in k.iter_mut().enumerate() {
            // `get`, not a slice: a multi-byte character is a non-hex character, not a panic.
            let pair = t
                .get(2 * i..2 * i + 2)
                .filter(|p| p.bytes().all(|c| c.is_ascii_hexdigit()));
            *b = pair
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| {
                    CatalogError::Limit(format!(
                        "{}: an audit key is 64 hex digits; found a non-hex character",
                        path.display()
                    ))
                })?;
        }
        Ok(k)
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, e)),
    }
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{hex}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| io_err(path, e))?;
            tracing::info!(key = %path.display(), "audit log: created the audit key (keep it apart from backups of the database)");
            Ok(k)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            parse(&std::fs::read_to_string(path).map_err(|e| io_err(path, e))?)
        }
        Err(e) => Err(io_err(path, e)),
    }
}

const TRIGGERS: &str = "
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

fn add_column(conn: &Connection, column: &str, ty: &str) -> Result<(), CatalogError> {
    Ok(conn.add_column("audit", column, ty)?)
}

/// Lets records be changed (`trigger`: `audit_no_update`) or deleted (`audit_no_delete`)
/// until [`protect`], within the caller's transaction: SQLite drops the trigger (the
/// transaction re-creates it), PostgreSQL's triggers let this transaction through.
fn unprotect(conn: &Connection, trigger: &str) -> Result<(), CatalogError> {
    if conn.is_postgres() {
        conn.query_row(
            "SELECT set_config('weir.audit_maintenance', 'on', true)",
            [],
            |_| Ok(()),
        )?;
    } else {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {trigger};"))?;
    }
    Ok(())
}

/// The log is append-only again (see [`unprotect`]).
fn protect(conn: &Connection) -> Result<(), CatalogError> {
    if conn.is_postgres() {
        conn.query_row(
            "SELECT set_config('weir.audit_maintenance', 'off', true)",
            [],
            |_| Ok(()),
        )?;
    } else {
        conn.execute_batch(TRIGGERS)?;
    }
    Ok(())
}

/// Readies the audit log of the store at `db` on `conn` (called by `Store::open`): the
/// key, the `client` and `hash` columns, and, on the first open by a build with the chain,
/// the chain over the records already there.
pub(crate) fn install(conn: &Connection, db: &Path) -> Result<(), CatalogError> {
    // An in-memory store (tests, fuzzing) chains with a key of its own, kept nowhere.
    let in_memory = db.as_os_str().is_empty() || db == Path::new(":memory:");
    let key = if in_memory {
        // One per process: every in-memory store shares the key slot "".
        static MEMORY_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
        *MEMORY_KEY.get_or_init(|| {
            let mut k = [0u8; 32];
            rand::rng().fill_bytes(&mut k);
            k
        })
    } else {
        load_or_create_key(&key_path(db))?
    };
    let name = conn.path().unwrap_or_default().to_string();
    KEYS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(name, key);
    add_column(conn, "client", "TEXT")?;
    add_column(conn, "hash", "TEXT")?;
    if conn.is_postgres() {
        check_shared_key(conn, &key, db)?;
    }
    let sealed: i64 = conn.query_row(
        "SELECT COUNT(*) FROM audit WHERE hash IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    let unsealed: i64 =
        conn.query_row("SELECT COUNT(*) FROM audit WHERE hash IS NULL", [], |r| {
            r.get(0)
        })?;
    // Only a log that has never been chained is chained here: a record without a hash
    // in a chained log is evidence, left for verify to report.
    if sealed == 0 && unsealed > 0 {
        // (Within the migration's transaction on PostgreSQL.)
        let own = conn.is_autocommit();
        if own {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        let r = (|| -> Result<(), CatalogError> {
            unprotect(conn, "audit_no_update")?;
            let rows = read_rows(conn, 0)?;
            let mut prev = String::new();
            for r in rows {
                let h = mac(&key, &prev, &r.content());
                conn.execute(
                    "UPDATE audit SET hash = ?2 WHERE seq = ?1",
                    params![r.seq, h],
                )?;
                prev = h;
            }
            protect(conn)?;
            Ok(())
        })();
        match r {
            Ok(()) if own => conn.execute_batch("COMMIT")?,
            Ok(()) => {}
            Err(e) => {
                if own {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return Err(e);
            }
        }
        tracing::info!(
            records = unsealed,
            "audit log: chained the records written before the chain existed"
        );
    }
    Ok(())
}

/// On a database several control planes share, every replica must chain with the key the
/// log was written with: one started without a copy of `<storage>.audit-key` would make a
/// key of its own and fork the chain. The newest record's link is checked with this
/// replica's key.
fn check_shared_key(conn: &Connection, key: &[u8; 32], db: &Path) -> Result<(), CatalogError> {
    let newest: Option<i64> = conn.query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0))?;
    let Some(newest) = newest else {
        return Ok(());
    };
    let rows = read_rows(conn, newest - 2)?;
    let (prev, last) = match rows.as_slice() {
        [a, b] => (a.hash.clone().unwrap_or_default(), b),
        [only] if only.seq == 1 => (String::new(), only),
        _ => return Ok(()),
    };
    if last.hash.as_deref() != Some(mac(key, &prev, &last.content()).as_str()) {
        return Err(CatalogError::Key(format!(
            "{}: this control plane's audit key is not the one the shared audit log was \
             written with (record {}); give every replica a copy of the first replica's key file",
            key_path(db).display(),
            last.seq
        )));
    }
    Ok(())
}

pub(crate) fn key_of(conn: &Connection) -> Result<[u8; 32], CatalogError> {
    let name = conn.path().unwrap_or_default();
    KEYS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(name).copied())
        .ok_or_else(|| CatalogError::Limit("audit log: no audit key loaded for this store".into()))
}

fn mac(key: &[u8; 32], prev: &str, content: &str) -> String {
    hmac_sha256_hex(key, &[prev.as_bytes(), b"\n", content.as_bytes()])
}

/// HMAC-SHA256 under `key` of the concatenated `parts`, in lowercase hex (the audit chain's
/// links, the sketch key's fingerprint).
pub(crate) fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for p in parts {
        m.update(p);
    }
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One stored record, as its hash covers it.
#[derive(Debug)]
struct Row {
    seq: i64,
    at: i64,
    actor: String,
    client: Option<String>,
    action: String,
    target: String,
    before: Option<String>,
    after: Option<String>,
    hash: Option<String>,
}

impl Row {
    fn content(&self) -> String {
        serde_json::json!([
            self.seq,
            self.at,
            self.actor,
            self.client,
            self.action,
            self.target,
            self.before,
            self.after
        ])
        .to_string()
    }
}

fn read_rows(conn: &Connection, since: i64) -> Result<Vec<Row>, CatalogError> {
    let mut st = conn.prepare(
        "SELECT seq, at, actor, client, action, target, before, after, hash FROM audit WHERE seq > ?1 ORDER BY seq",
    )?;
    let rows = st.query_map([since], |r| {
        Ok(Row {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            client: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            before: r.get(6)?,
            after: r.get(7)?,
            hash: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Appends one record to the chain (called by the store with its connection locked, in
/// or out of a transaction).
pub(crate) fn append(
    conn: &Connection,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), CatalogError> {
    let key = key_of(conn)?;
    let last: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (prev_seq, prev) = match &last {
        Some((s, h)) => (*s, h.clone().unwrap_or_default()),
        None => (0, String::new()),
    };
    let row = Row {
        seq: prev_seq + 1,
        at: now_secs(),
        actor: actor.to_string(),
        client: Some(current_client()),
        action: action.to_string(),
        target: target.to_string(),
        before,
        after,
        hash: None,
    };
    let h = mac(&key, &prev, &row.content());
    conn.execute(
        "INSERT INTO audit (seq, at, actor, client, action, target, before, after, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![row.seq, row.at, row.actor, row.client, row.action, row.target, row.before, row.after, h],
    )?;
    Ok(())
}

fn read_anchor(db: &Path) -> Result<Option<(i64, String)>, String> {
    let path = anchor_path(db);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut it = text.split_whitespace();
    match (it.next().and_then(|s| s.parse().ok()), it.next()) {
        (Some(seq), Some(h)) => Ok(Some((seq, h.to_string()))),
        _ => Err(format!(
            "{}: not an audit anchor (\"<seq> <hash>\")",
            path.display()
        )),
    }
}

/// Moves the anchor forward to (seq, hash), unless it is already there or beyond, or the
/// record it names no longer matches (then it stays, as evidence).
fn advance_anchor(conn: &Connection, db: &Path, seq: i64, hash: &str) {
    let current = match read_anchor(db) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "audit log: anchor unreadable; not moved");
            return;
        }
    };
    if let Some((aseq, ahash)) = &current {
        if *aseq >= seq {
            return;
        }
        let at: Option<Option<String>> = conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [aseq], |r| {
                r.get(0)
            })
            .optional()
            .unwrap_or(None);
        if at.flatten().as_deref() != Some(ahash.as_str()) {
            tracing::error!(
                anchored = aseq,
                "audit log: the anchored record is missing or changed; anchor not moved (run `weir admin audit verify`)"
            );
            return;
        }
    }
    let path = anchor_path(db);
    let tmp = path.with_extension("audit-head.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let r = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(format!("{seq} {hash}\n").as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = r {
        tracing::warn!(error = %e, file = %path.display(), "audit log: cannot write the anchor");
    }
}

/// Anchors the newest committed record (the control plane calls this once a minute).
pub(crate) fn anchor_newest(conn: &Connection, db: &Path) -> Result<(), CatalogError> {
    if db.as_os_str().is_empty() {
        return Ok(());
    }
    let last: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((seq, Some(h))) = last {
        advance_anchor(conn, db, seq, &h);
    }
    Ok(())
}

/// What verify found in an intact log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// Records checked.
    pub records: usize,
    /// First and last seq (0 when empty).
    pub first_seq: i64,
    /// Last seq.
    pub last_seq: i64,
    /// The seq the anchor file names (None when there is none yet).
    pub anchored_seq: Option<i64>,
}

/// Recomputes the chain: Ok with what was checked, or Err naming the first record that
/// does not hold and why.
pub(crate) fn verify(
    conn: &Connection,
    db: &Path,
) -> Result<Result<Verified, String>, CatalogError> {
    let key = key_of(conn)?;
    let rows = read_rows(conn, 0)?;
    let anchor = match read_anchor(db) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let Some(first) = rows.first() else {
        if let Some((aseq, _)) = anchor {
            return Ok(Err(format!(
                "the log is empty but the anchor names record {aseq}: records were deleted"
            )));
        }
        return Ok(Ok(Verified {
            records: 0,
            first_seq: 0,
            last_seq: 0,
            anchored_seq: None,
        }));
    };
    let mut prev = if first.seq == 1 {
        String::new()
    } else {
        // Records before the first were pruned: an `audit.prune` record says from what.
        let base = rows.iter().find_map(|r| {
            (r.action == "audit.prune")
                .then_some(r.after.as_deref())
                .flatten()
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                .filter(|a| a["before_seq"].as_i64() == Some(first.seq - 1))
                .and_then(|a| a["base_hash"].as_str().map(str::to_string))
        });
        match base {
            Some(b) => b,
            None => {
                return Ok(Err(format!(
                    "record {}: records 1 to {} are missing and no audit.prune record accounts for them",
                    first.seq,
                    first.seq - 1
                )))
            }
        }
    };
    let mut expect_seq = first.seq;
    for r in &rows {
        if r.seq != expect_seq {
            return Ok(Err(format!(
                "record {}: expected record {expect_seq} next: records were deleted or reordered",
                r.seq
            )));
        }
        let want = mac(&key, &prev, &r.content());
        match &r.hash {
            Some(h) if *h == want => {}
            Some(_) => {
                return Ok(Err(format!(
                    "record {}: its hash does not match its content and the record before it: it was edited, or records before it were removed or reordered",
                    r.seq
                )))
            }
            None => {
                return Ok(Err(format!(
                    "record {}: has no hash: it was inserted outside the control plane",
                    r.seq
                )))
            }
        }
        prev = want;
        expect_seq += 1;
    }
    let last = expect_seq - 1;
    if let Some((aseq, ahash)) = &anchor {
        if *aseq > last {
            return Ok(Err(format!(
                "the log ends at record {last} but the anchor ({}) names record {aseq}: the newest records were deleted",
                anchor_path(db).display()
            )));
        }
        let at = rows.iter().find(|r| r.seq == *aseq);
        if at.and_then(|r| r.hash.as_deref()) != Some(ahash.as_str()) {
            return Ok(Err(format!(
                "record {aseq}: differs from the anchor ({}): the log was rewritten",
                anchor_path(db).display()
            )));
        }
    }
    Ok(Ok(Verified {
        records: rows.len(),
        first_seq: first.seq,
        last_seq: last,
        anchored_seq: anchor.map(|a| a.0),
    }))
}

/// Deletes the records older than `cutoff` (Unix seconds), keeping the chain verifiable:
/// an `audit.prune` record (actor `actor`) carries the hash the remaining records chain
/// from. Returns how many were deleted. For the retention job.
pub(crate) fn prune_before(
    conn: &Connection,
    cutoff: i64,
    actor: &str,
) -> Result<usize, CatalogError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let r = (|| -> Result<usize, CatalogError> {
        // Never the newest record: the chain needs a record to continue from.
        let k: Option<(i64, Option<String>)> = conn
            .query_row(
                "SELECT seq, hash FROM audit WHERE at < ?1 AND seq < (SELECT MAX(seq) FROM audit) ORDER BY seq DESC LIMIT 1",
                [cutoff],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((k, Some(base))) = k else {
            return Ok(0);
        };
        unprotect(conn, "audit_no_delete")?;
        let n = conn.execute("DELETE FROM audit WHERE seq <= ?1", [k])?;
        protect(conn)?;
        append(
            conn,
            actor,
            "audit.prune",
            "audit",
            None,
            Some(serde_json::json!({"before_seq": k, "base_hash": base, "deleted": n}).to_string()),
        )?;
        Ok(n)
    })();
    match r {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Which audit records to list (`GET /api/v1/audit`, the UI's audit page).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// After this seq (exclusive).
    pub since: i64,
    /// At most this many.
    pub limit: i64,
    /// Actor equal to this.
    pub actor: Option<String>,
    /// Action starting with this.
    pub action: Option<String>,
    /// Client address equal to this (or listed in an edge activity record's clients).
    pub client: Option<String>,
    /// At or after this Unix second.
    pub from: Option<i64>,
    /// Before this Unix second.
    pub to: Option<i64>,
}

impl crate::store::Store {
    /// The audit records matching `f`, oldest first.
    pub fn search_audit(
        &self,
        f: &AuditFilter,
    ) -> Result<Vec<crate::store::AuditEntry>, CatalogError> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT seq, at, actor, action, target, before, after, client, hash FROM audit
             WHERE seq > ?1
               AND (CAST(?2 AS TEXT) IS NULL OR actor = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR substr(action, 1, length(?3)) = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR client = ?4 OR (',' || client || ',') LIKE ('%,' || ?4 || ',%'))
               AND (CAST(?5 AS BIGINT) IS NULL OR at >= ?5)
               AND (CAST(?6 AS BIGINT) IS NULL OR at < ?6)
             ORDER BY seq LIMIT ?7",
        )?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        let rows = st.query_map(
            params![f.since, f.actor, f.action, f.client, f.from, f.to, f.limit],
            |r| {
                Ok(crate::store::AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    before: parse(r.get(5)?),
                    after: parse(r.get(6)?),
                    client: r.get(7)?,
                    hash: r.get(8)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recomputes the audit chain (see the module doc): Ok(Ok) when intact, Ok(Err(why))
    /// naming the first record that does not hold.
    pub fn verify_audit(&self) -> Result<Result<Verified, String>, CatalogError> {
        let conn = self.lock();
        verify(&conn, self.path())
    }

    /// Anchors the newest committed audit record (`<db>.audit-head`).
    pub fn anchor_audit(&self) -> Result<(), CatalogError> {
        let conn = self.lock();
        anchor_newest(&conn, self.path())
    }

    /// Deletes the audit records older than `cutoff` (Unix seconds), recording the pruning
    /// in the chain (an `audit.prune` record by `actor`) so verify still passes. The one
    /// way to remove audit records that keeps the log verifiable.
    pub fn prune_audit(&self, cutoff: i64, actor: &str) -> Result<usize, CatalogError> {
        let conn = self.lock();
        prune_before(&conn, cutoff, actor)
    }

    /// Writes the audit log from `since` (exclusive seq) as JSON lines, oldest first, each
    /// record with its hash. Returns how many were written.
    pub fn export_audit(
        &self,
        since: i64,
        out: &mut dyn std::io::Write,
    ) -> Result<usize, CatalogError> {
        let mut n = 0;
        let mut from = since;
        loop {
            let page = self.audit_log(from, 5000)?;
            let Some(last) = page.last() else { break };
            from = last.seq;
            for e in &page {
                serde_json::to_writer(&mut *out, e)?;
                out.write_all(b"\n").map_err(|e| CatalogError::Io {
                    path: "audit export".into(),
                    source: e,
                })?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_store_chains_without_files() {
        let cwd = std::env::current_dir().unwrap();
        let store = crate::store::Store::open(Path::new(":memory:")).unwrap();
        store.audit("cli", "x", "y", None, None).unwrap();
        let other = crate::store::Store::open(Path::new(":memory:")).unwrap();
        other.audit("cli", "x", "z", None, None).unwrap();
        store.audit("cli", "x", "z", None, None).unwrap();
        assert_eq!(store.verify_audit().unwrap().unwrap().records, 2);
        assert_eq!(other.verify_audit().unwrap().unwrap().records, 1);
        assert!(!cwd.join(":memory:.audit-key").exists());
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
