//! The catalog database at rest: SQLCipher (AES-256 in CBC mode per 4 KiB page, each page
//! authenticated with HMAC-SHA512, a fresh IV per page write), with a raw 256-bit key.
//!
//! The key comes from, in order:
//! 1. the environment variable `WEIR_CATALOG_KEY` (64 hex digits);
//! 2. a key file: `control_plane.encryption.key_file` (or the `catalog` exporter's), or
//!    `--key-file` of `weir admin` / `weir catalog`, else the environment variable
//!    `WEIR_CATALOG_KEY_FILE`, else `<database>.key` beside the database.
//!
//! When the file does not exist and the database is new (or a plaintext database of an
//! older version is being encrypted), a random key is written to it (mode 0600, never
//! replacing an existing file) and a log line says where. An encrypted database whose key
//! is missing is refused with a message naming where the key was looked for.
//!
//! Every file of the store is owner-only (0600): the database is created 0600 before
//! SQLite opens it and SQLite gives its -wal and -shm files the database's mode; files of
//! older versions are narrowed to 0600 when opened.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
pub use weir_tls::at_rest::{Key, KeyOrigin};

use crate::CatalogError;

/// Environment variable holding the database key (64 hex digits).
pub const KEY_ENV: &str = "WEIR_CATALOG_KEY";
/// Environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "WEIR_CATALOG_KEY_FILE";

/// SQLCipher's page size and per-page reserve (IV 16 bytes + HMAC-SHA512 64 bytes) with
/// its version 4 defaults, which this build uses.
pub const PAGE_SIZE: usize = 4096;
const RESERVE: usize = 80;
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// `encryption:` of the `control_plane` extension and the `catalog` exporter.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// The key file (64 hex digits), created (mode 0600) when it does not exist and the
    /// database is new. Relative to the working directory, like `storage`. Default:
    /// `$WEIR_CATALOG_KEY_FILE`, else `<storage>.key`. `WEIR_CATALOG_KEY` overrides it.
    #[serde(default)]
    pub key_file: Option<String>,
}

/// The default key file of the database `db`: `<db>.key`.
pub fn default_key_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

/// The key file used for `db`: `explicit`, else `$WEIR_CATALOG_KEY_FILE`, else `<db>.key`.
pub fn key_path(db: &Path, explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(KEY_FILE_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default_key_path(db),
    }
}

/// Whether the file starts with SQLite's plaintext header (an unencrypted database).
pub fn is_plaintext_database(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == SQLITE_HEADER
}

/// The SQLCipher `PRAGMA key` value for a raw key (used as the AES key, no derivation).
fn key_literal(key: &Key) -> String {
    format!("\"x'{}'\"", key.to_hex())
}

/// Applies the key to a fresh connection and checks that it opens the database.
pub fn apply_key(conn: &Connection, key: &Key) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA key = {};", key_literal(key)))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

/// Which SQLite files belong to the database `db`.
pub fn store_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .collect()
}

/// Creates `path` empty and owner-only when it does not exist.
pub fn precreate_private(path: &Path) -> Result<(), CatalogError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| CatalogError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(())
}

/// The key of the database at `db`, created when the database is new or plaintext.
/// Returns the key, where it came from, and where the key file is.
pub fn key_for(
    db: &Path,
    explicit_file: Option<&Path>,
) -> Result<(Key, KeyOrigin, PathBuf), CatalogError> {
    let file = key_path(db, explicit_file);
    let fresh = std::fs::metadata(db).map(|m| m.len() == 0).unwrap_or(true);
    let create = fresh || is_plaintext_database(db);
    let found =
        weir_tls::at_rest::resolve_key(KEY_ENV, &file, create).map_err(CatalogError::Key)?;
    match found {
        Some((k, o)) => Ok((k, o, file)),
        None => Err(CatalogError::Key(format!(
            "{} is encrypted and its key was not found: set {KEY_ENV} (64 hex digits), or \
             provide the key file {} (control_plane.encryption.key_file, --key-file or \
             {KEY_FILE_ENV} to look elsewhere)",
            db.display(),
            file.display()
        ))),
    }
}

/// Copies the open database of `conn` into a new encrypted file `to` (owner-only) under
/// `key`, as one consistent snapshot (one read transaction), with `sqlcipher_export`.
pub fn export_encrypted(conn: &Connection, to: &Path, key: &Key) -> Result<(), CatalogError> {
    if to.exists() {
        return Err(CatalogError::Io {
            path: to.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists already"),
        });
    }
    precreate_private(to)?;
    let path = to.to_str().ok_or_else(|| CatalogError::Io {
        path: to.display().to_string(),
        source: std::io::Error::other("not a UTF-8 path"),
    })?;
    let run = || -> rusqlite::Result<()> {
        conn.execute(
            "ATTACH DATABASE ?1 AS weir_export KEY ?2",
            [path.to_string(), format!("x'{}'", key.to_hex())],
        )?;
        let exported = conn
            .execute_batch("BEGIN; SELECT sqlcipher_export('weir_export'); COMMIT;")
            .inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            });
        let detached = conn.execute_batch("DETACH DATABASE weir_export");
        exported.and(detached)
    };
    if let Err(e) = run() {
        let _ = std::fs::remove_file(to);
        return Err(e.into());
    }
    let f = std::fs::File::open(to).map_err(|source| CatalogError::Io {
        path: to.display().to_string(),
        source,
    })?;
    f.sync_all().map_err(|source| CatalogError::Io {
        path: to.display().to_string(),
        source,
    })?;
    Ok(())
}

