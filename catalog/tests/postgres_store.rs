//! The control plane's store on PostgreSQL (a server started on loopback from Debian's
//! `postgresql` binaries, see `weir_api::fixtures::postgres`): the store's operations, one
//! test body run on SQLite and on PostgreSQL, migrations run again on an existing database, errors
//! that name the URL's problem or the server that is not there, and two control planes on
//! one database: each sees the other's changes, and a numbered summary sent to both counts
//! once. Skipped (with a message) only when PostgreSQL is not installed and
//! `WEIR_REQUIRE_POSTGRES` is unset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use weir_api::fixtures::postgres::TempPostgres;
use weir_catalog::auth::{authenticate, create_token_for, Role};
use weir_catalog::staging::{Staging, SummarySeq};
use weir_catalog::store::{EdgeInfo, Store, StoredPolicy};
use weir_summary::summary::{CatalogSummary, ServiceSummary};

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

fn summary(service: &str, items: u64) -> CatalogSummary {
    let mut s = ServiceSummary::default();
    s.logs.volume.items = items;
    s.logs.volume.bytes = items * 100;
    let mut c = CatalogSummary::default();
    c.services.insert(service.to_string(), s);
    c
}

fn items(store: &Store, service: &str) -> u64 {
    store
        .decoded_catalog()
        .unwrap()
        .get(service)
        .map_or(0, |(s, _, _)| s.logs.volume.items)
}

/// The store's operations, the same on both backends: `open` opens the store (again, the
/// second time: the migrations find their tables and the rows are there).
fn store_operations(open: &dyn Fn() -> Store) {
    let s = open();

    // Policies, audited with before and after.
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
    s.put_policy(&policy("p2"), "cli", "policy.create").unwrap();
    assert_eq!(
        s.served_forms().unwrap().len(),
        1,
        "p2 only: p1 is disabled"
    );
    s.delete_policy("p1", "cli").unwrap();
    assert!(s.policy("p1").unwrap().is_none());
    let log = s.audit_log(0, 100).unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "policy.create",
            "policy.update",
            "policy.create",
            "policy.delete"
        ]
    );
    assert_eq!(log[1].before.as_ref().unwrap()["enabled"], true);
    assert_eq!(log[1].after.as_ref().unwrap()["enabled"], false);
    assert!(log[3].after.is_none());
    assert_eq!(log[0].actor, "token:abc");
    let v = s.verify_audit().unwrap().expect("an intact chain");
    assert_eq!(v.records, 4);

    // Sync status accumulates hits; the edge is listed.
    let edge = EdgeInfo {
        instance_id: "e1".into(),
        service_name: "edge".into(),
        last_sync: 5,
        last_hash: "h".into(),
    };
    s.record_sync(&edge, &[("p2".into(), 3, 1, vec![])])
        .unwrap();
    s.record_sync(&edge, &[("p2".into(), 4, 0, vec!["bad".into()])])
        .unwrap();
    let st = s.policy_statuses().unwrap();
    assert_eq!(
        (st[0].hits, st[0].misses, st[0].errors.clone()),
        (7, 1, vec!["bad".to_string()])
    );
    assert_eq!(s.edges().unwrap().len(), 1);

    // Summaries merge, prune and delete.
    let add = |old: Option<&str>, n: i64| -> Result<String, weir_catalog::CatalogError> {
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

    // Tokens: created, found by their secret, revoked.
    let (secret, info) = create_token_for(&s, Role::Edge, "e", Some("edge-1"), "test").unwrap();
    let found = authenticate(&s, &secret).unwrap().expect("the new token");
    assert_eq!(found.edge_name(), "edge-1");
    assert!(s.revoke_token(&info.id, "test").unwrap());
    assert!(authenticate(&s, &secret).unwrap().is_none());

    // Users: created, listed, disabled.
    s.create_user("alice", Role::Viewer, "test").unwrap();
    assert_eq!(s.users().unwrap()[0].name, "alice");
    assert!(s.disable_user("alice", "test").unwrap());

    // Dismissed findings.
    s.dismiss("f1", "test").unwrap();
    s.dismiss("f1", "test").unwrap();
    assert_eq!(s.dismissed().unwrap(), ["f1"]);

    // The audit log is append-only, and pruning keeps the chain verifiable.
    let n = s.audit_log(0, 1000).unwrap().len();
    assert!(s.prune_audit(i64::MAX, "test").unwrap() > 0);
    assert!(s.audit_log(0, 1000).unwrap().len() < n);
    s.verify_audit()
        .unwrap()
        .expect("the chain verifies after pruning");
    drop(s);

    // Opened again: the migrations find their tables, the rows are there.
    let s = open();
    assert_eq!(s.policies().unwrap().len(), 1);
    assert_eq!(s.dismissed().unwrap(), ["f1"]);
    s.verify_audit().unwrap().expect("an intact chain");
}

