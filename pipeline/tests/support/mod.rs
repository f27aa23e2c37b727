//! Helpers for tests that run the real `weir` binary on 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// A port that was free a moment ago (bound to :0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A plain HTTP/1.0 GET; `None` when nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Polls `GET path` until it answers `want` or `limit` passes.
pub fn wait_for_status(port: u16, path: &str, want: u16, limit: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some((status, body)) = http_get(port, path) {
            if status == want {
                return Some(body);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Sends SIGTERM to a child.
pub fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for a child to exit, killing it after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Ports of one running weir.
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
    pub health: u16,
    pub metrics: u16,
}

impl Ports {
    pub fn pick() -> Ports {
        Ports {
            grpc: free_port(),
            http: free_port(),
            health: free_port(),
            metrics: free_port(),
        }
    }
}

/// A runnable config: otlp in on `ports`, batch, the given exporters section and list.
pub fn runnable_config(ports: &Ports, exporters_yaml: &str, exporter_ids: &str) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
      http: {{endpoint: '127.0.0.1:{http}'}}
processors:
  batch: {{timeout: 50ms}}
exporters:
{exporters_yaml}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], processors: [batch], exporters: [{exporter_ids}]}}
    traces: {{receivers: [otlp], processors: [batch], exporters: [{exporter_ids}]}}
    metrics: {{receivers: [otlp], processors: [batch], exporters: [{exporter_ids}]}}
",
        grpc = ports.grpc,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    )
}

/// Starts weir with a config file, stderr captured to a file in `dir` (readable after exit).
pub fn spawn(dir: &Path, config: &Path, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("weir.log")).unwrap();
    weir()
        .arg("--config")
        .arg(config)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// What weir logged.
pub fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default()
}
