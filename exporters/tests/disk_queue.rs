//! `sending_queue.storage` (the disk queue) through a real `otlp` exporter: a full disk
//! budget refuses with a retry hint, shutdown leaves what is unsent on disk, and the next
//! exporter on the same directory sends it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{build_exporter, free_port, logs, metric, wait_until};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use weir_api::otlp::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use weir_api::otlp::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use weir_api::{Batch, ConsumeError};

/// Counts the log records it receives.
#[derive(Clone, Default)]
struct CountingUpstream(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl LogsService for CountingUpstream {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let n: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.0.fetch_add(n, Ordering::SeqCst);
        Ok(Response::new(Default::default()))
    }
}

fn config(port: u16, dir: &std::path::Path) -> serde_json::Value {
    serde_json::json!({
        "endpoint": format!("http://127.0.0.1:{port}"),
        "retry_on_failure": {"initial_interval": "50ms", "max_interval": "100ms", "max_elapsed_time": "0s"},
        "sending_queue": {
            "queue_size": 100000,
            "storage": {"directory": dir.display().to_string(), "fsync": "never", "max_size_mib": 1},
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_budget_refuses_then_a_restart_sends_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nobody listens yet
    let (exporter, telemetry) = build_exporter("otlp", config(port, dir.path()));
    exporter.start().await.unwrap();
    let batch_bytes = Batch::new(logs("b", 500)).encoded_len();
    assert!(batch_bytes > 30_000, "{batch_bytes}");
    let mut accepted = 0;
    let err = loop {
        match exporter.consume(Batch::new(logs("b", 500))).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "the budget never filled");
    };
    // 1 MiB holds this many records of this size (21 bytes of framing each).
    assert_eq!(accepted, (1 << 20) / (batch_bytes + 21));
    match &err {
        ConsumeError::Refused {
            component,
            reason,
            retry_after,
        } => {
            assert_eq!(component, "otlp");
            assert!(reason.contains("is full"), "{reason}");
            assert!(reason.contains("of 1048576 bytes in use"), "{reason}");
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_enqueue_failed_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        500.0
    );
    assert_eq!(
        metric(&telemetry, "weir_exporter_queue_size{exporter=\"otlp\"}"),
        accepted as f64
    );
    let persisted = metric(
        &telemetry,
        "weir_exporter_persisted_bytes{exporter=\"otlp\"}",
    );
    assert_eq!(persisted, (accepted * (batch_bytes + 21)) as f64);
    // Shutdown does not wait out the retries: what is unsent stays on disk.
    let started = Instant::now();
    exporter.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(exporter);

    // The upstream comes back; a new exporter on the same directory sends it all.
    let upstream = CountingUpstream::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let svc = LogsServiceServer::new(upstream.clone()).accept_compressed(CompressionEncoding::Gzip);
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let (exporter, telemetry) = build_exporter("otlp", config(port, dir.path()));
    exporter.start().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || upstream
            .0
            .load(Ordering::SeqCst)
            >= accepted * 500)
        .await
    );
    exporter.shutdown().await;
    assert_eq!(upstream.0.load(Ordering::SeqCst), accepted * 500);
    assert_eq!(
        metric(&telemetry, "weir_exporter_queue_size{exporter=\"otlp\"}"),
        0.0
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_sent_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        (accepted * 500) as f64
    );
    server.abort();
}

#[tokio::test]
async fn two_exporters_cannot_share_a_directory_and_storage_extensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = build_exporter("otlp", config(free_port(), dir.path()));
    first.start().await.unwrap();
    let (second, _) = build_exporter("otlp", config(free_port(), dir.path()));
    let err = second.start().await.unwrap_err().to_string();
    assert!(
        err.contains("cannot open sending_queue.storage.directory"),
        "{err}"
    );
    first.shutdown().await;

    let mut registry = weir_api::Registry::new();
    weir_exporters::register(&mut registry);
    let err = registry
        .exporters
        .get("otlp")
        .unwrap()
        .parse(
            &serde_json::json!({"endpoint": "http://127.0.0.1:1", "sending_queue": {"storage": "redis_storage"}}),
            "exporters.otlp",
        )
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(
            "exporters.otlp.sending_queue.storage: `redis_storage` is not a file_storage extension"
        ),
        "{err}"
    );
    // The collector's form names a file_storage extension; one that was not built fails
    // the start, naming it.
    let (missing, _) = build_exporter(
        "otlp",
        serde_json::json!({"endpoint": "http://127.0.0.1:1", "sending_queue": {"storage": "file_storage/nowhere"}}),
    );
    let err = missing.start().await.unwrap_err().to_string();
    assert!(
        err.contains("\"file_storage/nowhere\" is not a configured file_storage extension"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sending_queue_refuses_before_writing_so_a_restart_sends_no_refused_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nobody listens yet
    let mut cfg = config(port, dir.path());
    cfg["sending_queue"]["queue_size"] = serde_json::json!(3);
    cfg["sending_queue"]["num_consumers"] = serde_json::json!(1);
    let (exporter, telemetry) = build_exporter("otlp", cfg.clone());
    exporter.start().await.unwrap();
    let batch_bytes = Batch::new(logs("b", 10)).encoded_len();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..200 {
        match exporter.consume(Batch::new(logs("b", 10))).await {
            Ok(()) => accepted += 1,
            Err(ConsumeError::Refused { reason, .. }) => {
                assert!(
                    reason.contains("sending queue is full (3 requests)"),
                    "{reason}"
                );
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((accepted, refused), (3, 197));
    // Only the accepted batches were written.
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_persisted_bytes{exporter=\"otlp\"}"
        ),
        (3 * (batch_bytes + 21)) as f64
    );
    exporter.shutdown().await;
    drop(exporter);

    let upstream = CountingUpstream::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let svc = LogsServiceServer::new(upstream.clone()).accept_compressed(CompressionEncoding::Gzip);
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let (exporter, _) = build_exporter("otlp", cfg);
    exporter.start().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || upstream
            .0
            .load(Ordering::SeqCst)
            >= 30)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    exporter.shutdown().await;
    assert_eq!(
        upstream.0.load(Ordering::SeqCst),
        30,
        "the 3 accepted batches, once"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_in_maximum_age_drops_stored_data_counts_it_and_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nobody listens
    let mut cfg = config(port, dir.path());
    cfg["retry_on_failure"] = serde_json::json!({
        "initial_interval": "50ms", "max_interval": "100ms", "max_elapsed_time": "300ms"
    });
    let (exporter, telemetry) = build_exporter("otlp", cfg.clone());
    exporter.start().await.unwrap();
    exporter.consume(Batch::new(logs("old", 7))).await.unwrap();
    let expired = "weir_exporter_retry_expired_items_total{exporter=\"otlp\",signal=\"logs\"}";
    assert!(
        wait_until(Duration::from_secs(10), || metric(&telemetry, expired)
            == 7.0)
        .await,
        "{}",
        telemetry.encode()
    );
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_send_failed_items_total{exporter=\"otlp\",signal=\"logs\"}"
        ),
        7.0
    );
    exporter.shutdown().await;
    drop(exporter);
    // Given up on is acknowledged: a restart does not send it.
    let upstream = CountingUpstream::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let svc = LogsServiceServer::new(upstream.clone()).accept_compressed(CompressionEncoding::Gzip);
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let (exporter, telemetry) = build_exporter("otlp", cfg);
    exporter.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    exporter.shutdown().await;
    assert_eq!(upstream.0.load(Ordering::SeqCst), 0);
    assert_eq!(
        metric(
            &telemetry,
            "weir_exporter_persisted_bytes{exporter=\"otlp\"}"
        ),
        0.0
    );
    server.abort();
}
