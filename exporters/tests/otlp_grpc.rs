//! `otlp_grpc` against real gRPC servers on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{build_exporter, free_port, logs, metric, metrics, traces, wait_until};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use weir_api::grpc_raw::RawBytesCodec;
use weir_api::otlp::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use weir_api::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use weir_api::otlp::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use weir_api::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use weir_api::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use weir_api::otlp::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use weir_api::{Batch, ConsumeError, Payload, Signal};

/// What the test upstream does with the next call.
enum Reply {
    Fail(Status),
    PartiallyAccept(i64, &'static str),
}

/// An accepted request and its metadata.
type Received = (Payload, Vec<(String, String)>);

/// A recording OTLP server: every accepted request with its metadata, scripted failures.
#[derive(Clone, Default)]
struct Upstream {
    received: Arc<Mutex<Vec<Received>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

impl Upstream {
    fn script(self, replies: Vec<Reply>) -> Self {
        *self.replies.lock().unwrap() = replies.into();
        self
    }

    async fn handle(
        &self,
        payload: Payload,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Option<(i64, &'static str)>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let reply = self.replies.lock().unwrap().pop_front();
        if let Some(Reply::Fail(status)) = reply {
            return Err(status);
        }
        let headers = metadata
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        self.received.lock().unwrap().push((payload, headers));
        Ok(match reply {
            Some(Reply::PartiallyAccept(n, m)) => Some((n, m)),
            _ => None,
        })
    }

    fn payloads(&self) -> Vec<Payload> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn items(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.item_count())
            .sum()
    }

    async fn serve_on(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let logs = LogsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let traces = TraceServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let metrics = MetricsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(logs)
                .add_service(traces)
                .add_service(metrics)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .unwrap();
        })
    }

    async fn serve(&self) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, self.serve_on(listener).await)
    }
}

#[async_trait::async_trait]
impl LogsService for Upstream {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        let partial = self
            .handle(Payload::Logs(request.into_inner()), &metadata)
            .await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(n, m)| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: m.to_string(),
            }),
        }))
    }
}

#[async_trait::async_trait]
impl TraceService for Upstream {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.handle(Payload::Traces(request.into_inner()), &metadata)
            .await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[async_trait::async_trait]
impl MetricsService for Upstream {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.handle(Payload::Metrics(request.into_inner()), &metadata)
            .await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn fast_retry() -> serde_json::Value {
    serde_json::json!({"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": "10s"})
}

#[tokio::test]
async fn delivers_exact_records_of_every_signal_with_gzip_and_headers() {
    let upstream = Upstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": addr.to_string(),
            "tls": {"insecure": true},
            "headers": {"X-Tenant": "acme", "authorization": "Bearer t0k"},
        }),
    );
    exporter.start().await.unwrap();
    let sent = vec![logs("a", 3), traces("b", 2), metrics("c", 4)];
    for p in &sent {
        exporter.consume(Batch::new(p.clone())).await.unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || upstream.items() == 9).await);
    exporter.shutdown().await;
    let mut got = upstream.payloads();
    got.sort_by_key(|p| p.signal());
    let mut want = sent.clone();
    want.sort_by_key(|p| p.signal());
    assert_eq!(got, want);
    for (_, headers) in upstream.received.lock().unwrap().iter() {
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-tenant"), Some("acme"));
        assert_eq!(get("authorization"), Some("Bearer t0k"));
        assert_eq!(get("grpc-encoding"), Some("gzip"));
        let agent = get("user-agent").unwrap();
        assert!(
            agent.starts_with(concat!("weir/", env!("CARGO_PKG_VERSION"))),
            "{agent}"
        );
    }
    for (signal, n) in [("logs", 3.0), ("traces", 2.0), ("metrics", 4.0)] {
        let series =
            format!("weir_exporter_sent_items_total{{exporter=\"otlp\",signal=\"{signal}\"}}");
        assert_eq!(metric(&telemetry, &series), n, "{series}");
    }
    server.abort();
}

#[tokio::test]
async fn zstd_and_no_compression_are_honoured() {
    for (compression, want) in [("zstd", Some("zstd")), ("none", None)] {
        let upstream = Upstream::default();
        let (addr, server) = upstream.serve().await;
        let (exporter, _) = build_exporter(
            "otlp_grpc",
            serde_json::json!({"endpoint": format!("http://{addr}"), "compression": compression}),
        );
        exporter.start().await.unwrap();
        exporter.consume(Batch::new(logs("z", 2))).await.unwrap();
        assert!(wait_until(Duration::from_secs(10), || upstream.items() == 2).await);
        let (payload, headers) = upstream.received.lock().unwrap()[0].clone();
        let encoding = headers
            .iter()
            .find(|(k, _)| k == "grpc-encoding")
            .map(|(_, v)| v.as_str());
        assert_eq!(encoding, want, "{compression}");
        assert_eq!(payload, logs("z", 2));
        exporter.shutdown().await;
        server.abort();
    }
}

