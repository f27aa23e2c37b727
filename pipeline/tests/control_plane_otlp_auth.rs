//! The control plane's own OTLP receiver requires a token (`auth: {authenticator:
//! control_plane}`, as in configs/catalog.yaml), driven over real OTLP/gRPC and OTLP/HTTP
//! against the real `weir` binary: no token, a wrong token, a viewer's token and a revoked
//! token are refused (HTTP 401, gRPC UNAUTHENTICATED) and nothing of those requests reaches
//! the catalog; edge and admin tokens are accepted and their items counted exactly; the
//! metric counts every refusal. Also `bearertokenauth` as the authenticator, and the config
//! errors of an authenticator that names no usable extension.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
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

fn token(db: &Path, args: &[&str]) -> String {
    let out = weir()
        .args(["admin", "token", "create", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// One HTTP/1.1 request on its own connection: (status, head, body).
fn call(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// OTLP/JSON logs: `n` records of `service`.
fn json_logs(service: &str, n: usize) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"severityText":"INFO","body":{{"stringValue":"record {i}"}}}}"#))
        .collect();
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

fn grpc_logs(service: &str, n: usize) -> ExportLogsServiceRequest {
    let string = |s: &str| AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(string(service)),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        severity_text: "INFO".into(),
                        body: Some(string(&format!("record {i}"))),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn grpc_export(
    port: u16,
    auth: Option<&str>,
    request: ExportLogsServiceRequest,
) -> Result<(), tonic::Status> {
    let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(request);
    if let Some(a) = auth {
        request
            .metadata_mut()
            .insert("authorization", a.parse().unwrap());
    }
    client.export(request).await.map(|_| ())
}

/// The catalog's services and their log item counts, through the API.
fn services(port: u16, admin: &str) -> Vec<(String, u64)> {
    let (st, _, body) = call(
        port,
        "GET",
        "/api/v1/services",
        Some(&format!("Bearer {admin}")),
        b"",
    );
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["logs_items"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn metric(port: u16, name: &str, labels: &str) -> f64 {
    let (_, body) = http_get(port, "/metrics").unwrap();
    body.lines()
        .filter(|l| l.starts_with(name) && labels.split(',').all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Ports {
    api: u16,
    grpc: u16,
    http: u16,
    metrics: u16,
    health: u16,
}

fn start(dir: tempfile::TempDir, extensions: &str, authenticator: &str) -> (Running, Ports) {
    let ports = Ports {
        api: free_port(),
        grpc: free_port(),
        http: free_port(),
        metrics: free_port(),
        health: free_port(),
    };
    let db = dir.path().join("cp.db");
    let config = format!(
        "extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
  control_plane:
    endpoint: 127.0.0.1:{api}
    storage: {db}
{extensions}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        auth: {{authenticator: {authenticator}}}
      http:
        endpoint: 127.0.0.1:{http}
        auth: {{authenticator: {authenticator}}}
exporters:
  catalog: {{storage: {db}, flush_interval: 200ms}}
service:
  extensions: [health_check, control_plane{extra_ids}]
  telemetry: {{metrics: {{address: '127.0.0.1:{metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [catalog]}}
",
        health = ports.health,
        api = ports.api,
        grpc = ports.grpc,
        http = ports.http,
        metrics = ports.metrics,
        db = db.display(),
        extra_ids = if extensions.is_empty() {
            ""
        } else {
            ", bearertokenauth"
        },
    );
    let path = write(dir.path(), "cp.yaml", &config);
    let child = spawn(dir.path(), &path, &[]);
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_some(),
        "control plane did not start: {}",
        log_of(dir.path())
    );
    (Running { child, dir }, ports)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_receiver_takes_only_live_edge_and_admin_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let admin = token(&db, &["--role", "admin"]);
    let edge = token(&db, &["--role", "edge", "--edge", "edge-a"]);
    let leaked = token(&db, &["--role", "edge", "--edge", "edge-b"]);
    let viewer = token(&db, &["--role", "viewer"]);
    let (cp, ports) = start(dir, "", "control_plane");

    // The leaked edge token works until it is revoked through the API.
    let (st, _, body) = call(
        ports.http,
        "POST",
        "/v1/logs",
        Some(&format!("Bearer {leaked}")),
        json_logs("before-revoke", 2).as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    let leaked_id = leaked.split('_').nth(1).unwrap();
    let (st, _, body) = call(
        ports.api,
        "DELETE",
        &format!("/api/v1/tokens/{leaked_id}"),
        Some(&format!("Bearer {admin}")),
        b"",
    );
    assert!(st == 200 || st == 204, "revoking: {st} {body}");

    // Refused over HTTP: 401 with the reason, WWW-Authenticate, nothing stored.
    let refusals = [
        (None, "intruder-none", "missing bearer token"),
        (
            Some("Bearer weir_000000000000_notatoken".to_string()),
            "intruder-wrong",
            "invalid or revoked token",
        ),
        (
            Some(format!("Bearer {leaked}")),
            "intruder-revoked",
            "invalid or revoked token",
        ),
        (
            Some(format!("Bearer {viewer}")),
            "intruder-viewer",
            "role viewer may not send telemetry",
        ),
        (
            Some(format!("Basic {edge}")),
            "intruder-basic",
            "missing bearer token",
        ),
    ];
    for (auth, service, reason) in &refusals {
        let (st, head, body) = call(
            ports.http,
            "POST",
            "/v1/logs",
            auth.as_deref(),
            json_logs(service, 7).as_bytes(),
        );
        assert_eq!(st, 401, "{service}: {head}\n{body}");
        assert!(body.contains(reason), "{service}: {body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
    }
    // Refused over gRPC: UNAUTHENTICATED with the reason.
    for (auth, service, reason) in &refusals {
        let err = grpc_export(ports.grpc, auth.as_deref(), grpc_logs(service, 7))
            .await
            .expect_err(service);
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{service}: {err}");
        assert!(err.message().contains(reason), "{service}: {err}");
    }

    // Accepted: an edge token and an admin token, over both transports, exact counts.
    let (st, _, body) = call(
        ports.http,
        "POST",
        "/v1/logs",
        Some(&format!("Bearer {edge}")),
        json_logs("honest-http", 3).as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    grpc_export(
        ports.grpc,
        Some(&format!("Bearer {edge}")),
        grpc_logs("honest-grpc", 5),
    )
    .await
    .unwrap();
    grpc_export(
        ports.grpc,
        Some(&format!("bearer {admin}")),
        grpc_logs("honest-grpc", 4),
    )
    .await
    .unwrap();

    let expected = [("before-revoke", 2), ("honest-grpc", 9), ("honest-http", 3)];
    let arrived = wait_until(Duration::from_secs(20), || {
        let got = services(ports.api, &admin);
        expected
            .iter()
            .all(|(s, n)| got.iter().any(|(g, c)| g == s && c == n))
    });
    let mut got = services(ports.api, &admin);
    got.sort();
    assert!(arrived, "{got:?}\n{}", log_of(cp.dir.path()));
    // Nothing of a refused request is in the catalog: only the accepted services.
    assert_eq!(
        got,
        expected
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect::<Vec<_>>(),
        "{}",
        log_of(cp.dir.path())
    );
    assert_eq!(
        metric(
            ports.metrics,
            "weir_receiver_unauthenticated_requests",
            "transport=\"http\""
        ),
        refusals.len() as f64
    );
    assert_eq!(
        metric(
            ports.metrics,
            "weir_receiver_unauthenticated_requests",
            "transport=\"grpc\""
        ),
        refusals.len() as f64
    );
    assert_eq!(
        metric(
            ports.metrics,
            "weir_receiver_accepted_items",
            "signal=\"logs\""
        ),
        14.0
    );
    // The secret never appears in the log.
    assert!(!log_of(cp.dir.path()).contains(&edge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearertokenauth_guards_the_receiver_with_a_static_token() {
    let dir = tempfile::tempdir().unwrap();
    let admin = token(&dir.path().join("cp.db"), &["--role", "admin"]);
    let (cp, ports) = start(
        dir,
        "  bearertokenauth:\n    tokens: [first-secret, second-secret]",
        "bearertokenauth",
    );
    for (auth, reason) in [
        (None, "missing or empty authorization header"),
        (Some("Bearer third-secret"), "the token is not accepted"),
        (Some("Basic first-secret"), "does not use the Bearer scheme"),
    ] {
        let (st, _, body) = call(
            ports.http,
            "POST",
            "/v1/logs",
            auth,
            json_logs("intruder", 1).as_bytes(),
        );
        assert_eq!(st, 401, "{body}");
        assert!(body.contains(reason), "{body}");
        let err = grpc_export(ports.grpc, auth, grpc_logs("intruder", 1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
        assert!(err.message().contains(reason), "{err}");
    }
    let (st, _, body) = call(
        ports.http,
        "POST",
        "/v1/logs",
        Some("Bearer first-secret"),
        json_logs("static", 2).as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    grpc_export(
        ports.grpc,
        Some("Bearer second-secret"),
        grpc_logs("static", 3),
    )
    .await
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || services(ports.api, &admin)
            == vec![("static".to_string(), 5)]),
        "{:?}\n{}",
        services(ports.api, &admin),
        log_of(cp.dir.path())
    );
}

#[test]
fn an_authenticator_that_names_no_usable_extension_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "extensions: {}\n",
            "[]",
            "bearertokenauth",
            "receivers.otlp.protocols.http.auth.authenticator: extension \"bearertokenauth\" is not configured",
        ),
        (
            "extensions:\n  bearertokenauth: {token: x}\n",
            "[]",
            "bearertokenauth",
            "receivers.otlp.protocols.http.auth.authenticator: extension \"bearertokenauth\" is configured but not listed in service.extensions",
        ),
        (
            "extensions:\n  health_check: {}\n",
            "[health_check]",
            "health_check",
            "receivers.otlp.protocols.http.auth.authenticator: extension \"health_check\" is not a server authenticator",
        ),
    ];
    for (extensions, listed, id, want) in cases {
        let config = format!(
            "{extensions}receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{}\n        auth: {{authenticator: {id}}}\nexporters:\n  nop: {{}}\nservice:\n  extensions: {listed}\n  telemetry: {{metrics: {{level: none}}}}\n  pipelines:\n    logs: {{receivers: [otlp], exporters: [nop]}}\n",
            free_port()
        );
        let path = write(dir.path(), "bad.yaml", &config);
        let out = weir()
            .arg("validate")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{id}: {text}");
        assert!(text.contains(want), "{id}: wanted {want:?} in:\n{text}");
    }
}

#[test]
fn an_edge_exporter_sends_the_edge_token_with_headers() {
    // An edge forwards OTLP to the control plane's receiver with both OTLP exporters, the
    // token taken from the environment into `headers`, as CONTROL-PLANE-LIMITS.md says.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let admin = token(&db, &["--role", "admin"]);
    let edge_token = token(&db, &["--role", "edge", "--edge", "edge-a"]);
    let (cp, ports) = start(dir, "", "control_plane");

    let edge_dir = tempfile::tempdir().unwrap();
    let edge_http = free_port();
    let config = format!(
        "receivers:
  otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{edge_http}'}}}}}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{grpc}
    tls: {{insecure: true}}
    headers: {{authorization: \"Bearer ${{env:WEIR_EDGE_TOKEN}}\"}}
  otlphttp:
    endpoint: http://127.0.0.1:{http}
    headers: {{authorization: \"Bearer ${{env:WEIR_EDGE_TOKEN}}\"}}
service:
  telemetry: {{metrics: {{address: '127.0.0.1:{metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlp, otlphttp]}}
",
        grpc = ports.grpc,
        http = ports.http,
        metrics = free_port(),
    );
    let path = write(edge_dir.path(), "edge.yaml", &config);
    let log = std::fs::File::create(edge_dir.path().join("weir.log")).unwrap();
    let edge = Running {
        child: weir()
            .arg("--config")
            .arg(&path)
            .env("WEIR_EDGE_TOKEN", &edge_token)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        dir: edge_dir,
    };
    let body = json_logs("via-edge", 4);
    assert!(
        wait_until(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", edge_http)).is_ok()
                && call(edge_http, "POST", "/v1/logs", None, body.as_bytes()).0 == 200
        }),
        "the edge never took the request: {}",
        log_of(edge.dir.path())
    );
    // Both exporters delivered: 4 records each, nothing refused by the receiver.
    assert!(
        wait_until(Duration::from_secs(30), || services(ports.api, &admin)
            == vec![("via-edge".to_string(), 8)]),
        "{:?}\nedge: {}\ncp: {}",
        services(ports.api, &admin),
        log_of(edge.dir.path()),
        log_of(cp.dir.path())
    );
    assert_eq!(
        metric(ports.metrics, "weir_receiver_unauthenticated_requests", ""),
        0.0
    );
}