/// Encrypts a plaintext database of an older version in place under `key`: a checkpoint,
/// an encrypted copy beside it, then the copy renamed over it and the old -wal and -shm
/// files removed. The control plane does this by itself when it opens such a file; it
/// must not be open in any other process meanwhile.
pub fn encrypt_plaintext(db: &Path, key: &Key) -> Result<(), CatalogError> {
    let tmp = sibling(db, ".encrypting");
    let _ = std::fs::remove_file(&tmp);
    {
        let conn = Connection::open(db).map_err(|source| CatalogError::Open {
            path: db.display().to_string(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        export_encrypted(&conn, &tmp, key)?;
    }
    replace_database(&tmp, db)
}

/// Renames `from` over the database `db` and removes `db`'s old -wal and -shm files.
pub fn replace_database(from: &Path, db: &Path) -> Result<(), CatalogError> {
    for f in store_files(db).iter().skip(1) {
        let _ = std::fs::remove_file(f);
    }
    std::fs::rename(from, db).map_err(|source| CatalogError::Io {
        path: db.display().to_string(),
        source,
    })?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Key rotation: re-encrypts the database `db` (the control plane stopped) under a new
/// random key. The new key is written to `<key file>.new` first, the database copied
/// under it and renamed into place, then the key file replaced; a crash in between leaves
/// the `.new` file, which [`crate::store::Store::open`] tries (and completes the rotation)
/// when the old key no longer opens the database. With the key in `WEIR_CATALOG_KEY`, the
/// new key is returned and nothing is written but the database: set the variable to it.
pub fn rekey(db: &Path, explicit_file: Option<&Path>) -> Result<(Key, KeyOrigin), CatalogError> {
    if !db.exists() || is_plaintext_database(db) {
        return Err(CatalogError::Key(format!(
            "{}: not an encrypted catalog database",
            db.display()
        )));
    }
    refuse_if_in_use(db, "rotating the key")?;
    let (old, origin, file) = key_for(db, explicit_file)?;
    let new = Key::random();
    let staged = sibling(&file, ".new");
    if matches!(origin, KeyOrigin::File(_)) {
        let _ = std::fs::remove_file(&staged);
        weir_tls::at_rest::create_key_file(&staged, &new).map_err(CatalogError::Key)?;
    }
    let tmp = sibling(db, ".rekeying");
    let _ = std::fs::remove_file(&tmp);
    {
        let conn = Connection::open(db).map_err(|source| CatalogError::Open {
            path: db.display().to_string(),
            source,
        })?;
        apply_key(&conn, &old)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        export_encrypted(&conn, &tmp, &new)?;
    }
    replace_database(&tmp, db)?;
    if matches!(origin, KeyOrigin::File(_)) {
        std::fs::rename(&staged, &file).map_err(|source| CatalogError::Io {
            path: file.display().to_string(),
            source,
        })?;
    }
    Ok((new, origin))
}

/// Completes a rotation interrupted after the database was replaced: when `<key file>.new`
/// opens the database, it becomes the key file. Returns the key when it did.
pub fn finish_interrupted_rekey(db: &Path, file: &Path) -> Option<Key> {
    let staged = sibling(file, ".new");
    let key = weir_tls::at_rest::load_key_file(&staged).ok()??;
    let conn = Connection::open(db).ok()?;
    apply_key(&conn, &key).ok()?;
    drop(conn);
    std::fs::rename(&staged, file).ok()?;
    tracing::warn!(key_file = %file.display(), "completed an interrupted key rotation (the database was under the new key already)");
    Some(key)
}

/// The plaintext of an encrypted SQLite file - the database or its -wal file - page by
/// page, decrypted with `key` (AES-256-CBC, the IV stored in each page's reserve), without
/// SQLite: every byte that any page or WAL frame holds, live or not. For audits and tests
/// that prove nothing erased remains in the files. Pages that are not encrypted under the
/// key come out as noise.
pub fn decrypt_file_pages(path: &Path, key: &Key) -> Result<Vec<u8>, CatalogError> {
    let bytes = std::fs::read(path).map_err(|source| CatalogError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::with_capacity(bytes.len());
    let wal = path.to_string_lossy().ends_with("-wal");
    if wal {
        // 32-byte header, then frames: 24-byte header (page number first) + one page.
        let mut at = 32;
        while at + 24 + PAGE_SIZE <= bytes.len() {
            let pgno = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            out.extend(decrypt_page(
                &bytes[at + 24..at + 24 + PAGE_SIZE],
                pgno == 1,
                key,
            ));
            at += 24 + PAGE_SIZE;
        }
    } else {
        for (i, page) in bytes.chunks_exact(PAGE_SIZE).enumerate() {
            out.extend(decrypt_page(page, i == 0, key));
        }
    }
    Ok(out)
}

fn decrypt_page(page: &[u8], first: bool, key: &Key) -> Vec<u8> {
    use aes::cipher::{BlockDecrypt, KeyInit};
    let cipher = aes::Aes256::new(aes::cipher::generic_array::GenericArray::from_slice(
        key.bytes(),
    ));
    let start = if first { 16 } else { 0 };
    let end = PAGE_SIZE - RESERVE;
    let mut prev = [0u8; 16];
    prev.copy_from_slice(&page[end..end + 16]);
    let mut out = Vec::with_capacity(end - start);
    for block in page[start..end].chunks_exact(16) {
        let mut b = aes::cipher::generic_array::GenericArray::clone_from_slice(block);
        cipher.decrypt_block(&mut b);
        for (x, p) in b.iter_mut().zip(prev.iter()) {
            *x ^= p;
        }
        out.extend_from_slice(&b);
        prev.copy_from_slice(block);
    }
    out
}

/// Checks that `path` is a catalog database that opens with `key` and passes SQLite's
/// integrity check; returns its tables' row counts.
pub fn verify_database(path: &Path, key: &Key) -> Result<Vec<(String, i64)>, CatalogError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| CatalogError::Open {
            path: path.display().to_string(),
            source,
        })?;
    apply_key(&conn, key).map_err(|_| {
        CatalogError::Key(format!(
            "{} does not open with the key (a backup is encrypted with the key of the \
             database it was taken from)",
            path.display()
        ))
    })?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(CatalogError::Key(format!(
            "{}: integrity check failed: {check}",
            path.display()
        )));
    }
    let mut st = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if !names.iter().any(|n| n == "summaries") {
        return Err(CatalogError::Key(format!(
            "{}: not a Weir catalog database (no summaries table)",
            path.display()
        )));
    }
    let mut out = Vec::new();
    for n in names {
        let c: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0))?;
        out.push((n, c));
    }
    Ok(out)
}

