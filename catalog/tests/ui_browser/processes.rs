//! The processes and servers around the UI test: the control plane over HTTP (enrolment,
//! policies, edges' sync status, a sync as an edge does it), the edge `weir` process and
//! the upstream that counts what the edge lets through.

use super::common::free_port;
use axum::body::Bytes;
use prost::Message;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_catalog::store::now_secs;
use weir_catalog::users::{base32_decode, totp};
use weir_policy_contract::proto;

pub const SYNC_INTERVAL_SECS: u32 = 1;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty())
}

/// A child process killed when the test ends, however it ends.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// One HTTP/1.0 request; returns status and body.
pub fn http(method: &str, port: u16, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Enrols `user` over the API with its enrolment secret; returns its TOTP secret.
pub fn enrol(port: u16, user: &str, secret: &str, password: &str) -> Vec<u8> {
    let (st, body) = http(
        "POST",
        port,
        "/api/v1/enrol/start",
        "",
        Some(&serde_json::json!({"user": user, "secret": secret}).to_string()),
    );
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let t = base32_decode(v["totp_secret"].as_str().unwrap()).unwrap();
    let code = format!("{:06}", totp(&t, now_secs() as u64));
    let (st, body) = http(
        "POST",
        port,
        "/api/v1/enrol/finish",
        "",
        Some(
            &serde_json::json!({"user": user, "secret": secret, "password": password, "code": code})
                .to_string(),
        ),
    );
    assert_eq!(st, 204, "{body}");
    t
}

pub fn get_json(port: u16, path: &str, token: &str) -> serde_json::Value {
    let (st, body) = http("GET", port, path, token, None);
    assert_eq!(st, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The upstream backend behind the edge: counts log records, and DEBUG ones.
#[derive(Default)]
pub struct Upstream {
    pub records: AtomicU64,
    pub debug: AtomicU64,
}

pub async fn start_upstream() -> (u16, Arc<Upstream>) {
    let counts = Arc::new(Upstream::default());
    let c = counts.clone();
    let router = axum::Router::new().route(
        "/v1/logs",
        axum::routing::post(move |body: Bytes| {
            let c = c.clone();
            async move {
                let req = ExportLogsServiceRequest::decode(body).unwrap();
                for r in req
                    .resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records)
                {
                    c.records.fetch_add(1, Ordering::SeqCst);
                    if r.severity_text == "DEBUG" {
                        c.debug.fetch_add(1, Ordering::SeqCst);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (port, counts)
}

pub fn start_edge(weir: &Path, dir: &Path, cp: u16, up: u16, edge_token: &str) -> (Process, u16) {
    let (otlp, health, metrics) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{otlp}'}}
processors:
  policy:
    sources:
      - http:
          endpoint: 'http://127.0.0.1:{cp}/v1/policy/sync'
          headers: {{authorization: 'Bearer {edge_token}'}}
          cache_dir: '{cache}'
    client: {{service_name: weir-edge}}
exporters:
  otlp_http:
    endpoint: 'http://127.0.0.1:{up}'
    compression: none
  catalog:
    endpoint: 'http://127.0.0.1:{cp}'
    token: '{edge_token}'
    flush_interval: 1s
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: '127.0.0.1:{metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [policy], exporters: [otlp_http]}}
    logs/catalog: {{receivers: [otlp], exporters: [catalog]}}
",
        cache = dir.join("cache").display()
    );
    let path = dir.join("edge.yaml");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new(weir)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("edge.log")).unwrap())
        .spawn()
        .unwrap();
    let edge = Process(child);
    let up = wait_until(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", otlp)).is_ok()
    });
    assert!(up.is_some(), "edge never listened: {}", edge_log(dir));
    (edge, otlp)
}

pub fn edge_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("edge.log")).unwrap_or_default()
}

pub fn policy(port: u16, id: &str, token: &str) -> serde_json::Value {
    get_json(port, &format!("/api/v1/policies/{id}"), token)
}

pub fn policy_entry(port: u16, id: &str, token: &str) -> serde_json::Value {
    get_json(port, "/api/v1/policies", token)["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"]["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("policy {id} not listed"))
}

pub fn edges_in_sync(port: u16, token: &str) -> bool {
    let v = get_json(port, "/api/v1/policies", token);
    // The real edge (client.service_name weir-edge), not this test's own sync calls.
    v["edges"].as_array().is_some_and(|e| {
        e.iter()
            .any(|e| e["service"] == "weir-edge" && e["in_sync"] == true)
    })
}

/// Policy sync as an edge does it (protobuf over HTTP): the policies served now.
pub fn sync_as_edge(port: u16, edge_token: &str) -> proto::SyncResponse {
    let req = proto::SyncRequest {
        client_metadata: Some(proto::ClientMetadata {
            resource_attributes: vec![
                kv("service.instance.id", "ui-test-probe"),
                kv("service.name", "ui-test"),
            ],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/policy/sync HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {edge_token}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        req.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(out.starts_with(b"HTTP/1.0 200") || out.starts_with(b"HTTP/1.1 200"));
    proto::SyncResponse::decode(&out[split + 4..]).unwrap()
}