#[test]
fn store_operations_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    store_operations(&|| Store::open(&db).unwrap());
}

#[test]
fn store_operations_on_postgres_match_sqlite() {
    let Some(pg) = TempPostgres::start_or_skip("store_operations_on_postgres_match_sqlite") else {
        return;
    };
    pg.create_database("ops");
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("cp");
    store_operations(&|| Store::open_postgres(&pg.url("ops"), &files).unwrap());

    // A control plane given another audit key would fork the chain: refused.
    let e = Store::open_postgres(&pg.url("ops"), &dir.path().join("other"))
        .err()
        .expect("another audit key is refused")
        .to_string();
    assert!(e.contains("audit key"), "{e}");
}

#[test]
fn bad_urls_and_absent_servers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("cp");
    let e = Store::open_postgres("postgres://weir@127.0.0.1:notaport/x", &files)
        .err()
        .expect("a bad URL fails")
        .to_string();
    assert!(e.contains("postgres.url"), "{e}");
    let port = weir_api::fixtures::free_port();
    let e = Store::open_postgres(
        &format!("postgres://weir:secret@127.0.0.1:{port}/x?connect_timeout=5"),
        &files,
    )
    .err()
    .expect("nothing listens there")
    .to_string();
    assert!(
        e.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{e}"
    );
    assert!(!e.contains("secret"), "the password is never shown: {e}");
}

