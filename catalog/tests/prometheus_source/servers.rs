//! The servers around the Prometheus source tests: the real Prometheus and node_exporter
//! processes (and a synthetic target), the recording proxy in front of Prometheus, a tiny
//! scripted HTTP server for hostile answers, and direct reads of Prometheus's API.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir_catalog::prometheus::{PromAuth, PromClient};

pub fn require(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(binary);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{binary}` is not installed; this test runs the real thing: apt-get install -y {package}"
    );
}

/// One HTTP/1.0 GET; `(status, body)`.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_string()))
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /api/v1/<path>` straight to Prometheus (not through the proxy): its `data`.
pub fn api(port: u16, path: &str, query: &[(&str, &str)]) -> Value {
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let url = format!("/api/v1/{path}?{}", qs.join("&"));
    let (_, body) = http_get(port, &url).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{url}: {body}");
    v["data"].clone()
}

pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_ready(child: &mut Child, port: u16, path: &str, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        assert!(child.try_wait().unwrap().is_none(), "{what} exited early");
        if let Some((200, _)) = http_get(port, path) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} not ready on {port}");
}

/// The synthetic target: 600 series of `weir_test_sessions` with a `user` label (planted
/// values `u-secret-NNNN`), one used and two unused counters.
pub fn synthetic_metrics() -> String {
    let mut out =
        String::from("# HELP weir_test_sessions Open sessions.\n# TYPE weir_test_sessions gauge\n");
    for i in 0..600 {
        out.push_str(&format!(
            "weir_test_sessions{{user=\"u-secret-{i:04}\",shard=\"s{}\"}} 1\n",
            i % 3
        ));
    }
    out.push_str(
        "# TYPE weir_test_used_total counter\nweir_test_used_total{path=\"/very/secret/path\"} 5\n",
    );
    out.push_str("# TYPE weir_test_unused_total counter\nweir_test_unused_total{code=\"200\"} 1\nweir_test_unused_total{code=\"500\"} 2\n");
    out
}

/// A tiny HTTP server answering every request with `respond(method, path, headers)`
/// (status, extra headers, body); records the request lines.
pub fn serve(
    respond: impl Fn(&str, &str, &str) -> (u16, String, Vec<u8>) + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let seen = seen2.clone();
            let respond = respond.clone();
            std::thread::spawn(move || {
                let head = read_head(&mut s);
                let first = head.lines().next().unwrap_or("").to_string();
                seen.lock().unwrap().push(first.clone());
                let mut parts = first.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, extra, body) = respond(method, path, &head);
                let _ = s.write_all(
                    format!("HTTP/1.1 {status} X\r\nConnection: close\r\n{extra}\r\n").as_bytes(),
                );
                let _ = s.write_all(&body);
            });
        }
    });
    (port, seen)
}

pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).to_string()
}

/// A recording proxy in front of `upstream`: one request per connection, forwarded with
/// `Connection: close`; every request line is recorded.
pub fn proxy(upstream: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let head = read_head(&mut s);
                let mut lines = head.lines();
                let first = lines.next().unwrap_or("").to_string();
                seen.lock().unwrap().push(first.clone());
                let mut fwd = format!("{first}\r\n");
                let mut body_len = 0usize;
                for h in lines.filter(|h| !h.is_empty()) {
                    let lower = h.to_ascii_lowercase();
                    if lower.starts_with("connection:") {
                        continue;
                    }
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        body_len = v.trim().parse().unwrap_or(0);
                    }
                    fwd.push_str(h);
                    fwd.push_str("\r\n");
                }
                fwd.push_str("Connection: close\r\n\r\n");
                let mut body = vec![0u8; body_len];
                let _ = s.read_exact(&mut body);
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let _ = up.write_all(fwd.as_bytes());
                let _ = up.write_all(&body);
                let mut resp = Vec::new();
                let _ = up.read_to_end(&mut resp);
                let _ = s.write_all(&resp);
            });
        }
    });
    (port, seen)
}

/// What a change to the Prometheus would show: its config, rules, targets and the series
/// of the synthetic job.
pub fn state(port: u16) -> Value {
    let rules: Vec<Value> = api(port, "rules", &[])["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| serde_json::json!([r["type"], r["name"], r["query"]]))
        .collect();
    let mut targets: Vec<String> = api(port, "targets", &[])["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scrapeUrl"].as_str().unwrap().to_string())
        .collect();
    targets.sort();
    serde_json::json!({
        "config": api(port, "status/config", &[])["yaml"],
        "rules": rules,
        "targets": targets,
        "synthetic_series": api(port, "query", &[("query", "count({job=\"synthetic\"})")])["result"][0]["value"][1],
        "flags": api(port, "status/flags", &[]),
    })
}

/// Runs `f` against a fake server and returns the error text.
pub fn fake_error(
    respond: impl Fn(&str, &str, &str) -> (u16, String, Vec<u8>) + Send + Sync + 'static,
    max: usize,
) -> (String, Vec<String>) {
    let (port, seen) = serve(respond);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(async {
        let c = PromClient::new(
            &format!("http://127.0.0.1:{port}"),
            PromAuth::None,
            &weir_tls::ClientTls::plaintext(),
            max,
            Duration::from_secs(10),
        )
        .unwrap();
        weir_catalog::prometheus::collect(&c, &Default::default(), 1_700_000_000)
            .await
            .unwrap_err()
            .to_string()
    });
    let seen = seen.lock().unwrap().clone();
    (err, seen)
}

pub fn ok_json(body: &str) -> (u16, String, Vec<u8>) {
    (
        200,
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body.as_bytes().to_vec(),
    )
}
