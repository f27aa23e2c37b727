//! Reloading with the real binary: SIGHUP under continuous OTLP traffic loses nothing and
//! leaves Weir running; a WASM module replaced on disk is picked up (by polling or on
//! SIGHUP); a broken replacement is refused, logged with its path and error, and the old
//! module keeps running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use support::*;

/// Answers "unchanged" (0): every record passes.
fn pass_guest() -> Vec<u8> {
    logs_guest(&[0x41, 0, 0x0b])
}

/// Answers one verdict byte, "drop", read from zeroed memory at 8: drops the record of a
/// one-record batch. (`weir_output(8, 1)`, return 1.)
fn drop_one_guest() -> Vec<u8> {
    logs_guest(&[0x41, 8, 0x41, 1, 0x10, 0, 0x41, 1, 0x0b])
}

/// Starts like a module and then is not one.
fn broken_guest() -> Vec<u8> {
    b"\0asm\x01\0\0\0this is not a module".to_vec()
}

/// Writes the module beside and renames it into place, as a deploy would.
fn install(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join("m.wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join("m.wasm")).unwrap();
}

fn one_record(body: &str) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(body.to_string())),
                    }),
                    severity_number: 9,
                    ..Default::default()
                }],
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

/// Records whose body starts with `prefix` in the file exporter's output.
fn arrived(dir: &Path, prefix: &str) -> usize {
    std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap_or_default()
        .matches(&format!("\"stringValue\":\"{prefix}"))
        .count()
}

fn wait_arrived(dir: &Path, prefix: &str, want: usize) -> usize {
    let t = Instant::now();
    while arrived(dir, prefix) < want && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    arrived(dir, prefix)
}

fn wait_log(dir: &Path, needle: &str, times: usize) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if log_of(dir).matches(needle).count() >= times {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sighup(child: &Child) {
    let ok = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `weir_processor_dropped_items_total` of the wasm processor, from the metrics endpoint.
fn dropped(metrics: u16) -> u64 {
    let (_, body) = http_get(metrics, "/metrics").unwrap();
    body.lines()
        .filter(|l| l.starts_with("weir_processor_dropped_items_total") && l.contains("wasm/m"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn config(dir: &Path, ports: &Ports, poll: &str) -> std::path::PathBuf {
    let text = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{http}'}}
processors:
  wasm/m:
    module: ./m.wasm
    poll_interval: {poll}
  policy:
    sources:
      - file: {{path: ./policies.yaml, watch: false}}
exporters:
  file: {{path: ./out.jsonl, flush_interval: 0s}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], processors: [policy, wasm/m], exporters: [file]}}
",
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    );
    write(dir, "weir.yaml", &text)
}

fn start(dir: &Path, poll: &str) -> (Child, Ports) {
    let ports = Ports::pick();
    let config = config(dir, &ports, poll);
    let weir = spawn(dir, &config, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_some(),
        "weir did not become healthy: {}",
        log_of(dir)
    );
    (weir, ports)
}

fn stop(mut weir: Child, dir: &Path) {
    sigterm(&weir);
    let status = wait_exit(&mut weir, Duration::from_secs(20)).expect("weir stops on SIGTERM");
    assert!(status.success(), "exit {status:?}: {}", log_of(dir));
}

#[test]
fn sighup_under_traffic_loses_nothing_keeps_running_and_reloads_the_module() {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install(d, &pass_guest());
    write(d, "policies.yaml", "policies: []\n");
    // Polling off: only SIGHUP reloads.
    let (weir, ports) = start(d, "0s");

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let port = ports.http;
            std::thread::spawn(move || {
                for r in 0..REQUESTS {
                    assert_eq!(post(port, &one_record(&format!("hup-{c}-{r}"))), 200);
                }
            })
        })
        .collect();
    // SIGHUPs while the clients send.
    let mut hups = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        sighup(&weir);
        hups += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        hups >= 3,
        "only {hups} SIGHUPs were sent during the traffic"
    );
    let total = CLIENTS * REQUESTS;
    assert_eq!(wait_arrived(d, "hup-", total), total, "{}", log_of(d));
    // Signals that arrive while a reload runs are merged into one, so there may be fewer
    // lines than signals, but at least one.
    assert!(wait_log(d, "reload done", 1), "{}", log_of(d));
    assert!(log_of(d).matches("reload done").count() <= hups);
    let mut weir = weir;
    assert!(weir.try_wait().unwrap().is_none(), "weir died on SIGHUP");

    // Policy files (watch: false) reload on SIGHUP.
    write(
        d,
        "policies.yaml",
        "policies:\n  - {id: no-secret, name: s, log: {match: [{log_field: body, contains: secret}], keep: none}}\n",
    );
    assert_eq!(post(ports.http, &one_record("secret-0")), 200);
    assert_eq!(wait_arrived(d, "secret-", 1), 1);
    sighup(&weir);
    assert!(wait_log(d, "reloaded=1", 1), "{}", log_of(d));
    assert_eq!(post(ports.http, &one_record("secret-1")), 200);
    assert_eq!(post(ports.http, &one_record("plain-0")), 200);
    assert_eq!(wait_arrived(d, "plain-", 1), 1);
    assert_eq!(arrived(d, "secret-"), 1, "the reloaded policy did not drop");

    // A new module on disk is not picked up without a poll...
    install(d, &drop_one_guest());
    assert_eq!(post(ports.http, &one_record("before-hup")), 200);
    assert_eq!(wait_arrived(d, "before-hup", 1), 1);
    // ...and is after SIGHUP, which also says so in its line.
    sighup(&weir);
    assert!(wait_log(d, "reloaded=1", 2), "{}", log_of(d));
    assert!(wait_log(d, "WASM module reloaded", 1), "{}", log_of(d));
    for i in 0..3 {
        assert_eq!(
            post(ports.http, &one_record(&format!("after-hup-{i}"))),
            200
        );
    }
    let t = Instant::now();
    while dropped(ports.metrics) < 3 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(dropped(ports.metrics), 3);
    assert_eq!(arrived(d, "after-hup-"), 0);
    stop(weir, d);
}