/// Online backup of the database `db` into the new file `to` (owner-only), encrypted
/// under the database's key: one consistent snapshot taken on a connection of its own
/// (writers go on meanwhile; WAL mode), then verified.
pub fn backup(db: &Path, key: &Key, to: &Path) -> Result<Vec<(String, i64)>, CatalogError> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|source| CatalogError::Open {
            path: db.display().to_string(),
            source,
        })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    apply_key(&conn, key)?;
    export_encrypted(&conn, to, key)?;
    drop(conn);
    verify_database(to, key)
}

/// Replaces the database `db` with the backup `from` (the control plane stopped): the
/// backup is verified with `key` (the key of the database it came from), copied beside
/// `db` owner-only and renamed into place; the old -wal and -shm files go. Refuses to
/// replace an existing database unless `force`.
pub fn restore(
    db: &Path,
    key: &Key,
    from: &Path,
    force: bool,
) -> Result<Vec<(String, i64)>, CatalogError> {
    let exists = std::fs::metadata(db).map(|m| m.len() > 0).unwrap_or(false);
    if exists && !force {
        return Err(CatalogError::Key(format!(
            "{} exists: stop the control plane and add --force to replace it",
            db.display()
        )));
    }
    if exists {
        refuse_if_in_use(db, "restoring over it")?;
    }
    let counts = verify_database(from, key)?;
    let tmp = sibling(db, ".restoring");
    let _ = std::fs::remove_file(&tmp);
    {
        // Read-write: a read-only connection could not write the attached copy.
        let conn = Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|source| CatalogError::Open {
            path: from.display().to_string(),
            source,
        })?;
        apply_key(&conn, key)?;
        export_encrypted(&conn, &tmp, key)?;
    }
    replace_database(&tmp, db)?;
    Ok(counts)
}

/// The id of another process that has the database `db` (or its -wal) open, found in
/// `/proc/*/fd` (Linux; elsewhere `None`). Rotation and restore replace the file: a
/// control plane still running would go on writing to the replaced one.
pub fn used_by_another_process(db: &Path) -> Option<u32> {
    let targets: Vec<PathBuf> = store_files(db)
        .iter()
        .take(2)
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    if targets.is_empty() {
        return None;
    }
    let me = std::process::id();
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path()) {
                if targets.contains(&t) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

fn refuse_if_in_use(db: &Path, what: &str) -> Result<(), CatalogError> {
    match used_by_another_process(db) {
        Some(pid) => Err(CatalogError::Key(format!(
            "{} is open in process {pid} (a running control plane?): stop it before {what}",
            db.display()
        ))),
        None => Ok(()),
    }
}
