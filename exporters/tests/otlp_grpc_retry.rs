//! `otlp_grpc` against real gRPC servers on 127.0.0.1: retries, the sending queue (full,
//! blocking, draining, batching) and what is dropped and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{build_exporter, free_port, logs, metric, metrics, traces, wait_until};
use tonic::Status;
use weir_api::{Batch, ConsumeError, Payload};

use common::upstream::*;

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