#[test]
fn two_control_planes_on_one_database_count_every_summary_once() {
    let Some(pg) =
        TempPostgres::start_or_skip("two_control_planes_on_one_database_count_every_summary_once")
    else {
        return;
    };
    pg.create_database("replicas");
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("cp");
    let a = Arc::new(Store::open_postgres(&pg.url("replicas"), &files).unwrap());
    let b = Arc::new(Store::open_postgres(&pg.url("replicas"), &files).unwrap());

    // Edges send numbered summaries to both replicas at once; every one is also sent
    // again to the other replica (a retry after a lost answer): each counts once.
    let edges = 4u64;
    let per_edge = 25u64;
    let mut threads = Vec::new();
    for e in 0..edges {
        let (a, b) = (a.clone(), b.clone());
        threads.push(std::thread::spawn(move || {
            let edge = format!("edge-{e}");
            for n in 1..=per_edge {
                let seq = SummarySeq::parse(&format!("s{e}:{n}")).unwrap();
                let body = summary("checkout", e + 1);
                let both = Arc::new(Barrier::new(2));
                let copies: Vec<_> = [a.clone(), b.clone()]
                    .into_iter()
                    .map(|store| {
                        let (seq, body, edge, both) =
                            (seq.clone(), body.clone(), edge.clone(), both.clone());
                        std::thread::spawn(move || {
                            both.wait();
                            let _w = store.will_persist();
                            let r = store.stage(&body, Some(&edge), Some(&seq), 1000).unwrap();
                            store.persist().unwrap();
                            r
                        })
                    })
                    .collect();
                for c in copies {
                    let r = c.join().unwrap();
                    assert!(matches!(r, Staging::Applied | Staging::Duplicate));
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let want: u64 = (0..edges).map(|e| (e + 1) * per_edge).sum();
    assert_eq!(items(&a, "checkout"), want, "replica a");
    assert_eq!(items(&b, "checkout"), want, "replica b");

    // Each sees what the other changes: a policy, a token, a revocation.
    let gen = b.generation_now();
    a.put_policy(&policy("p1"), "cli", "policy.create").unwrap();
    assert!(b.generation_now() > gen, "b noticed a's commit");
    assert_eq!(b.policies().unwrap().len(), 1);
    let (secret, info) = create_token_for(&a, Role::Edge, "e", Some("edge-9"), "test").unwrap();
    assert!(authenticate(&b, &secret).unwrap().is_some());
    assert!(a.revoke_token(&info.id, "test").unwrap());
    b.generation_now();
    assert!(
        authenticate(&b, &secret).unwrap().is_none(),
        "b's token cache dropped the revoked token"
    );
    // Both replicas append to one audit chain.
    a.audit("cli", "x.a", "t", None, None).unwrap();
    b.audit("cli", "x.b", "t", None, None).unwrap();
    a.verify_audit().unwrap().expect("one intact chain");
}

#[test]
fn a_restarted_server_is_reconnected_and_staged_summaries_wait_for_it() {
    let Some(pg) = TempPostgres::start_or_skip(
        "a_restarted_server_is_reconnected_and_staged_summaries_wait_for_it",
    ) else {
        return;
    };
    pg.create_database("restart");
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_postgres(&pg.url("restart"), &dir.path().join("cp")).unwrap();
    let seq = |n: u64| SummarySeq::parse(&format!("r:{n}")).unwrap();
    s.stage(&summary("checkout", 5), Some("edge-1"), Some(&seq(1)), 1000)
        .unwrap();
    s.persist().unwrap();

    // Staged while the server restarts: the write that meets the cut connection fails
    // and keeps everything staged; a later one (on a new connection) writes it once.
    pg.restart();
    s.stage(&summary("checkout", 7), Some("edge-1"), Some(&seq(2)), 1001)
        .unwrap();
    let mut failures = 0;
    while let Err(e) = s.persist() {
        failures += 1;
        assert!(failures < 3, "still failing after reconnecting: {e}");
    }
    eprintln!("persist failures before the reconnect: {failures}");
    assert_eq!(items(&s, "checkout"), 12);
    // The same numbered summary again: not counted twice.
    assert_eq!(
        s.stage(&summary("checkout", 7), Some("edge-1"), Some(&seq(2)), 1002)
            .unwrap(),
        Staging::Duplicate
    );
    s.put_policy(&policy("p1"), "cli", "policy.create").unwrap();
    assert_eq!(s.policies().unwrap().len(), 1);
    s.verify_audit().unwrap().expect("an intact chain");
}

#[test]
fn tls_to_postgres_checks_the_server_and_plain_text_is_refused() {
    let Some(pg) =
        TempPostgres::start_or_skip("tls_to_postgres_checks_the_server_and_plain_text_is_refused")
    else {
        return;
    };
    pg.create_database("tls");
    let ca = weir_tls::testing::TestCa::new("weir test postgres CA");
    let cert = ca.server_cert("postgres");
    pg.require_tls(&cert.cert_pem, &cert.key_pem);
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("cp");
    let tls_with = |ca: &weir_tls::testing::TestCa, name: &str| {
        let settings = weir_tls::TlsClientSettings {
            ca_file: Some(ca.write(dir.path(), name).display().to_string()),
            ..Default::default()
        };
        settings
            .load("postgres.tls", |p: &str| std::path::PathBuf::from(p))
            .unwrap()
            .rustls_config()
    };

    // Over TLS, the server's certificate checked against the CA: the store works.
    let s = Store::open_postgres_tls(&pg.url("tls"), &files, tls_with(&ca, "ca.pem")).unwrap();
    s.put_policy(&policy("p1"), "cli", "policy.create").unwrap();
    assert_eq!(s.policies().unwrap().len(), 1);

    // Plain text: the server refuses it.
    let e = Store::open_postgres(&pg.url("tls"), &files)
        .err()
        .expect("plain text is refused")
        .to_string();
    assert!(
        e.contains("cannot connect to PostgreSQL at 127.0.0.1"),
        "{e}"
    );

    // A server whose certificate does not chain to the configured CA: not trusted.
    let other = weir_tls::testing::TestCa::new("another CA");
    let e = Store::open_postgres_tls(&pg.url("tls"), &files, tls_with(&other, "other.pem"))
        .err()
        .expect("an untrusted server is refused")
        .to_string();
    assert!(
        e.contains("cannot connect to PostgreSQL at 127.0.0.1"),
        "{e}"
    );
    eprintln!("untrusted server: {e}");
}

#[test]
fn a_replica_with_another_sketch_key_is_refused() {
    let Some(pg) = TempPostgres::start_or_skip("a_replica_with_another_sketch_key_is_refused")
    else {
        return;
    };
    pg.create_database("sk");
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a");
    let s = Store::open_postgres(&pg.url("sk"), &first).unwrap();
    s.put_policy(&policy("p1"), "cli", "policy.create").unwrap();
    drop(s);

    // The second replica has the audit key but a sketch key of its own: refused, the error
    // naming its key file and what to do.
    let second = dir.path().join("b");
    let key = |files: &std::path::Path, suffix: &str| {
        let mut p = files.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    std::fs::copy(key(&first, ".audit-key"), key(&second, ".audit-key")).unwrap();
    weir_summary::key::SketchKey::random()
        .store_new(&key(&second, ".sketch-key"))
        .unwrap();
    let e = Store::open_postgres(&pg.url("sk"), &second)
        .err()
        .expect("another sketch key is refused")
        .to_string();
    assert!(
        e.contains(&key(&second, ".sketch-key").display().to_string()),
        "{e}"
    );
    assert!(
        e.contains("sketch key") && e.contains("copy of the first replica's key file"),
        "{e}"
    );
    // The fingerprint is stored, never the key.
    let stored = std::fs::read_to_string(key(&first, ".sketch-key")).unwrap();
    let mut c = postgres::Client::connect(&pg.url("sk"), postgres::NoTls).unwrap();
    let row = c
        .query_one(
            "SELECT fingerprint FROM weir_key_checks WHERE name = 'sketch-key'",
            &[],
        )
        .unwrap();
    let fingerprint: String = row.get(0);
    assert!(
        !fingerprint.contains(stored.trim()),
        "the key itself is not stored"
    );

    // With a copy of the first replica's sketch key it opens.
    std::fs::copy(key(&first, ".sketch-key"), key(&second, ".sketch-key")).unwrap();
    let s = Store::open_postgres(&pg.url("sk"), &second).unwrap();
    assert_eq!(s.policies().unwrap().len(), 1);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn totp_secrets_are_sealed_on_postgres() {
    use weir_catalog::users::{base32_decode, totp};
    let Some(pg) = TempPostgres::start_or_skip("totp_secrets_are_sealed_on_postgres") else {
        return;
    };
    pg.create_database("totp");
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("cp");
    let s = Store::open_postgres(&pg.url("totp"), &files).unwrap();
    let code = |t: &[u8], at: u64| format!("{:06}", totp(t, at));
    let now = unix_now();

    // Enrolment and sign-in work as on SQLite.
    let mut secrets = Vec::new();
    for name in ["alice", "bob"] {
        let enrol = s.create_user(name, Role::Editor, "cli").unwrap();
        let t = base32_decode(&s.enrol_start(name, &enrol).unwrap()).unwrap();
        s.enrol_finish(name, &enrol, "correct horse battery", &code(&t, now - 30))
            .unwrap();
        let (_, role) = s
            .sign_in(name, "correct horse battery", &code(&t, now))
            .unwrap();
        assert_eq!(role, Role::Editor);
        secrets.push(t);
    }
    // A pending secret is sealed too.
    let carol = s.create_user("carol", Role::Viewer, "cli").unwrap();
    let pending = base32_decode(&s.enrol_start("carol", &carol).unwrap()).unwrap();
    secrets.push(pending);

    // Over a plain client, the users table's bytes hold no TOTP secret.
    let mut c = postgres::Client::connect(&pg.url("totp"), postgres::NoTls).unwrap();
    let mut raw = Vec::new();
    for row in c
        .query(
            "SELECT name, totp_secret, totp_pending, CAST(u AS TEXT) FROM users u",
            &[],
        )
        .unwrap()
    {
        for col in [1, 2] {
            raw.extend(row.get::<_, Option<Vec<u8>>>(col).unwrap_or_default());
        }
        raw.extend(row.get::<_, String>(3).into_bytes());
    }
    assert!(raw.len() > 3 * 40, "the rows were read");
    for t in &secrets {
        assert_eq!(t.len(), 20);
        let hex: String = t.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !raw.windows(t.len()).any(|w| w == t.as_slice()),
            "a secret in clear"
        );
        assert!(
            !String::from_utf8_lossy(&raw).contains(&hex),
            "a secret in hex"
        );
    }

    // Alice's sealed secret copied to Bob's row does not open: a clear error, no panic.
    c.execute(
        "UPDATE users SET totp_secret = (SELECT totp_secret FROM users WHERE name = 'alice') WHERE name = 'bob'",
        &[],
    )
    .unwrap();
    let e = s
        .sign_in("bob", "correct horse battery", &code(&secrets[0], now + 30))
        .expect_err("another user's sealed secret is refused")
        .to_string();
    assert!(
        e.contains("totp_secret") && e.contains("bob") && e.contains("does not open"),
        "{e}"
    );
    // Alice signs in with the next step's code.
    s.sign_in(
        "alice",
        "correct horse battery",
        &code(&secrets[0], now + 30),
    )
    .unwrap();

    // A secret stored in clear (a build before sealing) is sealed when the store opens.
    drop(s);
    c.execute(
        "UPDATE users SET totp_pending = $1 WHERE name = 'carol'",
        &[&secrets[2]],
    )
    .unwrap();
    let s = Store::open_postgres(&pg.url("totp"), &files).unwrap();
    let stored: Vec<u8> = c
        .query_one("SELECT totp_pending FROM users WHERE name = 'carol'", &[])
        .unwrap()
        .get(0);
    assert_ne!(stored, secrets[2], "sealed at open");
    s.enrol_finish(
        "carol",
        &carol,
        "correct horse battery",
        &code(&secrets[2], now),
    )
    .unwrap();
}
