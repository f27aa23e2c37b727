//! Two `weir` control planes on one PostgreSQL database (Debian's `postgresql`, started on
//! loopback by the test; see `weir_api::fixtures::postgres`; TLS only, checked against a
//! test CA), as replicas behind a load balancer: simulated edges send numbered summaries to one replica each and sync
//! policies; one replica is killed (SIGKILL) mid-run and its edges fail over to the other,
//! sending their unanswered summary again with its number; every tenth summary also goes
//! to the other replica at the same time (an edge that gave up waiting on one).
//! Every summary counts exactly once (the catalog's volumes equal what the edges sent),
//! and the edges keep syncing the policy set from the surviving replica. Skipped (with a message) only when PostgreSQL is
//! not installed and `WEIR_REQUIRE_POSTGRES` is unset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{free_port, sigterm, wait_exit, weir, write};
use weir_api::fixtures::postgres::TempPostgres;

const EDGES: usize = 6;
const SERVICES: usize = 3;

/// One HTTP/1.0 exchange: `None` when the connection fails or is cut before an answer.
fn http(port: u16, head: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!(
        "{head}\r\nHost: cp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let at = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((status, out[at..].to_vec()))
}

fn summary(service: &str, items: u64) -> String {
    format!(
        r#"{{"services":{{"{service}":{{"logs":{{"volume":{{"items":{items},"bytes":{}}}}}}}}}}}"#,
        items * 10
    )
}

struct Replica {
    child: Child,
    port: u16,
    killed: bool,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        sigterm(&self.child);
        if wait_exit(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
        }
    }
}

fn start_replica(dir: &Path, name: &str, url: &str, files: &Path, ca: &Path) -> Replica {
    let port = free_port();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{otlp}'}}
exporters:
  nop: {{}}
extensions:
  control_plane:
    endpoint: 127.0.0.1:{port}
    storage: {files}
    sync_interval: 1s
    ingest: {{requests_per_minute: 1000000}}
    postgres:
      url: {url}
      tls: {{ca_file: {ca}}}
service:
  extensions: [control_plane]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [nop]}}
",
        otlp = free_port(),
        metrics = free_port(),
        files = files.display(),
        ca = ca.display(),
    );
    let path = write(dir, &format!("{name}.yaml"), &config);
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = weir()
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Replica {
        child,
        port,
        killed: false,
    }
}

