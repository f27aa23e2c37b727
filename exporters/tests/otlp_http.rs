//! `otlp_http` against a real HTTP server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{build_exporter, free_port, logs, metric, metrics, traces, wait_until};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prost::Message;
use weir_api::{Batch, ConsumeError, Payload, Signal};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: http::HeaderMap,
    /// The body after undoing `Content-Encoding`.
    body: Bytes,
    /// The status the server answered with.
    status: u16,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn payload(&self) -> Payload {
        let signal = match self.path.rsplit('/').next().unwrap() {
            "traces" => Signal::Traces,
            "metrics" => Signal::Metrics,
            _ => Signal::Logs,
        };
        if self.header("content-type") == Some("application/json") {
            return weir_api::json::decode(signal, &self.body).unwrap();
        }
        Batch::decode(signal, self.body.clone())
            .unwrap()
            .into_payload()
    }
}

type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// A recording OTLP/HTTP server with scripted answers (200 with an empty body when none).
#[derive(Clone, Default)]
struct HttpUpstream {
    requests: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl HttpUpstream {
    fn script(self, replies: Vec<Reply>) -> Self {
        *self.replies.lock().unwrap() = replies.into();
        self
    }

    fn accepted(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 200)
            .cloned()
            .collect()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    async fn handle(
        self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let wire = body.collect().await.unwrap().to_bytes();
        let body = match parts
            .headers
            .get("content-encoding")
            .map(|v| v.to_str().unwrap())
        {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&wire[..])
                    .read_to_end(&mut out)
                    .unwrap();
                Bytes::from(out)
            }
            Some("zstd") => Bytes::from(zstd::decode_all(&wire[..]).unwrap()),
            _ => wire,
        };
        let (status, headers, reply_body) = self.replies.lock().unwrap().pop_front().unwrap_or((
            200,
            vec![("content-type", "application/x-protobuf".into())],
            vec![],
        ));
        self.requests.lock().unwrap().push(Recorded {
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body,
            status,
        });
        let mut response = http::Response::builder().status(status);
        for (k, v) in headers {
            response = response.header(k, v);
        }
        Ok(response.body(Full::new(Bytes::from(reply_body))).unwrap())
    }

    async fn serve_on(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| me.clone().handle(req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
    }

    async fn serve(&self) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, self.serve_on(listener).await)
    }
}

#[tokio::test]
async fn delivers_exact_records_to_signal_urls_with_gzip_and_headers() {
    let upstream = HttpUpstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({
            "endpoint": format!("http://{addr}"),
            "logs_endpoint": format!("http://{addr}/custom/logs"),
            "headers": {"X-Tenant": "acme"},
        }),
    );
    exporter.start().await.unwrap();
    let sent = [logs("a", 3), traces("b", 2), metrics("c", 4)];
    for p in &sent {
        exporter.consume(Batch::new(p.clone())).await.unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || upstream.count() == 3).await);
    exporter.shutdown().await;
    let mut got = upstream.accepted();
    got.sort_by_key(|r| r.path.clone());
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/custom/logs", "/v1/metrics", "/v1/traces"]);
    assert_eq!(got[0].payload(), sent[0]);
    assert_eq!(got[1].payload(), sent[2]);
    assert_eq!(got[2].payload(), sent[1]);
    for r in &got {
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("x-tenant"), Some("acme"));
        assert_eq!(
            r.header("user-agent"),
            Some(concat!("weir/", env!("CARGO_PKG_VERSION")))
        );
    }
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlphttp\",signal=\"metrics\"}"
        ),
        4.0
    );
    server.abort();
}

