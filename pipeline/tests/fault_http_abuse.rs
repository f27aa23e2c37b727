//! Fault: abusive OTLP/HTTP clients against the real `weir`: a 64 MiB body, truncated
//! bodies, slow headers and bodies (slowloris), and 1,000 connections at once. Weir answers
//! each with the right status, stays up, and keeps serving well-behaved clients, whose
//! records all arrive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use support::*;

fn log_request(bodies: &[String]) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|b| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(b.clone())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Weir with OTLP/HTTP in (1 s header and body timeouts, 20 MiB body limit) and a `file`
/// exporter, so what arrives can be counted.
fn start(dir: &Path) -> (Child, Ports) {
    let ports = Ports::pick();
    let out = dir.join("out.jsonl");
    let config = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{http}', read_header_timeout: 1s, read_timeout: 1s}}
exporters:
  file: {{path: '{out}'}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [file]}}
",
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
        out = out.display(),
    );
    let config = write(dir, "weir.yaml", &config);
    let weir = spawn(dir, &config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(20)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir)
    );
    (weir, ports)
}

/// Headers of a protobuf POST to /v1/logs declaring `len` body bytes.
fn head(len: usize) -> String {
    format!(
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// Reads an HTTP answer to its end and returns the status code (0 when the connection was
/// closed without one).
fn read_status(s: &mut TcpStream) -> u16 {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A well-behaved client's POST of `bodies`; returns the status.
fn post_logs(port: u16, bodies: &[String]) -> u16 {
    let body = log_request(bodies);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(head(body.len()).as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    read_status(&mut s)
}

/// Log records written by the `file` exporter, counted by body text.
fn arrived(dir: &Path, prefix: &str) -> usize {
    let text = std::fs::read_to_string(dir.join("out.jsonl")).unwrap_or_default();
    text.matches(&format!("\"stringValue\":\"{prefix}")).count()
}

fn wait_arrived(dir: &Path, prefix: &str, want: usize) -> usize {
    let start = Instant::now();
    while arrived(dir, prefix) < want && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    arrived(dir, prefix)
}

fn stop(mut weir: Child, dir: &Path) {
    assert!(
        weir.try_wait().unwrap().is_none(),
        "weir exited: {}",
        log_of(dir)
    );
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}

#[test]
fn body_of_64_mib_gets_413_and_weir_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (weir, ports) = start(dir.path());
    let len = 64 << 20;
    let mut s = TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
    s.write_all(head(len).as_bytes()).unwrap();
    let mut writer = s.try_clone().unwrap();
    // Weir may answer and close before the whole body is in: stop writing then.
    let pump = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        while sent < len && writer.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    assert_eq!(read_status(&mut s), 413);
    drop(s);
    pump.join().unwrap();
    let ok = vec!["big-after-0".to_string()];
    assert_eq!(post_logs(ports.http, &ok), 200);
    assert_eq!(wait_arrived(dir.path(), "big-after", 1), 1);
    stop(weir, dir.path());
}

#[test]
fn truncated_bodies_get_400_or_a_closed_connection_and_nothing_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (weir, ports) = start(dir.path());
    let full = log_request(&["cut-0".to_string(), "cut-1".to_string()]);
    // A protobuf message cut in the middle, with a Content-Length that matches the cut.
    let cut = &full[..full.len() - 3];
    let mut s = TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
    s.write_all(head(cut.len()).as_bytes()).unwrap();
    s.write_all(cut).unwrap();
    assert_eq!(read_status(&mut s), 400);
    // The connection is cut before the declared Content-Length is in: there is no
    // request to answer, and nothing of it may arrive.
    let mut s = TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
    s.write_all(head(full.len()).as_bytes()).unwrap();
    s.write_all(&full[..full.len() / 2]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let status = read_status(&mut s);
    assert!(status == 0 || status == 400, "status {status}");
    let ok = vec!["after-cut-0".to_string()];
    assert_eq!(post_logs(ports.http, &ok), 200);
    assert_eq!(wait_arrived(dir.path(), "after-cut", 1), 1);
    assert_eq!(arrived(dir.path(), "cut-"), 0);
    stop(weir, dir.path());
}

#[test]
fn slowloris_headers_and_bodies_are_timed_out_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (weir, ports) = start(dir.path());
    let started = Instant::now();
    // Slow headers: one byte every 100 ms, never finishing.
    let slow_headers = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
        s.write_all(b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(8) {
            if s.write_all(b"X").is_err() {
                return t.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 64];
            let closed = matches!(s.read(&mut b), Ok(0));
            s.set_nonblocking(false).unwrap();
            if closed {
                return t.elapsed();
            }
        }
        t.elapsed()
    });
    // Slow body: headers at once, then one byte every 100 ms.
    let slow_body = std::thread::spawn(move || {
        let body = log_request(&["slow-body-0".to_string()]);
        let mut s = TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
        s.write_all(head(body.len()).as_bytes()).unwrap();
        for b in &body {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        read_status(&mut s)
    });
    // Meanwhile a normal client is served.
    let mut served = 0;
    for i in 0..20 {
        assert_eq!(post_logs(ports.http, &[format!("fast-{i}")]), 200);
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let header_conn_closed_after = slow_headers.join().unwrap();
    assert!(
        header_conn_closed_after < Duration::from_secs(4),
        "slow-header connection kept for {header_conn_closed_after:?}"
    );
    assert_eq!(slow_body.join().unwrap(), 408);
    assert_eq!(wait_arrived(dir.path(), "fast-", served), served);
    assert_eq!(arrived(dir.path(), "slow-body"), 0);
    assert!(started.elapsed() < Duration::from_secs(15));
    stop(weir, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_are_all_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CONNS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let (weir, ports) = start(dir.path());
    // Open them all first, then send on each, so they are all open at once.
    let mut streams = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        streams.push(
            tokio::net::TcpStream::connect(("127.0.0.1", ports.http))
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::with_capacity(CONNS);
    for (i, mut s) in streams.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let body = log_request(&[format!("conn-{i}")]);
            s.write_all(head(body.len()).as_bytes()).await.unwrap();
            s.write_all(&body).await.unwrap();
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
                .await
                .unwrap()
                .unwrap();
            String::from_utf8_lossy(&out)
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(0)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, CONNS);
    let dir_path = dir.path().to_path_buf();
    let n = tokio::task::spawn_blocking(move || wait_arrived(&dir_path, "conn-", CONNS))
        .await
        .unwrap();
    assert_eq!(n, CONNS);
    stop(weir, dir.path());
}
