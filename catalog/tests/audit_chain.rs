//! The audit log's hash chain against tampering done with a raw SQLite client (rusqlite
//! directly, the append-only triggers dropped first): an edited, deleted, reordered,
//! hand-inserted or cut-off record is found by verify, which names it; pruning through
//! the store keeps the chain verifiable, deleting the oldest records by hand does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use weir_catalog::store::Store;

/// A store with 6 audit records (seq 1..=6), closed.
fn log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let store = Store::open(&db).unwrap();
    for i in 1..=6 {
        store
            .audit(
                &format!("token:{i:012x}"),
                "policy.update",
                &format!("p{i}"),
                Some(serde_json::json!({"n": i})),
                Some(serde_json::json!({"n": i + 1})),
            )
            .unwrap();
    }
    let v = store.verify_audit().unwrap().unwrap();
    assert_eq!((v.records, v.first_seq, v.last_seq), (6, 1, 6));
    assert_eq!(v.anchored_seq, Some(6));
    drop(store);
    (dir, db)
}

/// A plain SQLite connection to `db`, as any SQLite client would open it (with the
/// database key, which an outsider who can edit the file may also hold).
fn raw(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    let key = weir_tls::at_rest::load_key_file(&weir_catalog::at_rest::default_key_path(db))
        .unwrap()
        .unwrap();
    weir_catalog::at_rest::apply_key(&c, &key).unwrap();
    c
}

/// Tampers with `db` as an outsider would: a plain connection, triggers dropped.
fn tamper(db: &Path, sql: &str) {
    let c = raw(db);
    c.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

fn verdict(db: &Path) -> Result<(), String> {
    Store::open(db).unwrap().verify_audit().unwrap().map(|_| ())
}

#[test]
fn the_triggers_refuse_plain_edits() {
    let (_d, db) = log();
    let c = raw(&db);
    let e = c
        .execute("UPDATE audit SET actor = 'x' WHERE seq = 2", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
}

#[test]
fn an_edited_record_is_found() {
    let (_d, db) = log();
    tamper(
        &db,
        "UPDATE audit SET actor = 'token:innocent' WHERE seq = 3",
    );
    let e = verdict(&db).unwrap_err();
    assert!(e.starts_with("record 3:"), "{e}");
    assert!(e.contains("edited"), "{e}");
}

#[test]
fn an_edit_of_the_before_state_only_is_found() {
    let (_d, db) = log();
    tamper(&db, r#"UPDATE audit SET before = '{"n":99}' WHERE seq = 5"#);
    assert!(verdict(&db).unwrap_err().starts_with("record 5:"));
}

#[test]
fn a_deleted_record_is_found() {
    let (_d, db) = log();
    tamper(&db, "DELETE FROM audit WHERE seq = 4");
    let e = verdict(&db).unwrap_err();
    assert!(e.starts_with("record 5: expected record 4 next"), "{e}");
}

#[test]
fn reordered_records_are_found() {
    let (_d, db) = log();
    // Swap records 2 and 3 (their seq numbers), keeping each one's content and hash.
    tamper(
        &db,
        "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -2;",
    );
    let e = verdict(&db).unwrap_err();
    assert!(e.starts_with("record 2:"), "{e}");
}

#[test]
fn reordering_by_time_only_is_found() {
    let (_d, db) = log();
    tamper(&db, "UPDATE audit SET at = at - 3600 WHERE seq = 6");
    assert!(verdict(&db).unwrap_err().starts_with("record 6:"));
}

#[test]
fn cutting_the_newest_records_is_found_by_the_anchor() {
    let (_d, db) = log();
    tamper(&db, "DELETE FROM audit WHERE seq >= 5");
    let e = verdict(&db).unwrap_err();
    assert!(e.contains("the log ends at record 4"), "{e}");
    assert!(e.contains("names record 6"), "{e}");
}

#[test]
fn a_record_inserted_by_hand_is_found() {
    let (_d, db) = log();
    tamper(
        &db,
        "INSERT INTO audit (seq, at, actor, action, target) VALUES (7, 0, 'cli', 'token.create', 'x')",
    );
    let e = verdict(&db).unwrap_err();
    assert!(e.starts_with("record 7: has no hash"), "{e}");
    // A forged hash is no better: the key is not in the database.
    let (_d2, db2) = log();
    tamper(
        &db2,
        "INSERT INTO audit (seq, at, actor, action, target, hash) VALUES (7, 0, 'cli', 'token.create', 'x', (SELECT hash FROM audit WHERE seq = 6))",
    );
    assert!(verdict(&db2).unwrap_err().starts_with("record 7:"));
}

#[test]
fn pruning_through_the_store_keeps_the_chain_and_by_hand_does_not() {
    let (_d, db) = log();
    {
        let c = raw(&db);
        c.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET at = 100 WHERE seq <= 3;")
            .unwrap();
    }
    // That edit itself is tampering; start again for the honest case.
    assert!(verdict(&db).is_err());

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let store = Store::open(&db).unwrap();
    for i in 0..5 {
        store.audit("cli", "x", &i.to_string(), None, None).unwrap();
    }
    // Everything older than now + 10 s except the newest record goes.
    let cutoff = weir_catalog::store::now_secs() + 10;
    assert_eq!(store.prune_audit(cutoff, "retention").unwrap(), 4);
    let v = store.verify_audit().unwrap().unwrap();
    assert_eq!((v.first_seq, v.last_seq), (5, 6), "{v:?}");
    store.audit("cli", "after", "y", None, None).unwrap();
    assert!(store.verify_audit().unwrap().is_ok());
    drop(store);
    // Deleting the oldest remaining records by hand is found: no prune record covers it.
    tamper(&db, "DELETE FROM audit WHERE seq <= 5");
    let e = verdict(&db).unwrap_err();
    assert!(e.contains("no audit.prune record accounts for them"), "{e}");
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, db) = log();
    for suffix in [".audit-key", ".audit-head"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{suffix}");
    }
}