#[test]
fn a_replaced_module_file_is_picked_up_and_a_broken_one_keeps_the_old_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install(d, &pass_guest());
    write(d, "policies.yaml", "policies: []\n");
    let (weir, ports) = start(d, "100ms");
    for i in 0..5 {
        assert_eq!(post(ports.http, &one_record(&format!("a-{i}"))), 200);
    }
    assert_eq!(wait_arrived(d, "a-", 5), 5);

    // Broken: refused with the path and wasmtime's reason; the pass module keeps running.
    install(d, &broken_guest());
    assert!(wait_log(d, "new WASM module refused", 1), "{}", log_of(d));
    let log = log_of(d);
    let line = log
        .lines()
        .find(|l| l.contains("new WASM module refused"))
        .unwrap();
    assert!(line.contains("m.wasm"), "{line}");
    assert!(line.contains("cannot compile"), "{line}");
    for i in 0..5 {
        assert_eq!(post(ports.http, &one_record(&format!("b-{i}"))), 200);
    }
    assert_eq!(wait_arrived(d, "b-", 5), 5);
    // Logged once, not at every poll.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(log_of(d).matches("new WASM module refused").count(), 1);

    // A valid different module: picked up by the poll, new behaviour.
    install(d, &drop_one_guest());
    assert!(wait_log(d, "WASM module reloaded", 1), "{}", log_of(d));
    for i in 0..5 {
        assert_eq!(post(ports.http, &one_record(&format!("c-{i}"))), 200);
    }
    let t = Instant::now();
    while dropped(ports.metrics) < 5 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(dropped(ports.metrics), 5);
    assert_eq!(arrived(d, "c-"), 0);
    assert_eq!(arrived(d, "a-") + arrived(d, "b-"), 10);
    stop(weir, d);
}

#[test]
fn weir_validate_refuses_a_logs_module_in_a_traces_pipeline_naming_both_signals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install(d, &pass_guest()); // exports weir_process_logs only
    let config = write(
        d,
        "weir.yaml",
        "receivers: {otlp: {protocols: {http: {endpoint: '127.0.0.1:0'}}}}
processors: {wasm/m: {module: ./m.wasm}}
exporters: {debug: {}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [wasm/m], exporters: [debug]}
",
    );
    let out = weir()
        .current_dir(d)
        .arg("validate")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("processors.wasm/m.module: WASM module ./m.wasm declares the signal(s) logs but is in a traces pipeline"),
        "{text}"
    );
}
