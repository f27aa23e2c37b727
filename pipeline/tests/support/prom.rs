//! Real Prometheus and node_exporter processes for tests, on loopback, on free ports, with
//! their data in a temporary directory (never the system services). Debian's `prometheus`
//! and `prometheus-node-exporter` packages provide them; `scripts/test.sh` installs both.
//! A missing binary fails the test with a message saying how to install it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (the shared helper; includers also declare `mod support`).
pub use crate::support::free_port;

/// The path of `binary` on `PATH`; panics with how to install `package` when absent.
pub fn require(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(binary);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{binary}` is not installed; this test runs the real thing. Install Debian's \
         `{package}` package (`apt-get install -y {package}`; scripts/test.sh does it)"
    );
}

/// One HTTP/1.0 request to 127.0.0.1:`port`; `(status, body)`, `None` when nothing answers.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn wait_ready(child: &mut Child, port: u16, path: &str, log: &Path, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Some((200, _)) = http(port, "GET", path, b"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} not ready on port {port} within 60 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Sorted label pairs, `__name__` included.
pub type Labels = Vec<(String, String)>;

/// A Prometheus server of its own: `--web.listen-address` on loopback, TSDB in a
/// temporary directory, remote-write receiver on. Killed on drop.
pub struct Prometheus {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `scrape_configs` (YAML list items, indented two spaces) and
    /// a 1 s global scrape interval; returns once `/-/ready` answers 200.
    pub fn start(scrape_configs: &str) -> Prometheus {
        Prometheus::start_on(free_port(), scrape_configs)
    }

    /// As [`Prometheus::start`], on a port chosen beforehand (so that it can scrape itself).
    pub fn start_on(port: u16, scrape_configs: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let mut p = Prometheus {
            port,
            child: None,
            dir,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let bin = require("prometheus", "prometheus");
        let log_path = self.dir.path().join("prometheus.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_ready(&mut child, self.port, "/-/ready", &log_path, "prometheus");
        self.child = Some(child);
    }

    /// Stops the process (SIGTERM, so the TSDB's head is kept in its WAL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>?<query>` parsed as JSON; panics unless `status` is `success`.
    pub fn api(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let qs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let url = format!("/api/v1/{path}?{}", qs.join("&"));
        let (status, body) = http(self.port, "GET", &url, b"")
            .unwrap_or_else(|| panic!("prometheus did not answer {url}"));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{url}: HTTP {status}: not JSON ({e}): {body}"));
        assert_eq!(v["status"], "success", "{url}: {body}");
        v["data"].clone()
    }

    /// An instant query: each series as (sorted labels with `__name__`, value text).
    pub fn query(&self, expr: &str) -> Vec<(Labels, String)> {
        let data = self.api("query", &[("query", expr)]);
        let mut out: Vec<(Vec<(String, String)>, String)> = data["result"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|r| {
                let mut labels: Vec<(String, String)> = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                labels.sort();
                (labels, r["value"][1].as_str().unwrap().to_string())
            })
            .collect();
        out.sort();
        out
    }

    /// Every sample of a range-vector selector (`name{...}[5m]`), evaluated now: per
    /// series, its labels and `(timestamp ms, value)`.
    pub fn samples(&self, selector: &str) -> Vec<(Labels, Vec<(i64, String)>)> {
        let data = self.api("query", &[("query", selector)]);
        let mut out: Vec<_> = data["result"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|r| {
                let mut labels: Vec<(String, String)> = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                labels.sort();
                let values = r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let ts = p[0].as_f64().unwrap();
                        (
                            (ts * 1000.0).round() as i64,
                            p[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                (labels, values)
            })
            .collect();
        out.sort();
        out
    }

    /// Polls `check` every 200 ms until it returns `Some` or `limit` passes.
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        mut check: impl FnMut(&Prometheus) -> Option<T>,
    ) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Some(t) = check(self) {
                return Some(t);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A node_exporter of its own on loopback. Killed on drop.
pub struct NodeExporter {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl NodeExporter {
    /// Starts `prometheus-node-exporter` with its default collectors plus `extra` flags;
    /// returns once `/metrics` answers 200 (with `--web.config.file`, which may turn TLS
    /// on, once the port accepts connections).
    pub fn start(extra: &[&str]) -> NodeExporter {
        let bin = require("prometheus-node-exporter", "prometheus-node-exporter");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log_path = dir.path().join("node_exporter.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        if extra.iter().any(|a| a.starts_with("--web.config.file")) {
            // TLS: plain HTTP gets 400; wait until the port accepts connections.
            let start = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "node_exporter exited ({status}):\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "node_exporter (TLS) not listening on {port}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        } else {
            wait_ready(&mut child, port, "/metrics", &log_path, "node_exporter");
        }
        NodeExporter {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
