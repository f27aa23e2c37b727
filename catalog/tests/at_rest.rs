//! The catalog database at rest: encrypted (SQLCipher, AES-256) under a key kept apart from
//! it in an owner-only file; every file owner-only; a plaintext database of an older
//! version encrypted when opened; a missing or wrong key refused with a clear message; key
//! rotation, including one interrupted half way; backup and restore.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use weir_catalog::at_rest::{self, decrypt_file_pages, Key, KeyOrigin};
use weir_catalog::auth::{create_token, Role};
use weir_catalog::store::Store;

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn files_of(db: &Path) -> Vec<std::path::PathBuf> {
    at_rest::store_files(db)
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

/// Raw bytes of the database and its -wal hold `needle`?
fn raw_holds(db: &Path, needle: &str) -> bool {
    files_of(db)
        .iter()
        .any(|f| contains(&std::fs::read(f).unwrap(), needle))
}

/// The decrypted pages of the database and its -wal hold `needle`?
fn decrypted_holds(db: &Path, key: &Key, needle: &str) -> bool {
    files_of(db)
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with("-shm"))
        .any(|f| contains(&decrypt_file_pages(f, key).unwrap(), needle))
}

#[test]
fn a_new_store_is_encrypted_under_a_new_owner_only_key_and_every_file_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let store = Store::open(&db).unwrap();
    let key_file = dir.path().join("c.db.key");
    assert_eq!(store.key_origin(), &KeyOrigin::Created(key_file.clone()));
    create_token(&store, Role::Viewer, "OwlMarkerTokenName", "test").unwrap();
    // Written: found in the decrypted pages, absent from the raw bytes.
    assert!(decrypted_holds(&db, store.key(), "OwlMarkerTokenName"));
    assert!(!raw_holds(&db, "OwlMarkerTokenName"));
    assert!(!raw_holds(&db, "SQLite format 3"));
    assert!(!at_rest::is_plaintext_database(&db));
    // With another key the pages are noise.
    assert!(!decrypted_holds(&db, &Key::random(), "OwlMarkerTokenName"));
    let mut all = files_of(&db);
    all.push(key_file.clone());
    assert!(all.len() >= 4, "{all:?}");
    for f in &all {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(
        at_rest::key_path(&db, None),
        key_file,
        "default key file beside the database"
    );
    // Reopened: the key file is found and used.
    drop(store);
    let again = Store::open(&db).unwrap();
    assert_eq!(again.key_origin(), &KeyOrigin::File(key_file));
    assert_eq!(again.tokens().unwrap()[0].name, "OwlMarkerTokenName");
}

#[test]
fn a_plaintext_database_of_an_older_version_is_encrypted_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    {
        // What an older version left: plaintext, WAL mode, 0644, rows in the WAL.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE summaries (service TEXT NOT NULL, signal TEXT NOT NULL, body TEXT NOT NULL,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (service, signal));
             INSERT INTO summaries VALUES ('legacy-svc-HeronMarker', 'logs', '{}', 1, 2);",
        )
        .unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(raw_holds(&db, "HeronMarker"));
        // Left open by nobody: the connection closes here.
    }
    assert!(at_rest::is_plaintext_database(&db));
    let store = Store::open(&db).unwrap();
    assert!(matches!(store.key_origin(), KeyOrigin::Created(_)));
    let rows = store.summaries().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "legacy-svc-HeronMarker");
    assert!(!at_rest::is_plaintext_database(&db));
    assert!(
        !raw_holds(&db, "HeronMarker"),
        "plaintext left after migration"
    );
    assert!(decrypted_holds(&db, store.key(), "HeronMarker"));
    for f in files_of(&db) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    // No stray copy left in the directory.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("old.db")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("encrypting")), "{names:?}");
}