/// A gRPC server that records each message's bytes exactly as they arrived.
#[derive(Clone, Default)]
struct RawLogsServer {
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl tonic::server::NamedService for RawLogsServer {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

struct RecordBytes(Arc<Mutex<Vec<Bytes>>>);

impl tonic::server::UnaryService<Bytes> for RecordBytes {
    type Response = Bytes;
    type Future = std::future::Ready<Result<Response<Bytes>, Status>>;
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        self.0.lock().unwrap().push(request.into_inner());
        std::future::ready(Ok(Response::new(Bytes::new())))
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for RawLogsServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let bodies = self.bodies.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawBytesCodec)
                .accept_compressed(CompressionEncoding::Gzip);
            Ok(grpc.unary(RecordBytes(bodies), request).await)
        })
    }
}

#[tokio::test]
async fn unchanged_batch_is_forwarded_byte_for_byte() {
    let server = RawLogsServer::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = server.clone();
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    // Bytes that decoding and encoding again would change: an unknown field (number 99)
    // after the request, which prost drops when it decodes.
    let Payload::Logs(request) = logs("raw", 2) else {
        unreachable!()
    };
    let mut original = request.encode_to_vec();
    original.extend_from_slice(&[0x98, 0x06, 0x01]);
    let original = Bytes::from(original);
    let batch = Batch::decode(Signal::Logs, original.clone()).unwrap();
    assert_ne!(Bytes::from(batch.payload().encode_to_vec()), original);

    let (exporter, _) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("http://{addr}")}),
    );
    exporter.start().await.unwrap();
    exporter.consume(batch).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || server
            .bodies
            .lock()
            .unwrap()
            .len()
            == 1)
        .await
    );
    assert_eq!(server.bodies.lock().unwrap()[0], original);

    // A changed batch is encoded afresh.
    let mut changed = Batch::decode(Signal::Logs, original.clone()).unwrap();
    let _ = changed.payload_mut();
    exporter.consume(changed).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || server
            .bodies
            .lock()
            .unwrap()
            .len()
            == 2)
        .await
    );
    assert_eq!(
        server.bodies.lock().unwrap()[1],
        Bytes::from(request.encode_to_vec())
    );
    exporter.shutdown().await;
    handle.abort();
}

#[tokio::test]
async fn upstream_down_then_up_loses_nothing_and_counts_retries() {
    let port = free_port();
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("http://127.0.0.1:{port}"), "timeout": "1s", "retry_on_failure": fast_retry()}),
    );
    exporter.start().await.unwrap();
    for i in 0..5 {
        exporter
            .consume(Batch::new(logs(&format!("b{i}"), 2)))
            .await
            .unwrap();
    }
    let retries = "weir_exporter_retries_total{exporter=\"otlp\",signal=\"logs\"}";
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, retries)
            >= 5.0)
        .await
    );
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = upstream.serve_on(listener).await;
    assert!(
        wait_until(Duration::from_secs(10), || upstream.items() == 10).await,
        "got {}",
        upstream.items()
    );
    exporter.shutdown().await;
    let mut bodies: Vec<String> = upstream
        .payloads()
        .iter()
        .map(|p| match p {
            Payload::Logs(r) => {
                format!("{:?}", r.resource_logs[0].scope_logs[0].log_records[0].body)
            }
            _ => unreachable!(),
        })
        .collect();
    bodies.sort();
    assert_eq!(bodies.len(), 5, "each batch delivered exactly once");
    bodies.dedup();
    assert_eq!(bodies.len(), 5);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        10.0
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_send_failed_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        0.0
    );
    server.abort();
}

#[tokio::test]
async fn many_batches_through_a_small_blocking_queue_arrive_complete() {
    let upstream = Upstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": format!("http://{addr}"),
            "sending_queue": {"queue_size": 20, "num_consumers": 4, "block_on_overflow": true},
        }),
    );
    exporter.start().await.unwrap();
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let exporter = exporter.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    exporter
                        .consume(Batch::new(logs(&format!("p{p}-{i}"), 5)))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    exporter.shutdown().await;
    assert_eq!(upstream.items(), 2000);
    let mut tags: Vec<String> = upstream
        .payloads()
        .iter()
        .map(|p| match p {
            Payload::Logs(r) => {
                format!("{:?}", r.resource_logs[0].scope_logs[0].log_records[0].body)
            }
            _ => unreachable!(),
        })
        .collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 400, "every batch exactly once");
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        2000.0
    );
    server.abort();
}