#[tokio::test]
async fn signal_without_url_is_rejected_at_once() {
    let (exporter, telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({"logs_endpoint": "http://127.0.0.1:9/ingest"}),
    );
    exporter.start().await.unwrap();
    match exporter.consume(Batch::new(traces("x", 2))).await {
        Err(ConsumeError::Rejected { component, reason }) => {
            assert_eq!(component, "otlphttp");
            assert_eq!(reason, "no URL for traces: set endpoint or traces_endpoint");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_send_failed_items_total{exporter=\"otlphttp\",signal=\"traces\"}"
        ),
        2.0
    );
    exporter.shutdown().await;
}

#[tokio::test]
async fn json_encoding_sends_otlp_json() {
    let upstream = HttpUpstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, _) = build_exporter(
        "otlphttp",
        serde_json::json!({"endpoint": format!("http://{addr}"), "encoding": "json", "compression": "none"}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(traces("js", 2))).await.unwrap();
    exporter
        .consume(Batch::new(metrics("js", 2)))
        .await
        .unwrap();
    exporter.shutdown().await;
    let mut got = upstream.accepted();
    got.sort_by_key(|r| r.path.clone());
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert!(got[1].body.starts_with(b"{\"resourceSpans\":"));
    assert_eq!(got[0].payload(), metrics("js", 2));
    assert_eq!(got[1].payload(), traces("js", 2));
    server.abort();
}

#[tokio::test]
async fn zstd_and_no_compression_are_honoured() {
    for (compression, want) in [("zstd", Some("zstd")), ("none", None)] {
        let upstream = HttpUpstream::default();
        let (addr, server) = upstream.serve().await;
        let (exporter, _) = build_exporter(
            "otlp_http",
            serde_json::json!({"endpoint": format!("http://{addr}"), "compression": compression}),
        );
        exporter.start().await.unwrap();
        exporter.consume(Batch::new(logs("z", 2))).await.unwrap();
        assert!(wait_until(Duration::from_secs(10), || upstream.count() == 1).await);
        let r = upstream.accepted().remove(0);
        assert_eq!(r.header("content-encoding"), want, "{compression}");
        assert_eq!(r.payload(), logs("z", 2));
        exporter.shutdown().await;
        server.abort();
    }
}

#[tokio::test]
async fn retry_after_503_then_200_delivers_once() {
    let upstream = HttpUpstream::default().script(vec![(
        503,
        vec![("retry-after", "1".into())],
        b"overloaded".to_vec(),
    )]);
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({"endpoint": format!("http://{addr}"), "retry_on_failure": {"initial_interval": "10ms"}}),
    );
    exporter.start().await.unwrap();
    let started = Instant::now();
    exporter.consume(Batch::new(logs("r", 2))).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || upstream.accepted().len() == 1).await);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored: {:?}",
        started.elapsed()
    );
    exporter.shutdown().await;
    let statuses: Vec<u16> = upstream
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 200]);
    assert_eq!(upstream.accepted()[0].payload(), logs("r", 2));
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_retries_total{exporter=\"otlphttp\",signal=\"logs\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlphttp\",signal=\"logs\"}"
        ),
        2.0
    );
    server.abort();
}