fn wait_ready(r: &Replica, admin: &str, dir: &Path, name: &str) {
    let start = Instant::now();
    loop {
        let head = format!("GET /api/v1/services HTTP/1.0\r\nAuthorization: Bearer {admin}");
        if let Some((200, _)) = http(r.port, &head, b"") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "replica {name} did not answer: {}",
            std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one simulated edge did.
#[derive(Default, Debug)]
struct EdgeRun {
    /// Items of every summary acknowledged (each is sent until it is).
    items: u64,
    summaries: u64,
    failovers: u64,
    /// Copies sent to the other replica at once and acknowledged by it too.
    copies: u64,
    /// Syncs answered with the policy set after the kill.
    syncs_after_kill: u64,
}

#[test]
fn replicas_on_postgres_lose_and_double_count_nothing_when_one_is_killed() {
    let test = "replicas_on_postgres_lose_and_double_count_nothing_when_one_is_killed";
    let Some(pg) = TempPostgres::start_or_skip(test) else {
        return;
    };
    pg.create_database("weir");
    let url = pg.url("weir");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let files = dir.join("cp");

    // From here on the database takes TLS connections only; the replicas check its
    // certificate against the test CA (control_plane.postgres.tls.ca_file).
    let ca = weir_tls::testing::TestCa::new("weir test postgres CA");
    let cert = ca.server_cert("postgres");
    pg.require_tls(&cert.cert_pem, &cert.key_pem);
    let ca_file = ca.write(dir, "db-ca.pem");

    // Tokens made with `weir admin` on the PostgreSQL store (WEIR_POSTGRES_URL, over TLS
    // with WEIR_POSTGRES_CA_FILE; --db names the key files), before the replicas start.
    let admin_cmd = |args: &[&str]| {
        weir()
            .env("WEIR_POSTGRES_URL", &url)
            .env("WEIR_POSTGRES_CA_FILE", &ca_file)
            .args(["admin"])
            .args(args)
            .arg("--db")
            .arg(&files)
            .output()
            .unwrap()
    };
    let token = |args: &[&str]| {
        let out = admin_cmd(&[&["token", "create"][..], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let admin = token(&["--role", "admin"]);
    let edge_tokens: Vec<String> = (0..EDGES)
        .map(|e| token(&["--role", "edge", "--edge", &format!("edge-{e}")]))
        .collect();
    // The SQLite-only commands say so.
    let out = admin_cmd(&["backup", "--to", "x.db"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PostgreSQL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let a = start_replica(dir, "a", &url, &files, &ca_file);
    let b = start_replica(dir, "b", &url, &files, &ca_file);
    wait_ready(&a, &admin, dir, "a");
    wait_ready(&b, &admin, dir, "b");
    let policy = r#"{"policy":{"id":"replicated-policy","name":"drop debug","log":{"match":[{"log_field":"severity_text","exact":"DEBUG"}],"keep":"none"}}}"#;
    let head = format!(
        "POST /api/v1/policies HTTP/1.0\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json"
    );
    let (status, body) = http(a.port, &head, policy.as_bytes()).unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));

    // Replica b serves the policy a stored (it sees a's commit within a second).
    let sync_head = |token: &str| {
        format!(
            "POST /v1/policy/sync HTTP/1.0\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-protobuf"
        )
    };
    let holds_policy = |body: &[u8]| body.windows(17).any(|w| w == b"replicated-policy");
    let start = Instant::now();
    while !http(b.port, &sync_head(&edge_tokens[0]), b"")
        .is_some_and(|(s, body)| s == 200 && holds_policy(&body))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "b never served a's policy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let ports = [a.port, b.port];
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let runs: Vec<_> = edge_tokens
        .into_iter()
        .enumerate()
        .map(|(e, token)| {
            let (killed, stop) = (killed.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut run = EdgeRun::default();
                let mut at = e % 2;
                let service = format!("svc-{}", e % SERVICES);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let items = (e as u64 + 1) * 10 + n % 7;
                    let body = summary(&service, items);
                    let head = format!(
                        "POST /api/v1/ingest HTTP/1.0\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nx-weir-summary-seq: run-{e}:{n}"
                    );
                    // Every tenth summary also goes to the other replica at the same time
                    // (as when an edge gives up waiting on one and sends it again to the
                    // other): both may acknowledge it, it counts once.
                    let copy = n.is_multiple_of(10).then(|| {
                        let (port, head, body) = (ports[1 - at], head.clone(), body.clone());
                        std::thread::spawn(move || http(port, &head, body.as_bytes()))
                    });
                    // Sent until acknowledged: on the other replica when this one fails.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        match http(ports[at], &head, body.as_bytes()) {
                            Some((204, _)) => break,
                            Some((503 | 429, _)) => std::thread::sleep(Duration::from_millis(50)),
                            other => {
                                if let Some((status, b)) = &other {
                                    assert!(
                                        *status >= 500,
                                        "edge-{e}: {status} {}",
                                        String::from_utf8_lossy(b)
                                    );
                                }
                                at = 1 - at;
                                run.failovers += 1;
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                        assert!(Instant::now() < deadline, "edge-{e}: summary {n} never acknowledged");
                    }
                    run.items += items;
                    run.summaries += 1;
                    if let Some((status, b)) = copy.and_then(|c| c.join().unwrap()) {
                        assert!(
                            status == 204 || status >= 500,
                            "edge-{e}: the copy: {status} {}",
                            String::from_utf8_lossy(&b)
                        );
                        run.copies += u64::from(status == 204);
                    }
                    if n.is_multiple_of(5) {
                        match http(ports[at], &sync_head(&token), b"") {
                            Some((200, body)) => {
                                assert!(
                                    holds_policy(&body),
                                    "edge-{e}: the sync answer holds the policy"
                                );
                                if killed.load(Ordering::Relaxed) {
                                    run.syncs_after_kill += 1;
                                }
                            }
                            Some((503, _)) => {}
                            _ => {
                                at = 1 - at;
                                run.failovers += 1;
                            }
                        }
                    }
                }
                run
            })
        })
        .collect();

    // Under load for a while, then replica a dies without a word.
    std::thread::sleep(Duration::from_secs(3));
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    a.killed = true;
    killed.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let runs: Vec<EdgeRun> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    drop(a);

    // Exactly what was acknowledged, per service, read from the surviving replica.
    let head = format!("GET /api/v1/services HTTP/1.0\r\nAuthorization: Bearer {admin}");
    let (status, body) = http(b.port, &head, b"").unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for s in 0..SERVICES {
        let service = format!("svc-{s}");
        let want: u64 = runs
            .iter()
            .enumerate()
            .filter(|(e, _)| e % SERVICES == s)
            .map(|(_, r)| r.items)
            .sum();
        let got = v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["service"] == service.as_str())
            .and_then(|x| x["logs_items"].as_u64())
            .unwrap_or(0);
        assert_eq!(got, want, "{service}: runs {runs:?}");
    }
    let total: u64 = runs.iter().map(|r| r.summaries).sum();
    eprintln!("{test}: {total} summaries from {EDGES} edges, runs {runs:?}");
    for (e, r) in runs.iter().enumerate() {
        assert!(r.summaries > 0, "edge-{e} sent nothing");
        assert!(
            r.syncs_after_kill > 0,
            "edge-{e} did not sync after the kill: {r:?}"
        );
        if e % 2 == 0 {
            // Its copies went to b, which ran throughout.
            assert!(r.copies > 0, "edge-{e}: no copy was acknowledged: {r:?}");
            assert!(r.failovers > 0, "edge-{e} was on the killed replica: {r:?}");
        }
    }
    drop(b);
    drop(pg);
}
