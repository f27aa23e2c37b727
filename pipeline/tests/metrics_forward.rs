//! A metrics request forwarded by the real binary (OTLP/HTTP in, `batch`, OTLP/HTTP out)
//! reaches the upstream byte for byte as it was sent: the receiver checks it without
//! decoding, and nothing encodes it again. The request is written the way prost would not
//! write it (unknown fields, a histogram's bounds one per field instead of packed, a gauge
//! in two parts, fields out of order), so a decode and re-encode anywhere on the way would
//! change the bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use support::*;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

fn ld(out: &mut Vec<u8>, field: u64, body: &[u8]) {
    key(out, field, 2);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn string_attr(key_: &str, value: &str) -> Vec<u8> {
    let mut any = Vec::new();
    ld(&mut any, 1, value.as_bytes());
    let mut kv = Vec::new();
    ld(&mut kv, 1, key_.as_bytes());
    ld(&mut kv, 2, &any);
    kv
}

/// 3 gauge points (in two gauge fields, which prost merges) and 2 histogram points.
fn request() -> Vec<u8> {
    let mut gauge_a = Vec::new();
    for i in 0..2u64 {
        let mut p = Vec::new();
        // value first, attributes last: prost writes them the other way round
        fixed64(&mut p, 4, (1.5 + i as f64).to_bits());
        fixed64(&mut p, 3, 1_700_000_000_000_000_000 + i);
        ld(&mut p, 7, &string_attr("cpu", &i.to_string()));
        ld(&mut gauge_a, 1, &p);
    }
    let mut gauge_b = Vec::new();
    let mut p = Vec::new();
    fixed64(&mut p, 6, 42);
    key(&mut p, 999, 0); // unknown varint field
    varint(&mut p, 7);
    ld(&mut gauge_b, 1, &p);
    let mut gauge_metric = Vec::new();
    ld(&mut gauge_metric, 1, b"system.cpu.utilization");
    ld(&mut gauge_metric, 5, &gauge_a);
    ld(&mut gauge_metric, 3, b"1");
    ld(&mut gauge_metric, 5, &gauge_b);

    let mut histogram = Vec::new();
    for _ in 0..2 {
        let mut p = Vec::new();
        fixed64(&mut p, 4, 3);
        // bounds one value per field (prost packs them)
        for bound in [1.0f64, 5.0] {
            fixed64(&mut p, 7, bound.to_bits());
        }
        let counts: Vec<u8> = [1u64, 1, 1].iter().flat_map(|c| c.to_le_bytes()).collect();
        ld(&mut p, 6, &counts);
        ld(&mut histogram, 1, &p);
    }
    key(&mut histogram, 2, 0);
    varint(&mut histogram, 2);
    let mut histogram_metric = Vec::new();
    ld(&mut histogram_metric, 9, &histogram);
    ld(&mut histogram_metric, 1, b"http.server.request.duration");

    let mut scope = Vec::new();
    ld(&mut scope, 2, &gauge_metric);
    ld(&mut scope, 2, &histogram_metric);
    ld(&mut scope, 3, b"");
    let mut resource = Vec::new();
    ld(&mut resource, 1, &string_attr("service.name", "checkout"));
    let mut rm = Vec::new();
    ld(&mut rm, 2, &scope);
    ld(&mut rm, 1, &resource);
    let mut req = Vec::new();
    ld(&mut req, 1, &rm);
    key(&mut req, 77, 2); // unknown field in the request
    varint(&mut req, 3);
    req.extend_from_slice(b"abc");
    req
}

/// What the upstream received: (path, body) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An OTLP/HTTP upstream that records the path and body of every request and answers 200
/// with an empty response (HTTP/1.1, keep-alive, Content-Length bodies).
fn start_sink() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            let name = name.to_ascii_lowercase();
                            if name == "content-length" {
                                length = value.trim().parse().unwrap();
                            }
                            assert!(
                                name != "content-encoding" || value.trim() == "identity",
                                "compression is off: {line}"
                            );
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    seen.lock().unwrap().push((path, body));
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, got)
}

#[test]
fn a_forwarded_metrics_request_goes_out_byte_identical() {
    let sent = request();
    // The request is valid OTLP, and prost's own encoding of it differs from it.
    let decoded = ExportMetricsServiceRequest::decode(sent.as_slice()).unwrap();
    assert_ne!(
        decoded.encode_to_vec(),
        sent,
        "the test request must be unusual"
    );
    let (sink_port, got) = start_sink();

    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let exporter =
        format!("  otlphttp:\n    endpoint: http://127.0.0.1:{sink_port}\n    compression: none\n");
    let cfg = runnable_config(&ports, &exporter, "otlphttp");
    let path = write(dir.path(), "weir.yaml", &cfg);
    let mut child = spawn(dir.path(), &path, &["--shutdown-timeout", "8s"]);
    if wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_none() {
        let _ = child.kill();
        panic!("weir did not become ready; log:\n{}", log_of(dir.path()));
    }

    let mut s = std::net::TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sent.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&sent).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let start = Instant::now();
    while got.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let log = log_of(dir.path());
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");

    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "one request upstream\n{log}");
    assert_eq!(got[0].0, "/v1/metrics");
    assert!(
        got[0].1 == sent,
        "the forwarded request differs from the one sent ({} vs {} bytes)",
        got[0].1.len(),
        sent.len()
    );
}
