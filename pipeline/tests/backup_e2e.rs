//! Backup and restore of a live control plane (the real `weir` binary): `weir admin backup`
//! while edges ingest over HTTP, `weir admin restore` into a fresh directory, a fresh
//! control plane on it, and the catalog compared through the API: the copy taken under
//! load is one consistent point in time (whole requests only, between what was
//! acknowledged before and after it), and a copy taken at rest equals the original.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{free_port, log_of, spawn, wait_for_status, weir, write};

/// Items per ingest request (one service each): a torn request would show as a total
/// that is not a multiple of it.
const ITEMS: u64 = 7;
const SERVICES: u64 = 12;

struct Cp {
    child: Child,
    port: u16,
}

impl Drop for Cp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin(args: &[&str], db: &Path) -> (bool, String, String) {
    let out = weir()
        .arg("admin")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn token(db: &Path, args: &[&str]) -> String {
    let mut a = vec!["token", "create"];
    a.extend_from_slice(args);
    let (ok, out, err) = admin(&a, db);
    assert!(ok, "{err}");
    out.trim().to_string()
}

fn start(dir: &Path) -> Cp {
    let db = dir.join("cp.db");
    let (port, health, metrics) = (free_port(), free_port(), free_port());
    let config = format!(
        "extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
  control_plane:
    endpoint: 127.0.0.1:{port}
    storage: {db}
    ingest: {{requests_per_minute: 1000000}}
receivers:
  otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{otlp}'}}}}}}
exporters:
  nop: {{}}
service:
  extensions: [health_check, control_plane]
  telemetry: {{metrics: {{address: '127.0.0.1:{metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [nop]}}
",
        db = db.display(),
        otlp = free_port(),
    );
    let path = write(dir, "cp.yaml", &config);
    let child = spawn(dir, &path, &[]);
    assert!(
        wait_for_status(health, "/", 200, Duration::from_secs(30)).is_some(),
        "control plane did not start: {}",
        log_of(dir)
    );
    Cp { child, port }
}

fn call(port: u16, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Service name -> logs items, through the API.
fn catalog(port: u16, admin: &str) -> Vec<(String, u64)> {
    let (st, body) = call(port, "GET", "/api/v1/services", admin, b"");
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<(String, u64)> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["logs_items"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn get(port: u16, path: &str, admin: &str) -> serde_json::Value {
    let (st, body) = call(port, "GET", path, admin, b"");
    assert_eq!(st, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn restore_into(from_dir: &Path, backup: &Path) -> PathBuf {
    let dir = from_dir.join(format!(
        "restored-{}",
        backup.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("cp.db");
    // Without the key the backup does not restore.
    let (ok, _, err) = admin(&["restore", "--from", backup.to_str().unwrap()], &db);
    assert!(!ok);
    assert!(err.contains("no key"), "{err}");
    // The operator brings the database key (kept apart from the backups)...
    std::fs::copy(from_dir.join("cp.db.key"), dir.join("cp.db.key")).unwrap();
    let (ok, _, err) = admin(&["restore", "--from", backup.to_str().unwrap()], &db);
    assert!(!ok);
    assert!(err.contains("cp.db.sketch-key"), "{err}");
    // ... and the sketch and audit keys, which live beside the database too.
    for k in ["cp.db.sketch-key", "cp.db.audit-key"] {
        std::fs::copy(from_dir.join(k), dir.join(k)).unwrap();
    }
    let (ok, out, err) = admin(&["restore", "--from", backup.to_str().unwrap()], &db);
    assert!(ok, "{err}\n{out}");
    assert!(out.contains("audit chain intact"), "{out}");
    dir
}

#[test]
fn a_backup_under_ingest_load_restores_into_a_fresh_control_plane() {
    let top = tempfile::tempdir().unwrap();
    let dir1 = top.path().join("cp1");
    std::fs::create_dir_all(&dir1).unwrap();
    let db1 = dir1.join("cp.db");
    let admin_token = token(&db1, &["--role", "admin"]);
    let edge_token = token(&db1, &["--role", "edge", "--edge", "edge-a"]);
    let cp1 = start(&dir1);

    // Ingest load: one request after another from two threads, each `ITEMS` records of
    // one service; `acked` counts the items acknowledged (200).
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for t in 0..2u64 {
        let (stop, acked, edge) = (stop.clone(), acked.clone(), edge_token.clone());
        let port = cp1.port;
        loaders.push(std::thread::spawn(move || {
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let body = format!(
                    r#"{{"services":{{"svc-{}":{{"logs":{{"volume":{{"items":{ITEMS},"bytes":{}}}}}}}}}}}"#,
                    i % SERVICES,
                    ITEMS * 100
                );
                let (st, b) = call(port, "POST", "/api/v1/ingest", &edge, body.as_bytes());
                assert!(st == 200 || st == 204, "ingest {st}: {b}");
                acked.fetch_add(ITEMS, Ordering::SeqCst);
                i += 2;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let before = acked.load(Ordering::SeqCst);
    assert!(before > 0, "no ingest before the backup");
    // Rotation and restore replace the file: refused while the control plane has it open.
    let (ok, _, err) = admin(&["rekey"], &db1);
    assert!(!ok);
    assert!(err.contains("is open in process"), "{err}");
    let hot = dir1.join("hot-backup.db");
    let (ok, out, err) = admin(&["backup", "--to", hot.to_str().unwrap()], &db1);
    let after = acked.load(Ordering::SeqCst);
    assert!(ok, "{err}");
    assert!(out.contains("verified"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().unwrap();
    }
    let total = acked.load(Ordering::SeqCst);
    eprintln!("items acknowledged: {before} before the backup, {after} after it, {total} in all");
    assert!(total > after, "ingest went on after the backup");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&hot).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let raw = std::fs::read(&hot).unwrap();
    assert!(
        !raw.windows(5).any(|w| w == b"svc-1"),
        "the backup is readable without the key"
    );

    // The live catalog now: everything acknowledged.
    let live = catalog(cp1.port, &admin_token);
    assert_eq!(live.iter().map(|(_, n)| n).sum::<u64>(), total, "{live:?}");

    // The copy taken under load: a consistent point in time.
    let dir2 = restore_into(&dir1, &hot);
    let cp2 = start(&dir2);
    let snap = catalog(cp2.port, &admin_token);
    let snap_total: u64 = snap.iter().map(|(_, n)| n).sum();
    assert!(
        (before..=after).contains(&snap_total),
        "backup holds {snap_total} items, acknowledged {before} before and {after} after it"
    );
    for (svc, n) in &snap {
        assert_eq!(n % ITEMS, 0, "{svc}: torn request in the backup ({n})");
        let l = live.iter().find(|(s, _)| s == svc).unwrap().1;
        assert!(*n <= l, "{svc}: {n} in the backup, {l} live");
    }
    drop(cp2);

    // A copy taken at rest equals the original, every read of the API alike.
    let cold = dir1.join("cold-backup.db");
    let (ok, _, err) = admin(&["backup", "--to", cold.to_str().unwrap()], &db1);
    assert!(ok, "{err}");
    let dir3 = restore_into(&dir1, &cold);
    let cp3 = start(&dir3);
    assert_eq!(catalog(cp3.port, &admin_token), live);
    for path in [
        "/api/v1/services",
        "/api/v1/policies",
        "/api/v1/edges",
        "/api/v1/tokens",
        "/api/v1/services/svc-3",
    ] {
        assert_eq!(
            get(cp3.port, path, &admin_token),
            get(cp1.port, path, &admin_token),
            "{path}"
        );
    }
    drop(cp3);
    drop(cp1);
    let _ = log_of(&dir1);
}

fn run(db: &Path, env: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut c = weir();
    c.args(args).arg("--db").arg(db);
    c.env_remove("WEIR_CATALOG_KEY")
        .env_remove("WEIR_CATALOG_KEY_FILE");
    if let Some(k) = env {
        c.env("WEIR_CATALOG_KEY", k);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The admin commands find the key as the control plane does: `WEIR_CATALOG_KEY`, else
/// `<db>.key` (created with the database, said on stderr); `rekey` rotates it either way.
#[test]
fn admin_commands_use_the_key_from_the_environment_or_the_key_file_and_rekey_rotates_it() {
    let dir = tempfile::tempdir().unwrap();
    // Key file: created with the database, said so.
    let db = dir.path().join("a.db");
    let (ok, _, err) = run(
        &db,
        None,
        &[
            "admin",
            "token",
            "create",
            "--role",
            "admin",
            "--name",
            "WrenTokenName",
        ],
    );
    assert!(ok, "{err}");
    assert!(err.contains("created the database key"), "{err}");
    let key_file = dir.path().join("a.db.key");
    let old = std::fs::read_to_string(&key_file).unwrap();
    let (ok, out, err) = run(&db, None, &["admin", "rekey"]);
    assert!(ok, "{err}");
    assert!(out.contains("re-encrypted"), "{out}");
    let new = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old, new);
    let (ok, out, err) = run(&db, None, &["admin", "token", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("WrenTokenName"), "{out}");
    let (ok, _, err) = run(&db, Some(old.trim()), &["admin", "token", "list"]);
    assert!(!ok);
    assert!(err.contains("cannot be decrypted"), "{err}");

    // Environment: no key file is written; without it the database is refused.
    let db = dir.path().join("b.db");
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let (ok, _, err) = run(
        &db,
        Some(key),
        &["admin", "token", "create", "--role", "viewer"],
    );
    assert!(ok, "{err}");
    assert!(!dir.path().join("b.db.key").exists());
    let (ok, _, err) = run(&db, None, &["admin", "token", "list"]);
    assert!(!ok);
    assert!(err.contains("WEIR_CATALOG_KEY"), "{err}");
    let (ok, out, err) = run(&db, Some(key), &["admin", "rekey"]);
    assert!(ok, "{err}");
    let rotated = out.trim().to_string();
    assert_eq!(rotated.len(), 64, "{out}");
    assert!(!run(&db, Some(key), &["admin", "token", "list"]).0);
    assert!(run(&db, Some(&rotated), &["admin", "token", "list"]).0);
}
