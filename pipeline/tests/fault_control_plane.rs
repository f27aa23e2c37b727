//! Fault: the control plane goes away during policy sync, first hanging (accepts, never
//! answers), then refusing connections. The edge keeps the policies it has and keeps
//! forwarding: exactly the records they keep arrive, in every phase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SYNC_RESPONSE: &str = r#"{"policies":[{"id":"drop-debug","name":"drop DEBUG","log":{"match":[{"log_field":"severity_text","exact":"DEBUG"}],"keep":"none"}}],"hash":"set-1","recommended_sync_interval_seconds":1}"#;

/// A policy sync endpoint: answers with [`SYNC_RESPONSE`] while `answering`, else reads the
/// request and never answers. `answered` counts answers in its units and unanswered
/// requests in its thousands.
async fn sync_endpoint(
    listener: tokio::net::TcpListener,
    answering: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) {
    loop {
        let (mut s, _) = listener.accept().await.unwrap();
        let (answering, answered) = (answering.clone(), answered.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if !answering.load(Ordering::SeqCst) {
                answered.fetch_add(1_000, Ordering::SeqCst);
                // Gone quiet: hold the connection open and say nothing.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SYNC_RESPONSE}",
                SYNC_RESPONSE.len()
            );
            if s.write_all(answer.as_bytes()).await.is_ok() {
                answered.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

/// 50 DEBUG and 50 INFO records as OTLP JSON, bodies `{round}-debug-{i}` / `{round}-info-{i}`.
fn batch(round: &str) -> String {
    let mut records = Vec::new();
    for i in 0..50 {
        records.push(format!(
            r#"{{"severityText":"DEBUG","body":{{"stringValue":"{round}-debug-{i}"}}}}"#
        ));
        records.push(format!(
            r#"{{"severityText":"INFO","body":{{"stringValue":"{round}-info-{i}"}}}}"#
        ));
    }
    format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

fn post_json(port: u16, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn arrived(dir: &Path, what: &str) -> usize {
    std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap_or_default()
        .matches(&format!("\"stringValue\":\"{what}"))
        .count()
}

async fn wait_until(limit: Duration, f: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// Sends one round and checks exactly its 50 INFO records arrive and no DEBUG one.
async fn round_is_filtered(dir: &Path, port: u16, round: &str) {
    let body = batch(round);
    let status = tokio::task::spawn_blocking(move || post_json(port, &body))
        .await
        .unwrap();
    assert_eq!(status, 200, "round {round}");
    let info = format!("{round}-info-");
    let arrived_all = wait_until(Duration::from_secs(10), || arrived(dir, &info) == 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(arrived_all, "round {round}: {}", log_of(dir));
    assert_eq!(arrived(dir, &info), 50, "round {round}");
    assert_eq!(arrived(dir, &format!("{round}-debug-")), 0, "round {round}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_keeps_its_policies_and_forwards_when_the_control_plane_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cp_port = listener.local_addr().unwrap().port();
    let answering = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicUsize::new(0));
    let cp = tokio::spawn(sync_endpoint(listener, answering.clone(), answered.clone()));

    let ports = Ports::pick();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{http}'}}
processors:
  policy:
    sources:
      - http:
          endpoint: 'http://127.0.0.1:{cp_port}/v1/policy/sync'
          encoding: json
          interval: 1s
          timeout: 500ms
exporters:
  file: {{path: ./out.jsonl, flush_interval: 0s}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], processors: [policy], exporters: [file]}}
",
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    );
    let config = write(dir.path(), "weir.yaml", &config);
    let mut weir = spawn(dir.path(), &config, &[]);
    let health = ports.health;
    let healthy = tokio::task::spawn_blocking(move || {
        wait_for_status(health, "/", 200, Duration::from_secs(20)).is_some()
    })
    .await
    .unwrap();
    assert!(
        healthy,
        "weir did not become healthy: {}",
        log_of(dir.path())
    );
    assert!(
        wait_until(Duration::from_secs(10), || log_of(dir.path())
            .contains("policies synced"))
        .await,
        "the edge never synced: {}",
        log_of(dir.path())
    );

    // 1. The control plane answers: DEBUG is dropped.
    round_is_filtered(dir.path(), ports.http, "up").await;

    // 2. It hangs: syncs time out; the policies stay in force.
    answering.store(false, Ordering::SeqCst);
    let answered_before = answered.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    round_is_filtered(dir.path(), ports.http, "hung").await;
    let during = answered.load(Ordering::SeqCst) - answered_before;
    assert_eq!(during % 1_000, 0, "no sync was answered while hung");
    assert!(during >= 2_000, "the edge kept trying to sync: {during}");

    // 3. It is gone: connections are refused; still the same.
    cp.abort();
    let _ = cp.await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    round_is_filtered(dir.path(), ports.http, "gone").await;

    assert!(weir.try_wait().unwrap().is_none(), "{}", log_of(dir.path()));
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
