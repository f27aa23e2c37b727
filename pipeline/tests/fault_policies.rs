//! Fault: a policy set of 10,000 policies loaded from a directory. Weir starts, forwards,
//! and drops exactly what the policies say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use support::*;

const POLICIES: usize = 10_000;

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    })
}

/// Records with body `body` and attribute `k`.
fn log_request(records: &[(String, String)]) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records
                    .iter()
                    .map(|(body, k)| LogRecord {
                        body: string(body),
                        attributes: vec![KeyValue {
                            key: "k".into(),
                            value: string(k),
                            ..Default::default()
                        }],
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

fn post(port: u16, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn arrived(dir: &Path, prefix: &str) -> usize {
    std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap_or_default()
        .matches(&format!("\"stringValue\":\"{prefix}"))
        .count()
}

/// 100 files of 100 policies; policy `i` drops logs whose attribute `k` is `drop-{i}`.
fn write_policies(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in 0..100 {
        let mut text = String::new();
        for i in file * 100..(file + 1) * 100 {
            text.push_str(&format!(
                "- {{id: drop-{i}, name: drop {i}, log: {{match: [{{log_attribute: k, exact: drop-{i}}}], keep: none}}}}\n"
            ));
        }
        std::fs::write(dir.join(format!("set-{file:03}.yaml")), text).unwrap();
    }
}

#[test]
fn ten_thousand_policies_load_and_drop_exactly_their_matches() {
    let dir = tempfile::tempdir().unwrap();
    write_policies(&dir.path().join("policies"));
    let ports = Ports::pick();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{http}'}}
processors:
  policy:
    sources:
      - file: {{path: ./policies, watch: false}}
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
    let started = Instant::now();
    let mut weir = spawn(dir.path(), &config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir.path())
    );
    let startup = started.elapsed();
    // 20 requests of 50 records: every other record matches one of the policies (spread
    // over the whole set, first and last included), the rest match none.
    let (mut kept, mut dropped) = (0, 0);
    for req in 0..20 {
        let mut records = Vec::new();
        for j in 0..50 {
            let n = req * 50 + j;
            if n % 2 == 0 {
                let policy = if n == 0 {
                    POLICIES - 1
                } else {
                    (n * 7919) % POLICIES
                };
                records.push((format!("rec-drop-{n}"), format!("drop-{policy}")));
                dropped += 1;
            } else {
                // Near misses: a prefix of a policy value, and a value past the last policy.
                let k = if n % 4 == 1 {
                    format!("drop-{}x", n % POLICIES)
                } else {
                    format!("drop-{}", POLICIES + n)
                };
                records.push((format!("rec-keep-{n}"), k));
                kept += 1;
            }
        }
        assert_eq!(post(ports.http, &log_request(&records)), 200);
    }
    assert_eq!((kept, dropped), (500, 500));
    let t = Instant::now();
    while arrived(dir.path(), "rec-keep-") < kept && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        arrived(dir.path(), "rec-keep-"),
        kept,
        "{}",
        log_of(dir.path())
    );
    assert_eq!(arrived(dir.path(), "rec-drop-"), 0);
    let (_, metrics) = http_get(ports.metrics, "/metrics").unwrap();
    let invalid: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("weir_policy_invalid{"))
        .collect();
    assert!(
        invalid.iter().all(|l| l.ends_with(" 0")),
        "policies with errors: {invalid:?}"
    );
    assert!(
        startup < Duration::from_secs(30),
        "startup took {startup:?}"
    );
    assert!(weir.try_wait().unwrap().is_none());
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
