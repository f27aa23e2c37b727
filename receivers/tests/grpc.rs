//! OTLP/gRPC against a real receiver on 127.0.0.1 with tonic's generated clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use weir_api::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use weir_api::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use weir_api::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use weir_api::rpc_status::{RetryInfo, RpcStatus};
use weir_api::{Component, Payload};

fn grpc_only(extra: serde_json::Value) -> serde_json::Value {
    let mut grpc = serde_json::json!({"endpoint": "127.0.0.1:0"});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            grpc[k] = v;
        }
    }
    serde_json::json!({"protocols": {"grpc": grpc}})
}

#[tokio::test]
async fn every_signal_arrives_exactly_also_compressed() {
    let r = start(
        grpc_only(serde_json::json!({})),
        &["logs", "traces", "metrics"],
    )
    .await;
    let mut logs_client = LogsServiceClient::connect(r.grpc()).await.unwrap();
    let resp = logs_client.export(logs(3)).await.unwrap().into_inner();
    assert_eq!(resp.partial_success, None);
    let mut gz = LogsServiceClient::connect(r.grpc())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    gz.export(logs(2)).await.unwrap();
    // Bytes are counted as they came over the wire: gRPC frames of 5 header bytes plus the
    // message (compressed for the second call).
    let wire = metric_value(
        &r.telemetry,
        "weir_receiver_request_bytes_total{receiver=\"otlp\",transport=\"grpc\",signal=\"logs\"}",
    );
    let plain = logs(3).encode_to_vec().len() as u64 + 5;
    assert!(
        wire > plain && wire < plain + 5 + logs(2).encode_to_vec().len() as u64,
        "{wire}"
    );
    let mut zs = TraceServiceClient::connect(r.grpc())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Zstd);
    zs.export(traces(4)).await.unwrap();
    let mut m = MetricsServiceClient::connect(r.grpc()).await.unwrap();
    m.export(metrics(5)).await.unwrap();

    let got = r.recorder.take();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].payload(), &Payload::Logs(logs(3)));
    assert_eq!(
        got[0].original_bytes().map(|b| b.to_vec()),
        Some(logs(3).encode_to_vec()),
        "the batch keeps the bytes it arrived as"
    );
    assert_eq!(got[1].payload(), &Payload::Logs(logs(2)));
    assert_eq!(got[2].payload(), &Payload::Traces(traces(4)));
    assert_eq!(got[3].payload(), &Payload::Metrics(metrics(5)));
    assert_eq!(
        metric_value(
            &r.telemetry,
            "weir_receiver_accepted_items_total{receiver=\"otlp\",transport=\"grpc\",signal=\"logs\"}"
        ),
        5
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn refusal_with_delay_is_resource_exhausted_with_retry_info() {
    let r = start(grpc_only(serde_json::json!({})), &["logs"]).await;
    let mut client = LogsServiceClient::connect(r.grpc()).await.unwrap();

    r.recorder
        .answer_next(Answer::Refuse(Some(Duration::from_millis(2500))));
    let status = client.export(logs(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "memory_limiter: cannot accept data now: memory usage is above the soft limit"
    );
    let details = RpcStatus::decode(status.details()).unwrap();
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let delay = RetryInfo::decode(details.details[0].value.as_slice())
        .unwrap()
        .retry_delay
        .unwrap();
    assert_eq!((delay.seconds, delay.nanos), (2, 500_000_000));

    r.recorder.answer_next(Answer::Refuse(None));
    let status = client.export(logs(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);

    r.recorder.answer_next(Answer::Reject);
    let status = client.export(logs(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "policy: rejected data: not allowed");

    // Still serving.
    client.export(logs(2)).await.unwrap();
    assert_eq!(r.recorder.take().len(), 1);
    assert_eq!(
        metric_value(
            &r.telemetry,
            "weir_receiver_refused_items_total{receiver=\"otlp\",transport=\"grpc\",signal=\"logs\"}"
        ),
        3
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn unserved_signal_is_unimplemented_and_oversized_is_out_of_range() {
    let r = start(
        grpc_only(serde_json::json!({"max_recv_msg_size_mib": 1})),
        &["logs"],
    )
    .await;
    let mut traces_client = TraceServiceClient::connect(r.grpc()).await.unwrap();
    let status = traces_client.export(traces(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    let mut client = LogsServiceClient::connect(r.grpc()).await.unwrap();
    let mut big = logs(1);
    big.resource_logs[0].scope_logs[0].log_records[0].severity_text = "x".repeat(1100 * 1024);
    let status = client.export(big).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    client.export(logs(1)).await.unwrap();
    assert_eq!(r.recorder.take().len(), 1);
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_and_metadata_is_kept() {
    let r = start(
        grpc_only(serde_json::json!({"include_metadata": true})),
        &["logs"],
    )
    .await;
    let channel = tonic::transport::Endpoint::from_shared(r.grpc())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    );
    let status = raw
        .unary(
            tonic::Request::new(bytes::Bytes::from_static(&[0x0a, 0xff, 0xff])),
            path,
            weir_api::grpc_raw::RawBytesCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("invalid OTLP logs protobuf:"),
        "{}",
        status.message()
    );

    let mut client = LogsServiceClient::new(channel);
    let mut req = tonic::Request::new(logs(1));
    req.metadata_mut()
        .insert("x-tenant", MetadataValue::from_static("acme"));
    client.export(req).await.unwrap();
    let got = r.recorder.take();
    let md = got[0].context.metadata.as_ref().unwrap();
    assert!(
        md.contains(&("x-tenant".to_string(), "acme".to_string())),
        "{md:?}"
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn empty_request_is_ok_without_the_pipeline() {
    let r = start(grpc_only(serde_json::json!({})), &["logs"]).await;
    r.recorder.answer_next(Answer::Reject);
    let mut client = LogsServiceClient::connect(r.grpc()).await.unwrap();
    client
        .export(weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest::default())
        .await
        .unwrap();
    assert_eq!(
        r.recorder.entered.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn in_flight_budget_turns_a_burst_away_with_resource_exhausted() {
    let r = start(
        serde_json::json!({"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}, "max_in_flight_mib": 1}),
        &["logs"],
    )
    .await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    *r.recorder.gate.lock().unwrap() = Some(gate.clone());
    let mut big = logs(1);
    big.resource_logs[0].scope_logs[0].log_records[0].severity_text = "x".repeat(600 * 1024);

    let mut held_client = LogsServiceClient::connect(r.grpc()).await.unwrap();
    let first = big.clone();
    let held = tokio::spawn(async move { held_client.export(first).await });
    r.recorder.wait_entered(1).await;

    let mut client = LogsServiceClient::connect(r.grpc()).await.unwrap();
    let status = client.export(big.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "the receiver holds as many request bytes as it may; retry later"
    );
    let details = RpcStatus::decode(status.details()).unwrap();
    let delay = RetryInfo::decode(details.details[0].value.as_slice())
        .unwrap()
        .retry_delay
        .unwrap();
    assert_eq!(delay.seconds, 1);

    gate.add_permits(10);
    held.await.unwrap().unwrap();
    // The share came back: the same request now passes, also compressed.
    client.export(big.clone()).await.unwrap();
    let mut gz = LogsServiceClient::connect(r.grpc())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    gz.export(big).await.unwrap();
    assert_eq!(r.recorder.take().len(), 3);
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_an_in_flight_call() {
    let r = start(grpc_only(serde_json::json!({})), &["logs"]).await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    *r.recorder.gate.lock().unwrap() = Some(gate.clone());
    let mut client = LogsServiceClient::connect(r.grpc()).await.unwrap();
    let call = tokio::spawn(async move { client.export(logs(3)).await });
    r.recorder.wait_entered(1).await;
    let receiver = r.receiver.clone();
    let stopping = tokio::spawn(async move { receiver.shutdown().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "shutdown waits for the open call");
    gate.add_permits(1);
    call.await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.recorder.take()[0].item_count(), 3);
}