#[tokio::test]
async fn data_is_dropped_and_counted_once_max_elapsed_time_runs_out() {
    let port = free_port();
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": format!("http://127.0.0.1:{port}"),
            "retry_on_failure": {"initial_interval": "50ms", "max_elapsed_time": "400ms", "randomization_factor": 0},
        }),
    );
    exporter.start().await.unwrap();
    let started = Instant::now();
    exporter
        .consume(Batch::new(metrics("gone", 3)))
        .await
        .unwrap();
    let failed = "weir_exporter_send_failed_items_total{exporter=\"otlp\",signal=\"metrics\"}";
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, failed)
            == 3.0)
        .await
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // Waits of 50, 75 and 112.5ms fit in 400ms, the fourth (168.75ms) would end past it;
    // slow attempts on a loaded machine can leave room for fewer.
    let retries = metric(
        &telemetry,
        "weir_exporter_retries_total{exporter=\"otlp\",signal=\"metrics\"}",
    );
    assert!((1.0..=3.0).contains(&retries), "{retries}");
    assert_eq!(
        metric(&telemetry, "weir_exporter_queue_size{exporter=\"otlp\"}"),
        0.0
    );
    exporter.shutdown().await;
}

#[tokio::test]
async fn retry_info_delay_is_honoured_and_resource_exhausted_without_it_is_permanent() {
    let details =
        weir_api::rpc_status::status_with_retry_delay(8, "busy", Duration::from_millis(400));
    let busy = Status::with_details(tonic::Code::ResourceExhausted, "busy", Bytes::from(details));
    let upstream = Upstream::default().script(vec![Reply::Fail(busy)]);
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("http://{addr}"), "retry_on_failure": {"initial_interval": "10ms"}}),
    );
    exporter.start().await.unwrap();
    let started = Instant::now();
    exporter.consume(Batch::new(traces("t", 1))).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || upstream.items() == 1).await);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_retries_total{exporter=\"otlp\",signal=\"traces\"}"
        ),
        1.0
    );

    // Without RetryInfo, RESOURCE_EXHAUSTED is permanent; so is INVALID_ARGUMENT.
    *upstream.replies.lock().unwrap() = VecDeque::from(vec![
        Reply::Fail(Status::resource_exhausted("full")),
        Reply::Fail(Status::invalid_argument("bad data")),
    ]);
    exporter.consume(Batch::new(traces("u", 2))).await.unwrap();
    exporter.consume(Batch::new(traces("v", 3))).await.unwrap();
    let failed = "weir_exporter_send_failed_items_total{exporter=\"otlp\",signal=\"traces\"}";
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, failed)
            == 5.0)
        .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        4,
        "permanent errors are not retried"
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_retries_total{exporter=\"otlp\",signal=\"traces\"}"
        ),
        1.0
    );
    exporter.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn partial_success_is_counted_and_not_retried() {
    let upstream = Upstream::default().script(vec![Reply::PartiallyAccept(2, "2 records too old")]);
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("http://{addr}")}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("p", 5))).await.unwrap();
    exporter.shutdown().await;
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_send_failed_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        2.0
    );
    server.abort();
}

#[tokio::test]
async fn full_queue_refuses_with_retry_after_and_shutdown_drains() {
    let upstream = Upstream {
        delay: Duration::from_millis(300),
        ..Default::default()
    };
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": format!("http://{addr}"),
            "sending_queue": {"num_consumers": 1, "queue_size": 6, "sizer": "items"},
        }),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("q1", 3))).await.unwrap();
    exporter.consume(Batch::new(logs("q2", 3))).await.unwrap();
    let err = exporter
        .consume(Batch::new(logs("q3", 1)))
        .await
        .unwrap_err();
    match &err {
        ConsumeError::Refused {
            component,
            reason,
            retry_after,
        } => {
            assert_eq!(component, "otlp");
            assert_eq!(reason, "sending queue is full (6 items)");
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_enqueue_failed_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_queue_capacity{exporter=\"otlp\"}"
        ),
        6.0
    );
    assert_eq!(
        metric(&telemetry, "weir_exporter_queue_size{exporter=\"otlp\"}"),
        6.0
    );
    // Shutdown returns only once both queued batches are delivered.
    exporter.shutdown().await;
    assert_eq!(upstream.items(), 6);
    assert_eq!(
        metric(&telemetry, "weir_exporter_queue_size{exporter=\"otlp\"}"),
        0.0
    );
    assert!(matches!(
        exporter.consume(Batch::new(logs("late", 1))).await,
        Err(ConsumeError::ShuttingDown)
    ));
    server.abort();
}

