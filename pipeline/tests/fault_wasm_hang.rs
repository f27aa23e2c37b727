//! Fault: a WASM processor whose guest loops forever on every batch, under load. Each batch
//! is cut off at the deadline and passed on unchanged (fail open): every record arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use support::*;

/// A guest that never returns from `weir_process_logs`, as WAT:
///
/// ```wat
/// (module
///   (import "weir" "weir_output" (func (param i32 i32)))
///   (memory (export "memory") 2)
///   (func (export "weir_abi_version") (result i32) i32.const 1)
///   (func (export "weir_alloc") (param i32) (result i32) i32.const 1024)
///   (func (export "weir_process_logs") (param i32 i32) (result i32)
///     (loop $forever (br $forever))
///     i32.const 0))
/// ```
///
/// encoded here by hand as the binary format, since weir loads `.wasm` files and the test
/// has no WAT compiler.
fn hanging_guest() -> Vec<u8> {
    // loop (empty block type) br 0 end; i32.const 0; end
    logs_guest(&[0x03, 0x40, 0x0c, 0, 0x0b, 0x41, 0, 0x0b])
}

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
                        severity_number: 9,
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

fn arrived(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("out.jsonl")).unwrap_or_default()
}

#[test]
fn hanging_wasm_guest_under_load_lets_every_record_through_unchanged() {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 10;
    const RECORDS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hang.wasm"), hanging_guest()).unwrap();
    let ports = Ports::pick();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{http}'}}
processors:
  wasm/hang:
    module: ./hang.wasm
    timeout: 50ms
exporters:
  file: {{path: ./out.jsonl, flush_interval: 0s}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], processors: [wasm/hang], exporters: [file]}}
",
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    );
    let config = write(dir.path(), "weir.yaml", &config);
    let mut weir = spawn(dir.path(), &config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir.path())
    );
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let port = ports.http;
            std::thread::spawn(move || {
                for r in 0..REQUESTS {
                    let bodies: Vec<String> =
                        (0..RECORDS).map(|i| format!("hang-{c}-{r}-{i}")).collect();
                    assert_eq!(post(port, &log_request(&bodies)), 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = started.elapsed();
    let total = CLIENTS * REQUESTS * RECORDS;
    let t = Instant::now();
    while arrived(dir.path())
        .matches("\"stringValue\":\"hang-")
        .count()
        < total
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = arrived(dir.path());
    assert_eq!(out.matches("\"stringValue\":\"hang-").count(), total);
    for c in 0..CLIENTS {
        for r in 0..REQUESTS {
            for i in 0..RECORDS {
                assert_eq!(
                    out.matches(&format!("\"stringValue\":\"hang-{c}-{r}-{i}\""))
                        .count(),
                    1,
                    "hang-{c}-{r}-{i}"
                );
            }
        }
    }
    // Unchanged: the severity the client set is still there on every record.
    assert_eq!(out.matches("\"severityNumber\":9").count(), total);
    // Each of the 40 batches waited for the 50 ms deadline, not longer.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let (_, metrics) = http_get(ports.metrics, "/metrics").unwrap();
    let timeouts: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("weir_wasm_failures_total{") && l.contains("cause=\"timeout\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(timeouts, (CLIENTS * REQUESTS) as f64, "{metrics}");
    assert!(weir.try_wait().unwrap().is_none());
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
