//! An edge and a catalog builder / control plane, both real `weir` processes on 127.0.0.1:
//! telemetry flows through the edge to an upstream, its metadata reaches the catalog, a
//! finding appears, accepting it makes the edge drop that data within one sync interval,
//! and the edge's hit counts show up in the control plane.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use support::{free_port, log_of, sigterm, wait_exit, wait_for_status, weir, write};

/// Counts the log records an upstream receives, and how many were DEBUG.
#[derive(Default)]
struct Counts {
    records: AtomicU64,
    debug: AtomicU64,
}

#[derive(Clone, Default)]
struct Upstream(Arc<Counts>);

impl std::ops::Deref for Upstream {
    type Target = Counts;
    fn deref(&self) -> &Counts {
        &self.0
    }
}

#[tonic::async_trait]
impl LogsService for Upstream {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        for rl in &request.get_ref().resource_logs {
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    self.records.fetch_add(1, Ordering::SeqCst);
                    if r.severity_text == "DEBUG" {
                        self.debug.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// One HTTP/1.0 request with an optional bearer token and JSON body.
fn http(method: &str, port: u16, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn token(db: &std::path::Path, role: &str) -> String {
    let out = weir()
        .args(["admin", "token", "create", "--db"])
        .arg(db)
        .args(["--role", role, "--name", "e2e"])
        .args(if role == "edge" {
            &["--edge", "e2e-edge"][..]
        } else {
            &[]
        })
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// 100 DEBUG and 100 INFO records from service `checkout`, as OTLP JSON.
fn batch(round: u32) -> String {
    let mut records = Vec::new();
    for i in 0..100 {
        records.push(format!(
            r#"{{"timeUnixNano":"{}","severityText":"DEBUG","severityNumber":5,"body":{{"stringValue":"cache lookup key=user:{i} hit=true round {round}"}}}}"#,
            1_700_000_000_000_000_000u64 + u64::from(round) * 1_000_000_000_000 + i
        ));
        records.push(format!(
            r#"{{"timeUnixNano":"{}","severityText":"INFO","severityNumber":9,"body":{{"stringValue":"order {i} placed"}}}}"#,
            1_700_000_000_000_000_000u64 + u64::from(round) * 1_000_000_000_000 + i
        ));
    }
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_drops_what_the_catalog_suggests() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let admin = token(&db, "admin");
    let edge_token = token(&db, "edge");

    // Upstream backend.
    let upstream = Upstream::default();
    let up_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_port = up_listener.local_addr().unwrap().port();
    let svc = LogsServiceServer::new(upstream.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(up_listener))
            .await
            .unwrap();
    });

    // Control plane.
    let (cp_api, cp_otlp, cp_health, cp_metrics) =
        (free_port(), free_port(), free_port(), free_port());
    let cp_dir = dir.path().join("cp");
    std::fs::create_dir_all(&cp_dir).unwrap();
    let cp_cfg = write(
        &cp_dir,
        "catalog.yaml",
        &format!(
            "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{cp_otlp}', auth: {{authenticator: control_plane}}}}
exporters:
  catalog: {{storage: '{db}', flush_interval: 1s}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{cp_health}'}}
  control_plane: {{endpoint: '127.0.0.1:{cp_api}', storage: '{db}', sync_interval: 1s}}
service:
  extensions: [health_check, control_plane]
  telemetry: {{metrics: {{address: '127.0.0.1:{cp_metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [catalog]}}
",
            db = db.display()
        ),
    );
    let mut cp = weir()
        .arg("--config")
        .arg(&cp_cfg)
        .stderr(std::fs::File::create(cp_dir.join("weir.log")).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_for_status(cp_health, "/", 200, Duration::from_secs(20)).is_some(),
        "{}",
        log_of(&cp_dir)
    );

    // Edge.
    let (edge_http, edge_health, edge_metrics) = (free_port(), free_port(), free_port());
    let edge_dir = dir.path().join("edge");
    std::fs::create_dir_all(&edge_dir).unwrap();
    let edge_cfg = write(
        &edge_dir,
        "edge.yaml",
        &format!(
            "receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:{edge_http}'}}
processors:
  policy:
    sources:
      - http:
          endpoint: 'http://127.0.0.1:{cp_api}/v1/policy/sync'
          headers: {{authorization: 'Bearer {edge_token}'}}
          cache_dir: '{cache}'
    client: {{service_name: weir-edge}}
exporters:
  otlp:
    endpoint: '127.0.0.1:{up_port}'
    tls: {{insecure: true}}
    compression: none
  catalog:
    endpoint: 'http://127.0.0.1:{cp_api}'
    token: '{edge_token}'
    flush_interval: 1s
extensions:
  health_check: {{endpoint: '127.0.0.1:{edge_health}'}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: '127.0.0.1:{edge_metrics}'}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [policy], exporters: [otlp]}}
    logs/catalog: {{receivers: [otlp], exporters: [catalog]}}
",
            cache = edge_dir.join("cache").display()
        ),
    );
    let mut edge = weir()
        .arg("--config")
        .arg(&edge_cfg)
        .stderr(std::fs::File::create(edge_dir.join("weir.log")).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_for_status(edge_health, "/", 200, Duration::from_secs(20)).is_some(),
        "{}",
        log_of(&edge_dir)
    );

    let send = |round: u32| {
        let (status, body) = http("POST", edge_http, "/v1/logs", "", Some(&batch(round)));
        assert_eq!(status, 200, "{body}");
    };

    // 1. Everything flows; the catalog learns and finds the DEBUG noise.
    send(1);
    assert!(wait_until(Duration::from_secs(10), || upstream
        .records
        .load(Ordering::SeqCst)
        == 200));
    assert_eq!(upstream.debug.load(Ordering::SeqCst), 100);
    let mut finding = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(15), || {
            let (st, body) = http("GET", cp_api, "/api/v1/findings", &admin, None);
            assert_eq!(st, 200, "{body}");
            let v = json(&body);
            if let Some(f) = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["kind"] == "debug_logs")
            {
                finding = f.clone();
                true
            } else {
                false
            }
        }),
        "no debug finding; control plane log:\n{}\nedge log:\n{}",
        log_of(&cp_dir),
        log_of(&edge_dir)
    );
    assert_eq!(finding["service"], "checkout");
    assert!(finding["evidence"][0]
        .as_str()
        .unwrap()
        .starts_with("100 of 200 log records"));
    let id = finding["id"].as_str().unwrap().to_string();

    // 2. Accept it (enforce). Within one sync interval the edge runs it.
    let (st, body) = http(
        "POST",
        cp_api,
        &format!("/api/v1/findings/{id}/accept"),
        &admin,
        Some(r#"{"shadow": false}"#),
    );
    assert_eq!(st, 201, "{body}");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (_, body) = http("GET", cp_api, "/api/v1/policies", &admin, None);
            json(&body)["edges"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["in_sync"] == true))
        }),
        "edge never synced the new set:\n{}",
        log_of(&edge_dir)
    );
    std::thread::sleep(Duration::from_millis(1500));

    // 3. The same traffic again: the 100 DEBUG records are dropped at the edge.
    send(2);
    assert!(wait_until(Duration::from_secs(10), || upstream
        .records
        .load(Ordering::SeqCst)
        == 300));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        upstream.records.load(Ordering::SeqCst),
        300,
        "exactly 100 more records arrive"
    );
    assert_eq!(
        upstream.debug.load(Ordering::SeqCst),
        100,
        "no new DEBUG record arrives"
    );

    // 4. The edge reports its hits; the control plane shows them.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (_, body) = http("GET", cp_api, "/api/v1/policies", &admin, None);
            let v = json(&body);
            v["policies"][0]["policy"]["id"] == id.as_str() && v["policies"][0]["hits"] == 100
        }),
        "hits never reached the control plane: {}",
        http("GET", cp_api, "/api/v1/policies", &admin, None).1
    );

    // 5. The CLI report reads the same file.
    let out = weir()
        .args(["catalog", "report", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());

    for child in [&mut edge, &mut cp] {
        sigterm(child);
        let status = wait_exit(child, Duration::from_secs(15)).expect("exits after SIGTERM");
        assert!(status.success());
    }
}
