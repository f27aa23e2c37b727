//! The real OpenTelemetry Rust SDK (`opentelemetry-otlp`) exporting logs and spans to the
//! receiver over gRPC and HTTP/protobuf; the exact records must arrive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::trace::{Span, SpanKind, Tracer, TracerProvider};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use weir_api::otlp::common::v1::any_value::Value;
use weir_api::{Component, Payload};

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("sdk-test")
        .with_attribute(KeyValue::new("deployment.environment", "ci"))
        .build()
}

/// Emits one log record through `exporter` (a simple processor: exported on emit).
fn emit_log(exporter: LogExporter, body: &str) {
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource())
        .build();
    let logger = provider.logger("weir-test");
    let mut record = logger.create_log_record();
    record.set_body(AnyValue::from(body.to_string()));
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.add_attribute("user.id", 42i64);
    record.add_attribute("cart", "full");
    logger.emit(record);
    provider.shutdown().unwrap();
}

fn emit_span(exporter: SpanExporter, name: &str) {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer("weir-test");
    let mut span = tracer
        .span_builder(name.to_string())
        .with_kind(SpanKind::Server)
        .with_attributes(vec![KeyValue::new("http.route", "/checkout")])
        .start(&tracer);
    span.end();
    provider.shutdown().unwrap();
}

fn string_attr(attrs: &[weir_api::otlp::common::v1::KeyValue], key: &str) -> Option<Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

fn check_log(batch: &weir_api::Batch, body: &str) {
    let Payload::Logs(req) = batch.payload() else {
        panic!("expected logs")
    };
    assert_eq!(batch.item_count(), 1);
    let rl = &req.resource_logs[0];
    let res = rl.resource.as_ref().unwrap();
    assert_eq!(
        string_attr(&res.attributes, "service.name"),
        Some(Value::StringValue("sdk-test".into()))
    );
    assert_eq!(
        string_attr(&res.attributes, "deployment.environment"),
        Some(Value::StringValue("ci".into()))
    );
    let sl = &rl.scope_logs[0];
    assert_eq!(sl.scope.as_ref().unwrap().name, "weir-test");
    let rec = &sl.log_records[0];
    assert_eq!(
        rec.body.as_ref().unwrap().value,
        Some(Value::StringValue(body.into()))
    );
    assert_eq!(rec.severity_number, 13);
    assert_eq!(rec.severity_text, "WARN");
    assert_eq!(
        string_attr(&rec.attributes, "user.id"),
        Some(Value::IntValue(42))
    );
    assert_eq!(
        string_attr(&rec.attributes, "cart"),
        Some(Value::StringValue("full".into()))
    );
}

fn check_span(batch: &weir_api::Batch, name: &str) {
    let Payload::Traces(req) = batch.payload() else {
        panic!("expected traces")
    };
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(batch.item_count(), 1);
    assert_eq!(span.name, name);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.span_id.len(), 8);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert_eq!(
        string_attr(&span.attributes, "http.route"),
        Some(Value::StringValue("/checkout".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_logs_and_spans_over_grpc_and_http() {
    let r = start(both_protocols(), &["logs", "traces"]).await;
    let grpc = r.grpc();
    let http = format!("http://{}", r.http());

    // The SDK's simple processors export synchronously on emit: run them off the runtime's
    // worker threads (the tonic and hyper clients still use the runtime).
    let task = tokio::task::spawn_blocking(move || {
        let e = LogExporter::builder()
            .with_tonic()
            .with_endpoint(grpc.clone())
            .build()
            .unwrap();
        emit_log(e, "paid over grpc");
        let e = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(grpc)
            .build()
            .unwrap();
        emit_span(e, "POST /checkout grpc");
        let e = LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{http}/v1/logs"))
            .build()
            .unwrap();
        emit_log(e, "paid over http");
        let e = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{http}/v1/traces"))
            .build()
            .unwrap();
        emit_span(e, "POST /checkout http");
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("SDK export timed out")
        .unwrap();

    let got = r.recorder.take();
    assert_eq!(got.len(), 4, "one batch per export");
    check_log(&got[0], "paid over grpc");
    check_span(&got[1], "POST /checkout grpc");
    check_log(&got[2], "paid over http");
    check_span(&got[3], "POST /checkout http");
    r.receiver.shutdown().await;
}