#[tokio::test]
async fn bad_request_is_not_retried_and_counted_failed() {
    let status = weir_api::rpc_status::RpcStatus {
        code: 3,
        message: "log record 0 has no body".into(),
        details: vec![],
    };
    let bad = (
        400,
        vec![("content-type", "application/x-protobuf".to_string())],
        status.encode_to_vec(),
    );
    let upstream = HttpUpstream::default().script(vec![bad.clone(), bad]);
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({"endpoint": format!("http://{addr}"), "retry_on_failure": {"initial_interval": "10ms"}}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("bad", 3))).await.unwrap();
    let failed = "weir_exporter_send_failed_items_total{exporter=\"otlphttp\",signal=\"logs\"}";
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, failed)
            == 3.0)
        .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(upstream.count(), 1);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_retries_total{exporter=\"otlphttp\",signal=\"logs\"}"
        ),
        0.0
    );
    exporter.shutdown().await;

    // Without a queue the caller hears the upstream's reason.
    let (exporter, _) = build_exporter(
        "otlphttp",
        serde_json::json!({"endpoint": format!("http://{addr}"), "sending_queue": {"enabled": false}}),
    );
    match exporter.consume(Batch::new(logs("bad", 1))).await {
        Err(ConsumeError::Rejected { reason, .. }) => assert_eq!(
            reason,
            format!("http://{addr}/v1/logs: HTTP 400: log record 0 has no body")
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn without_queue_the_upstreams_retry_after_is_passed_back() {
    let upstream = HttpUpstream::default().script(vec![(
        429,
        vec![("retry-after", "7".into())],
        b"slow down".to_vec(),
    )]);
    let (addr, server) = upstream.serve().await;
    let (exporter, _) = build_exporter(
        "otlphttp",
        serde_json::json!({
            "endpoint": format!("http://{addr}"),
            "sending_queue": {"enabled": false},
            "retry_on_failure": {"enabled": false},
        }),
    );
    match exporter.consume(Batch::new(logs("t", 1))).await {
        Err(ConsumeError::Refused {
            reason,
            retry_after,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert_eq!(
                reason,
                format!("http://{addr}/v1/logs: HTTP 429: slow down")
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(upstream.count(), 1);
    server.abort();
}

#[tokio::test]
async fn upstream_down_then_up_loses_nothing() {
    let port = free_port();
    let (exporter, telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({
            "endpoint": format!("http://127.0.0.1:{port}"),
            "timeout": "1s",
            "retry_on_failure": {"initial_interval": "50ms", "max_interval": "200ms"},
        }),
    );
    exporter.start().await.unwrap();
    for i in 0..4 {
        exporter
            .consume(Batch::new(traces(&format!("d{i}"), 1)))
            .await
            .unwrap();
    }
    let retries = "weir_exporter_retries_total{exporter=\"otlphttp\",signal=\"traces\"}";
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, retries)
            >= 4.0)
        .await
    );
    let upstream = HttpUpstream::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = upstream.serve_on(listener).await;
    exporter.shutdown().await;
    let mut names: Vec<String> = upstream
        .accepted()
        .iter()
        .map(|r| match r.payload() {
            Payload::Traces(t) => t.resource_spans[0].scope_spans[0].spans[0].name.clone(),
            _ => unreachable!(),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["d0 span 0", "d1 span 0", "d2 span 0", "d3 span 0"]);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlphttp\",signal=\"traces\"}"
        ),
        4.0
    );
    server.abort();
}

#[tokio::test]
async fn json_partial_success_is_counted_and_not_retried() {
    let partial = (
        200,
        vec![("content-type", "application/json".to_string())],
        br#"{"partialSuccess":{"rejectedSpans":"1","errorMessage":"span too large"}}"#.to_vec(),
    );
    let upstream = HttpUpstream::default().script(vec![partial]);
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({"endpoint": format!("http://{addr}")}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(traces("p", 3))).await.unwrap();
    exporter.shutdown().await;
    assert_eq!(upstream.count(), 1);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlphttp\",signal=\"traces\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_send_failed_items_total{exporter=\"otlphttp\",signal=\"traces\"}"
        ),
        1.0
    );
    server.abort();
}

/// A server certificate for localhost from a fresh CA, written to `dir`: the server's TLS
/// config (ALPN `alpn`) and the CA file a client must trust.
fn upstream_tls(dir: &std::path::Path, alpn: weir_tls::Alpn) -> (weir_tls::ServerTls, String) {
    let ca = weir_tls::testing::TestCa::new("upstream CA");
    let (cert, key) = ca.server_cert("upstream").write(dir, "server");
    let settings = weir_tls::TlsServerSettings {
        cert_file: cert.to_str().unwrap().into(),
        key_file: key.to_str().unwrap().into(),
        client_ca_file: None,
        min_version: weir_tls::TlsVersion::V1_3,
        max_version: None,
        reload_interval: Duration::from_secs(30),
    };
    let tls = settings.load("tls", |p| p.into(), alpn).unwrap();
    (tls, ca.write(dir, "ca.pem").to_str().unwrap().to_string())
}

#[tokio::test]
async fn delivers_over_https_to_a_server_its_ca_file_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca_file) = upstream_tls(dir.path(), weir_tls::Alpn::Http);
    let upstream = HttpUpstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = upstream.clone();
    let server = tokio::spawn(async move {
        let svc = service_fn(move |req| me.clone().handle(req));
        tls.serve_http(listener, svc, std::future::pending()).await;
    });
    let (exporter, _telemetry) = build_exporter(
        "otlphttp",
        serde_json::json!({"endpoint": format!("https://localhost:{port}"), "tls": {"ca_file": ca_file}}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("tls", 3))).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || upstream.count() == 1).await);
    exporter.shutdown().await;
    let got = upstream.accepted();
    assert_eq!(got[0].path, "/v1/logs");
    assert_eq!(got[0].payload(), logs("tls", 3));
    server.abort();
}
