//! Hostile edges and clients against a running control plane (the real `weir` binary on
//! 127.0.0.1, over HTTP): crafted summaries, floods, impersonation, slow and half-open
//! connections. Each attack gets its answer (status and the field named), the process
//! stays up with its resident memory under a stated bound, and an honest edge's data
//! still arrives with exact counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use support::*;

/// Resident memory the control plane must stay under through every attack, in KiB.
const RSS_BOUND_KIB: u64 = 300 * 1024;

struct ControlPlane {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    admin: String,
    edge_a: String,
    edge_b: String,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(db: &Path, args: &[&str]) -> String {
    let out = weir()
        .args(["admin", "token", "create", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn start(extra: &str) -> ControlPlane {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let admin = token(&db, &["--role", "admin"]);
    let edge_a = token(&db, &["--role", "edge", "--edge", "edge-a"]);
    let edge_b = token(&db, &["--role", "edge", "--edge", "edge-b"]);
    let (port, health, metrics) = (free_port(), free_port(), free_port());
    let config = format!(
        "extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
  control_plane:
    endpoint: 127.0.0.1:{port}
    storage: {db}
{extra}
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
    let path = write(dir.path(), "cp.yaml", &config);
    let child = spawn(dir.path(), &path, &[]);
    assert!(
        wait_for_status(health, "/", 200, Duration::from_secs(20)).is_some(),
        "control plane did not start: {}",
        log_of(dir.path())
    );
    ControlPlane {
        child,
        dir,
        port,
        admin,
        edge_a,
        edge_b,
    }
}

/// One HTTP/1.1 request on its own connection: (status, head, body).
fn call(port: u16, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before taking the whole body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn alive_and_bounded(cp: &mut ControlPlane) {
    assert!(
        cp.child.try_wait().unwrap().is_none(),
        "the control plane died: {}",
        log_of(cp.dir.path())
    );
    let rss = rss_kib(&cp.child);
    assert!(
        rss < RSS_BOUND_KIB,
        "resident {rss} KiB, bound {RSS_BOUND_KIB} KiB"
    );
}

fn ingest(cp: &ControlPlane, token: &str, body: &str) -> (u16, String, String) {
    call(cp.port, "POST", "/api/v1/ingest", token, body.as_bytes())
}

/// An honest edge's summary: `n` log records of service `shop`.
fn honest(n: u64) -> String {
    format!(
        r#"{{"services":{{"shop":{{"logs":{{"volume":{{"items":{n},"bytes":{}}}}}}}}}}}"#,
        n * 100
    )
}

fn shop_items(cp: &ControlPlane) -> u64 {
    let (st, _, body) = call(cp.port, "GET", "/api/v1/services", &cp.admin, b"");
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "shop")
        .map(|s| s["logs_items"].as_u64().unwrap())
        .unwrap_or(0)
}

/// The settings every real duration sketch carries (the DDSketch defaults).
const DD_CONFIG: &str = r#"{"max_num_bins":2048,"gamma":1.02020202020202,"gamma_ln":0.020000666706669435,"min_value":1e-9,"offset":1037}"#;

#[test]
fn crafted_and_flooding_summaries_are_refused_naming_the_field() {
    let mut cp = start("");
    assert_eq!(ingest(&cp, &cp.edge_b, &honest(7)).0, 204);

    // Crash: a duration sketch built to allocate gigabytes.
    let crash = format!(
        r#"{{"services":{{"api":{{"traces":{{"spans":{{"GET /":{{"duration_ms":{{"config":{cfg},"store":{{"bins":[1],"count":1,"min_key":2147483000,"max_key":2147483000,"offset":2147483000,"bin_limit":8589934592,"is_collapsed":false}},"negative_store":{{"bins":[],"count":0,"min_key":0,"max_key":0,"offset":0,"bin_limit":8589934592,"is_collapsed":false}},"min":1.0,"max":1.0,"sum":1.0,"zero_count":0}}}}}}}}}}}}}}"#,
        cfg = DD_CONFIG.replace("2048", "4294967295")
    );
    let (st, _, body) = ingest(&cp, &cp.edge_a, &crash);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("services.api.traces.spans.GET /.duration_ms"),
        "{body}"
    );

    // Poison: a sketch whose bins index out of bounds.
    let poison = format!(
        r#"{{"services":{{"api":{{"traces":{{"spans":{{"x":{{"duration_ms":{{"config":{DD_CONFIG},"store":{{"bins":[1],"count":5,"min_key":0,"max_key":99999,"offset":0,"bin_limit":1,"is_collapsed":false}},"negative_store":{{"bins":[],"count":0,"min_key":0,"max_key":0,"offset":0,"bin_limit":1,"is_collapsed":false}},"min":1.0,"max":1.0,"sum":1.0,"zero_count":0}}}}}}}}}}}}}}"#
    );
    let (st, _, body) = ingest(&cp, &cp.edge_a, &poison);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("store.count: 5 but the bins add up to 1"),
        "{body}"
    );

    // Flood: 50,000 services in one request.
    let many: Vec<String> = (0..50_000).map(|i| format!(r#""s{i}":{{}}"#)).collect();
    let (st, _, body) = ingest(
        &cp,
        &cp.edge_a,
        &format!(r#"{{"services":{{{}}}}}"#, many.join(",")),
    );
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("services: 50000 entries, the limit is 1000"),
        "{body}"
    );

    // A 1.9 MB service name.
    let long = format!(r#"{{"services":{{"{}":{{}}}}}}"#, "n".repeat(1_900_000));
    let (st, _, body) = ingest(&cp, &cp.edge_a, &long);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("1900000 bytes, the limit is 1024"), "{body}");

    // Negative counts.
    let (st, _, body) = ingest(
        &cp,
        &cp.edge_a,
        r#"{"services":{"api":{"logs":{"volume":{"items":-5}}}}}"#,
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("services.api.logs.volume.items"), "{body}");

    // A body over the size cap.
    let big = format!(r#"{{"services":{{}},"x":"{}"}}"#, "a".repeat(9 << 20));
    let (st, _, _) = ingest(&cp, &cp.edge_a, &big);
    assert_eq!(st, 413);

    // Nothing of any refused request was stored; the honest edge's data arrives exactly.
    assert_eq!(ingest(&cp, &cp.edge_b, &honest(5)).0, 204);
    assert_eq!(shop_items(&cp), 12);
    let (_, _, services) = call(cp.port, "GET", "/api/v1/services", &cp.admin, b"");
    assert!(!services.contains("\"api\""), "{services}");
    alive_and_bounded(&mut cp);
}

#[test]
fn quotas_answer_429_with_retry_after_and_spare_other_edges() {
    let mut cp = start("    ingest: {requests_per_minute: 3}");
    for _ in 0..3 {
        assert_eq!(ingest(&cp, &cp.edge_a, &honest(1)).0, 204);
    }
    let (st, head, body) = ingest(&cp, &cp.edge_a, &honest(1));
    assert_eq!(st, 429, "{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    // Another edge's token has its own quota.
    assert_eq!(ingest(&cp, &cp.edge_b, &honest(10)).0, 204);
    assert_eq!(shop_items(&cp), 13);
    alive_and_bounded(&mut cp);
}

fn sync(cp: &ControlPlane, token: &str, instance: &str, hits: i64) -> (u16, String) {
    let body = format!(
        r#"{{"clientMetadata":{{"resourceAttributes":[{{"key":"service.instance.id","value":{{"stringValue":"{instance}"}}}}]}},"policyStatuses":[{{"id":"p1","matchHits":"{hits}","matchMisses":"0"}}]}}"#
    );
    let (st, _, b) = call(cp.port, "POST", "/v1/policy/sync", token, body.as_bytes());
    (st, b)
}

#[test]
fn an_edge_cannot_report_for_another_nor_forge_counts() {
    let mut cp = start("");
    let policy = r#"{"policy":{"id":"p1","name":"drop debug","log":{"match":[{"log_field":"severity_text","exact":"DEBUG"}],"keep":"none"}}}"#;
    let (st, _, body) = call(
        cp.port,
        "POST",
        "/api/v1/policies",
        &cp.admin,
        policy.as_bytes(),
    );
    assert_eq!(st, 201, "{body}");
    assert_eq!(sync(&cp, &cp.edge_a, "host-1", 10).0, 200);
    // edge-b claims edge-a's instance id: recorded under its own name.
    assert_eq!(sync(&cp, &cp.edge_b, "host-1", 1000).0, 200);
    // Negative hits are refused; nothing is added.
    let (st, body) = sync(&cp, &cp.edge_a, "host-1", -500);
    assert!(st >= 400, "{st} {body}");
    let (_, _, edges) = call(cp.port, "GET", "/api/v1/edges", &cp.admin, b"");
    let v: serde_json::Value = serde_json::from_str(&edges).unwrap();
    let mut ids: Vec<&str> = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["instance_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["edge-a/host-1", "edge-b/host-1"]);
    let (_, _, p) = call(cp.port, "GET", "/api/v1/policies", &cp.admin, b"");
    let v: serde_json::Value = serde_json::from_str(&p).unwrap();
    assert_eq!(v["policies"][0]["hits"], 1010, "{p}");
    // A token made without --edge is refused by the CLI.
    let out = weir()
        .args(["admin", "token", "create", "--db"])
        .arg(cp.dir.path().join("cp.db"))
        .args(["--role", "edge"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --edge NAME"));
    alive_and_bounded(&mut cp);
}

#[test]
fn half_open_and_slow_clients_neither_hold_resources_nor_lock_out_viewers() {
    let mut cp = start(
        "    connections: {max_connections: 256, header_read_timeout: 1s, body_read_timeout: 2s, idle_timeout: 3s}",
    );
    // 1,000 connections that never send a byte (most of them beyond the cap, waiting in
    // the backlog), opened from 20 threads while the rest of the test goes on.
    let port = cp.port;
    let openers: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                (0..50)
                    .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A body at one byte per 500 ms.
    let mut slow = TcpStream::connect(("127.0.0.1", cp.port)).unwrap();
    slow.write_all(
        format!(
            "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
            cp.edge_a
        )
        .as_bytes(),
    )
    .unwrap();
    let started = Instant::now();
    let dribble = std::thread::spawn(move || {
        let mut sent = 0;
        while sent < 100 && slow.write_all(b" ").is_ok() {
            sent += 1;
            std::thread::sleep(Duration::from_millis(500));
        }
        slow.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut out = String::new();
        let _ = slow.read_to_string(&mut out);
        (sent, out)
    });
    // A viewer gets in within a few header timeouts.
    let t = Instant::now();
    let (st, _, body) = call(cp.port, "GET", "/api/v1/overview", &cp.admin, b"");
    assert_eq!(st, 200, "{body}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "viewer waited {:?}",
        t.elapsed()
    );
    let (sent, answer) = dribble.join().unwrap();
    assert!(sent < 100, "the slow body was read to its end");
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.is_empty(),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // The half-open connections were closed by the server.
    let mut idle: Vec<TcpStream> = openers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(idle.len() >= 200, "{} connections", idle.len());
    // Every one of them is closed by the server (header_read_timeout after its accept).
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in idle.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a half-open connection still open after 15 s: {other:?}"),
        }
    }
    assert_eq!(ingest(&cp, &cp.edge_b, &honest(3)).0, 204);
    assert_eq!(shop_items(&cp), 3);
    alive_and_bounded(&mut cp);
}
