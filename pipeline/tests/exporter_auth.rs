//! Exporter-side `auth: {authenticator: bearertokenauth/x}`: a weir edge forwards with the
//! `otlp` and `otlphttp` exporters to a weir whose receiver requires the token; everything
//! sent with the right token arrives exactly once per exporter, and an edge with the wrong
//! token is refused (counted on both sides) and delivers nothing. Also the config errors of
//! an exporter naming no usable authenticator, all reported in one run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use support::*;

struct Running {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: String) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "weir.yaml", &config);
    let child = spawn(dir.path(), &path, &[]);
    Running { child, dir }
}

fn post_logs(port: u16, service: &str, n: usize) -> u16 {
    let records: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"body":{{"stringValue":"{service} {i}"}}}}"#))
        .collect();
    let body = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    );
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body.as_bytes()).is_err() {
        return 0;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Log record bodies in the upstream's file, by service.
fn received(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut bodies = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for rl in v["resourceLogs"].as_array().unwrap() {
            for sl in rl["scopeLogs"].as_array().unwrap() {
                for r in sl["logRecords"].as_array().unwrap() {
                    bodies.push(r["body"]["stringValue"].as_str().unwrap().to_string());
                }
            }
        }
    }
    bodies.sort();
    bodies
}

fn metric(port: u16, name: &str, labels: &[&str]) -> f64 {
    let Some((_, body)) = http_get(port, "/metrics") else {
        return -1.0;
    };
    body.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

fn edge_config(ports: &Ports, upstream: &Ports, auth_extension: &str) -> String {
    format!(
        "extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
  bearertokenauth/up:
{auth_extension}
receivers:
  otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{http}'}}}}}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{up_grpc}
    tls: {{insecure: true}}
    auth: {{authenticator: bearertokenauth/up}}
    retry_on_failure: {{enabled: false}}
  otlphttp:
    endpoint: http://127.0.0.1:{up_http}
    auth:
      authenticator: bearertokenauth/up
    retry_on_failure: {{enabled: false}}
service:
  extensions: [health_check, bearertokenauth/up]
  telemetry: {{metrics: {{address: '127.0.0.1:{metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlp, otlphttp]}}
",
        health = ports.health,
        http = ports.http,
        metrics = ports.metrics,
        up_grpc = upstream.grpc,
        up_http = upstream.http,
    )
}

#[test]
fn an_edge_authenticates_to_a_guarded_receiver_with_bearertokenauth() {
    let up = Ports::pick();
    let up_dir = tempfile::tempdir().unwrap();
    let out = up_dir.path().join("received.jsonl");
    let upstream = start(format!(
        "extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
  bearertokenauth: {{token: right-token}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}', auth: {{authenticator: bearertokenauth}}}}
      http: {{endpoint: '127.0.0.1:{http}', auth: {{authenticator: bearertokenauth}}}}
exporters:
  file: {{path: {out}, flush_interval: 0s}}
service:
  extensions: [health_check, bearertokenauth]
  telemetry: {{metrics: {{address: '127.0.0.1:{metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [file]}}
",
        health = up.health,
        grpc = up.grpc,
        http = up.http,
        metrics = up.metrics,
        out = out.display(),
    ));
    assert!(
        wait_for_status(up.health, "/", 200, Duration::from_secs(30)).is_some(),
        "upstream did not start: {}",
        log_of(upstream.dir.path())
    );

    // The good edge reads its token from a file (scheme and header: the defaults).
    let good_ports = Ports::pick();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = write(token_dir.path(), "token", "right-token\n");
    let good = start(edge_config(
        &good_ports,
        &up,
        &format!("    filename: {}", token_file.display()),
    ));
    let bad_ports = Ports::pick();
    let bad = start(edge_config(&bad_ports, &up, "    token: wrong-token"));
    for (p, r) in [(&good_ports, &good), (&bad_ports, &bad)] {
        assert!(
            wait_for_status(p.health, "/", 200, Duration::from_secs(30)).is_some(),
            "edge did not start: {}",
            log_of(r.dir.path())
        );
    }

    assert_eq!(post_logs(good_ports.http, "good", 5), 200);
    let mut want: Vec<String> = (0..5)
        .flat_map(|i| [format!("good {i}"), format!("good {i}")])
        .collect();
    want.sort();
    assert!(
        wait_until(Duration::from_secs(30), || received(&out) == want),
        "{:?}\nedge: {}\nupstream: {}",
        received(&out),
        log_of(good.dir.path()),
        log_of(upstream.dir.path())
    );
    for exporter in ["otlp", "otlphttp"] {
        let label = format!("exporter=\"{exporter}\"");
        assert!(
            wait_until(Duration::from_secs(10), || metric(
                good_ports.metrics,
                "weir_exporter_sent_items",
                &[&label]
            ) == 5.0),
            "{exporter}: {:?}",
            http_get(good_ports.metrics, "/metrics")
        );
    }

    // The wrong token: refused by both receivers, counted as failed by both exporters.
    assert_eq!(post_logs(bad_ports.http, "bad", 3), 200);
    assert!(
        wait_until(Duration::from_secs(30), || {
            metric(
                bad_ports.metrics,
                "weir_exporter_send_failed_items",
                &["exporter=\"otlp\""],
            ) == 3.0
                && metric(
                    bad_ports.metrics,
                    "weir_exporter_send_failed_items",
                    &["exporter=\"otlphttp\""],
                ) == 3.0
        }),
        "edge: {}",
        log_of(bad.dir.path())
    );
    assert_eq!(
        metric(up.metrics, "weir_receiver_unauthenticated_requests", &[]),
        2.0
    );
    for transport in ["grpc", "http"] {
        assert_eq!(
            metric(
                up.metrics,
                "weir_receiver_unauthenticated_requests",
                &[&format!("transport=\"{transport}\"")]
            ),
            1.0,
            "{transport}"
        );
    }
    assert_eq!(
        metric(bad_ports.metrics, "weir_exporter_sent_items", &[]),
        0.0
    );
    let log = log_of(bad.dir.path());
    assert!(log.contains("Unauthenticated"), "{log}");
    assert!(log.contains("401"), "{log}");
    // Nothing of the bad edge arrived, nothing of the good one twice.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(received(&out), want);
}

#[test]
fn an_exporter_naming_no_usable_authenticator_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = "extensions:
  health_check: {}
  bearertokenauth/unlisted: {token: x}
receivers:
  nop: {}
exporters:
  otlp/a:
    endpoint: 127.0.0.1:4317
    auth: {authenticator: bearertokenauth/nope}
  otlphttp/b:
    endpoint: http://127.0.0.1:4318
    auth: {authenticator: health_check}
  otlphttp/c:
    endpoint: http://127.0.0.1:4318
    auth: {authenticator: bearertokenauth/unlisted}
  otlp/d:
    endpoint: 127.0.0.1:4317
    auth: {}
service:
  extensions: [health_check]
  telemetry: {metrics: {level: none}}
  pipelines:
    logs: {receivers: [nop], exporters: [otlp/a, otlphttp/b, otlphttp/c, otlp/d]}
";
    let path = write(dir.path(), "bad.yaml", config);
    let out = weir()
        .arg("validate")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut lines: Vec<&str> = stderr.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "exporters.otlp/a.auth.authenticator: extension \"bearertokenauth/nope\" is not configured (add it under extensions: and to service.extensions)",
            "exporters.otlp/d.auth.authenticator: is required (the id of an authenticator extension, e.g. bearertokenauth)",
            "exporters.otlphttp/b.auth.authenticator: extension \"health_check\" is not a client authenticator (use bearertokenauth)",
            "exporters.otlphttp/c.auth.authenticator: extension \"bearertokenauth/unlisted\" is configured but not listed in service.extensions",
        ],
        "{stderr}"
    );
}
