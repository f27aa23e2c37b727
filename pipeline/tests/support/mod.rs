//! Helpers for tests that run the real `weir` binary on 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// A loopback port nothing listens on now, never the same one twice in a test process.
#[allow(unused_imports)] // not every test binary picks a port
pub use weir_api::fixtures::free_port;

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

/// A guest in the binary format (the test has no WAT compiler) whose `weir_process_logs`
/// body is `body`. Imports `weir_output` as function 0.
pub fn logs_guest(body: &[u8]) -> Vec<u8> {
    fn name(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }
    fn section(id: u8, items: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![items.len() as u8];
        for i in items {
            body.extend_from_slice(i);
        }
        assert!(body.len() < 128);
        let mut v = vec![id, body.len() as u8];
        v.extend(body);
        v
    }
    fn export(n: &str, kind: u8, index: u8) -> Vec<u8> {
        let mut v = name(n);
        v.extend([kind, index]);
        v
    }
    fn code(body: &[u8]) -> Vec<u8> {
        let mut v = vec![body.len() as u8 + 1, 0]; // size, no locals
        v.extend_from_slice(body);
        v
    }
    let (i32_, func) = (0x7f, 0x60);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend(section(
        1,
        &[
            vec![func, 2, i32_, i32_, 0],
            vec![func, 0, 1, i32_],
            vec![func, 1, i32_, 1, i32_],
            vec![func, 2, i32_, i32_, 1, i32_],
        ],
    ));
    let mut import = name("weir");
    import.extend(name("weir_output"));
    import.extend([0, 0]);
    m.extend(section(2, &[import]));
    m.extend(section(3, &[vec![1], vec![2], vec![3]]));
    m.extend(section(5, &[vec![0, 2]]));
    m.extend(section(
        7,
        &[
            export("memory", 2, 0),
            export("weir_abi_version", 0, 1),
            export("weir_alloc", 0, 2),
            export("weir_process_logs", 0, 3),
        ],
    ));
    m.extend(section(
        10,
        &[
            code(&[0x41, 1, 0x0b]),
            code(&[0x41, 0x80, 0x08, 0x0b]),
            code(body),
        ],
    ));
    m
}