#[test]
fn a_missing_or_wrong_key_is_refused_naming_where_it_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let key_file = dir.path().join("c.db.key");
    drop(Store::open(&db).unwrap());
    let good = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let e = Store::open(&db).err().unwrap().to_string();
    assert!(e.contains("key was not found"), "{e}");
    assert!(e.contains(&key_file.display().to_string()), "{e}");
    assert!(e.contains("WEIR_CATALOG_KEY"), "{e}");
    assert!(
        !key_file.exists(),
        "a new key must not be made for an existing database"
    );
    std::fs::write(&key_file, format!("{}\n", Key::random().to_hex())).unwrap();
    let e = Store::open(&db).err().unwrap().to_string();
    assert!(e.contains("cannot be decrypted"), "{e}");
    std::fs::write(&key_file, "0123").unwrap();
    let e = Store::open(&db).err().unwrap().to_string();
    assert!(e.contains("64 hex digits"), "{e}");
    std::fs::write(&key_file, good).unwrap();
    Store::open(&db).unwrap();
    // A key file named explicitly is used instead of the default.
    let other = dir.path().join("keys").join("elsewhere.key");
    let db2 = dir.path().join("d.db");
    let s = Store::open_with_key_file(&db2, Some(&other)).unwrap();
    assert_eq!(s.key_origin(), &KeyOrigin::Created(other.clone()));
    assert!(!dir.path().join("d.db.key").exists());
    drop(s);
    assert!(
        Store::open(&db2).is_err(),
        "the default key file is not the one"
    );
    Store::open_with_key_file(&db2, Some(&other)).unwrap();
}

#[test]
fn rekey_rotates_the_key_and_an_interrupted_rotation_completes_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let key_file = dir.path().join("c.db.key");
    let store = Store::open(&db).unwrap();
    create_token(&store, Role::Admin, "KestrelMarker", "test").unwrap();
    let old = store.key().clone();
    drop(store);
    let (new, origin) = at_rest::rekey(&db, None).unwrap();
    assert_eq!(origin, KeyOrigin::File(key_file.clone()));
    assert_ne!(new, old);
    assert_eq!(
        weir_tls::at_rest::load_key_file(&key_file)
            .unwrap()
            .unwrap(),
        new
    );
    assert_eq!(mode(&key_file), 0o600);
    assert!(!dir.path().join("c.db.key.new").exists());
    assert!(decrypted_holds(&db, &new, "KestrelMarker"));
    assert!(!decrypted_holds(&db, &old, "KestrelMarker"));
    let s = Store::open(&db).unwrap();
    assert_eq!(s.tokens().unwrap()[0].name, "KestrelMarker");
    drop(s);

    // Interrupted after the database was rewritten, before the key file was replaced: the
    // old key is in the key file, the new one in `.new`.
    std::fs::copy(&key_file, dir.path().join("c.db.key.keep")).unwrap();
    let (newer, _) = at_rest::rekey(&db, None).unwrap();
    std::fs::rename(&key_file, dir.path().join("c.db.key.new")).unwrap();
    std::fs::rename(dir.path().join("c.db.key.keep"), &key_file).unwrap();
    let s = Store::open(&db).unwrap();
    assert_eq!(s.key(), &newer);
    assert_eq!(
        weir_tls::at_rest::load_key_file(&key_file)
            .unwrap()
            .unwrap(),
        newer
    );
    assert!(!dir.path().join("c.db.key.new").exists());
    assert_eq!(s.tokens().unwrap()[0].name, "KestrelMarker");
}

#[test]
fn backup_is_encrypted_owner_only_and_restores_only_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let store = Store::open(&db).unwrap();
    create_token(&store, Role::Admin, "PloverMarker", "test").unwrap();
    let key = store.key().clone();
    let backup = dir.path().join("b.db");
    // Online: the store stays open.
    let counts = at_rest::backup(&db, &key, &backup).unwrap();
    assert!(counts.contains(&("tokens".to_string(), 1)), "{counts:?}");
    assert_eq!(mode(&backup), 0o600);
    let bytes = std::fs::read(&backup).unwrap();
    assert!(!contains(&bytes, "PloverMarker"));
    assert!(contains(
        &decrypt_file_pages(&backup, &key).unwrap(),
        "PloverMarker"
    ));
    assert!(
        at_rest::backup(&db, &key, &backup).is_err(),
        "overwrote a backup"
    );

    let other = tempfile::tempdir().unwrap();
    let db2 = other.path().join("c.db");
    let e = at_rest::restore(&db2, &Key::random(), &backup, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not open with the key"), "{e}");
    at_rest::restore(&db2, &key, &backup, false).unwrap();
    assert_eq!(mode(&db2), 0o600);
    let e = at_rest::restore(&db2, &key, &backup, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--force"), "{e}");
    std::fs::write(other.path().join("c.db.key"), format!("{}\n", key.to_hex())).unwrap();
    let restored = Store::open(&db2).unwrap();
    assert_eq!(restored.tokens().unwrap(), store.tokens().unwrap());
}