#[tokio::test]
async fn without_queue_consume_reports_the_send_result() {
    let upstream = Upstream::default().script(vec![Reply::Fail(Status::invalid_argument(
        "schema mismatch",
    ))]);
    let (addr, server) = upstream.serve().await;
    let (exporter, _) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("http://{addr}"), "sending_queue": {"enabled": false}}),
    );
    exporter.start().await.unwrap();
    match exporter.consume(Batch::new(logs("s", 1))).await {
        Err(ConsumeError::Rejected { component, reason }) => {
            assert_eq!(component, "otlp");
            assert!(
                reason.contains("InvalidArgument: schema mismatch"),
                "{reason}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    exporter.consume(Batch::new(logs("s", 1))).await.unwrap();
    assert_eq!(upstream.items(), 1);
    server.abort();

    let port = free_port();
    let (exporter, _) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": format!("http://127.0.0.1:{port}"),
            "sending_queue": {"enabled": false},
            "retry_on_failure": {"enabled": false},
        }),
    );
    match exporter.consume(Batch::new(logs("s", 1))).await {
        Err(ConsumeError::Refused { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("expected Refused, got {other:?}"),
    }
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
async fn delivers_over_tls_to_a_server_its_ca_file_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca_file) = upstream_tls(dir.path(), weir_tls::Alpn::Grpc);
    let upstream = Upstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let logs_service = LogsServiceServer::new(upstream.clone());
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(logs_service)
            .serve_with_incoming(tls.incoming(listener))
            .await
            .unwrap();
    });
    // No scheme and no `insecure`: TLS, as in the collector.
    let (exporter, _telemetry) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": format!("localhost:{port}"), "tls": {"ca_file": ca_file}, "compression": "none"}),
    );
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("tls", 3))).await.unwrap();
    assert!(wait_until(Duration::from_secs(10), || upstream.items() == 3).await);
    exporter.shutdown().await;
    assert_eq!(upstream.payloads(), vec![logs("tls", 3)]);
    server.abort();
}

/// The seq attribute values of every log record the upstream received, sorted.
fn received_log_seqs(upstream: &Upstream) -> Vec<String> {
    let mut seqs = Vec::new();
    for p in upstream.payloads() {
        let Payload::Logs(r) = p else { continue };
        for rl in r.resource_logs {
            for sl in rl.scope_logs {
                for rec in sl.log_records {
                    seqs.push(format!("{:?}", rec.attributes[0].value));
                }
            }
        }
    }
    seqs.sort();
    seqs
}

#[tokio::test]
async fn sending_queue_batch_merges_and_splits_by_min_and_max_size() {
    let upstream = Upstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, telemetry) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": format!("http://{addr}"),
            "sending_queue": {"sizer": "items", "queue_size": 1000,
                "batch": {"flush_timeout": "2s", "min_size": 10, "max_size": 25}},
        }),
    );
    exporter.start().await.unwrap();
    // 12 senders of 3 records at once: 36 records, merged into requests of at most 25.
    let sends = (0..12).map(|i| exporter.consume(Batch::new(logs(&format!("s{i}"), 3))));
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    exporter.shutdown().await;
    let sizes: Vec<usize> = upstream.payloads().iter().map(|p| p.item_count()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 36, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 25), "{sizes:?}");
    assert!(sizes.len() < 12, "batches were merged: {sizes:?}");
    let mut want: Vec<String> = upstream_free_seqs(12, 3);
    want.sort();
    assert_eq!(
        received_log_seqs(&upstream),
        want,
        "each record exactly once"
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        36.0
    );
    server.abort();
}

/// What `received_log_seqs` shows for `senders` batches of `n` records from `logs("s{i}", n)`.
fn upstream_free_seqs(senders: usize, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..senders {
        let Payload::Logs(r) = logs(&format!("s{i}"), n) else {
            unreachable!()
        };
        for rec in &r.resource_logs[0].scope_logs[0].log_records {
            out.push(format!("{:?}", rec.attributes[0].value));
        }
    }
    out
}

#[tokio::test]
async fn an_empty_sending_queue_batch_turns_batching_on_with_the_defaults() {
    let upstream = Upstream::default();
    let (addr, server) = upstream.serve().await;
    let (exporter, _) = build_exporter(
        "otlp",
        serde_json::json!({
            "endpoint": format!("http://{addr}"),
            "sending_queue": {"batch": null},
        }),
    );
    exporter.start().await.unwrap();
    // Below min_size (8192): all of it waits for one flush (idle or flush_timeout 200ms).
    let sends = (0..8).map(|i| exporter.consume(Batch::new(logs(&format!("s{i}"), 2))));
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }
    exporter.shutdown().await;
    let sizes: Vec<usize> = upstream.payloads().iter().map(|p| p.item_count()).collect();
    assert_eq!(sizes, vec![16], "one merged request");
    server.abort();
}
