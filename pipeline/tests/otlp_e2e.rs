//! End to end: real OTLP clients -> a real `weir` (or two) -> a test OTLP/gRPC server, with
//! the exact records checked on arrival.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_api::fixtures::kv;

/// The test's OTLP/gRPC server: records every request.
#[derive(Clone, Default)]
struct Sink {
    logs: Arc<Mutex<Vec<ExportLogsServiceRequest>>>,
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs.lock().unwrap().push(r.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}
#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(r.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}
#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(r.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

impl Sink {
    fn start(&self, port: u16) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(
                    LogsServiceServer::new(me.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    TraceServiceServer::new(me.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    MetricsServiceServer::new(me)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve(([127, 0, 0, 1], port).into())
                .await
                .unwrap();
        })
    }

    /// Log bodies in arrival order, each with its `k` attribute and resource service.name.
    fn log_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for req in self.logs.lock().unwrap().iter() {
            for rl in &req.resource_logs {
                let service = attr(&rl.resource.as_ref().unwrap().attributes, "service.name");
                for sl in &rl.scope_logs {
                    for lr in &sl.log_records {
                        let body = match lr.body.as_ref().and_then(|b| b.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        out.push(format!(
                            "{service}|{body}|k={}|sev={}",
                            attr(&lr.attributes, "k"),
                            lr.severity_number
                        ));
                    }
                }
            }
        }
        out
    }

    fn span_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for req in self.traces.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push(format!(
                            "{}|{}|{}",
                            s.name,
                            hex(&s.trace_id),
                            hex(&s.span_id)
                        ));
                    }
                }
            }
        }
        out
    }

    fn metric_points(&self) -> Vec<String> {
        let mut out = Vec::new();
        for req in self.metrics.lock().unwrap().iter() {
            for rm in &req.resource_metrics {
                for sm in &rm.scope_metrics {
                    for m in &sm.metrics {
                        if let Some(metric::Data::Gauge(g)) = &m.data {
                            for p in &g.data_points {
                                out.push(format!("{}={:?}", m.name, p.value));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(attrs: &[KeyValue], key: &str) -> String {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

fn logs(service: &str, bodies: &[&str]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .enumerate()
                    .map(|(i, b)| LogRecord {
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(b.to_string())),
                        }),
                        attributes: vec![kv("k", format!("v{i}"))],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn traces() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("e2e"),
            scope_spans: vec![ScopeSpans {
                spans: (1..=2u8)
                    .map(|i| Span {
                        name: format!("span-{i}"),
                        trace_id: vec![i; 16],
                        span_id: vec![i; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("e2e"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue.depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: [3, 5]
                            .iter()
                            .map(|v| NumberDataPoint {
                                value: Some(number_data_point::Value::AsInt(*v)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Waits until `check` holds, up to `limit`.
async fn eventually(limit: Duration, check: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// One HTTP/1.1 POST; returns the status code.
async fn post(port: u16, path: &str, content_type: &str, gzip: bool, body: Vec<u8>) -> u16 {
    let body = if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&body).unwrap();
        e.finish().unwrap()
    } else {
        body
    };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let encoding = if gzip {
        "Content-Encoding: gzip\r\n"
    } else {
        ""
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

struct Weir {
    child: std::process::Child,
    dir: tempfile::TempDir,
    ports: Ports,
}

impl Weir {
    fn start(exporters_yaml: &str, exporter: &str, batch_timeout: &str) -> Weir {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::pick();
        let cfg = runnable_config(&ports, exporters_yaml, exporter).replace(
            "batch: {timeout: 50ms}",
            &format!("batch: {{timeout: {batch_timeout}}}"),
        );
        let path = write(dir.path(), "weir.yaml", &cfg);
        let child = spawn(dir.path(), &path, &["--shutdown-timeout", "8s"]);
        let w = Weir { child, dir, ports };
        if wait_for_status(w.ports.health, "/", 200, Duration::from_secs(20)).is_none() {
            panic!("weir did not become ready; log:\n{}", log_of(w.dir.path()));
        }
        w
    }

    fn stop(mut self) -> String {
        sigterm(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(15));
        let log = log_of(self.dir.path());
        assert!(
            status.is_some_and(|s| s.success()),
            "weir did not exit cleanly: {status:?}\n{log}"
        );
        log
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn grpc_exporter(sink_port: u16) -> String {
    format!("  otlp:\n    endpoint: 127.0.0.1:{sink_port}\n    tls: {{insecure: true}}\n    retry_on_failure: {{initial_interval: 100ms, max_interval: 500ms}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_in_grpc_out_delivers_exact_records() {
    let sink = Sink::default();
    let sink_port = free_port();
    let server = sink.start(sink_port);
    let weir = Weir::start(&grpc_exporter(sink_port), "otlp", "50ms");
    let endpoint = format!("http://127.0.0.1:{}", weir.ports.grpc);

    LogsServiceClient::connect(endpoint.clone())
        .await
        .unwrap()
        .export(logs("e2e", &["one", "two", "three"]))
        .await
        .unwrap();
    TraceServiceClient::connect(endpoint.clone())
        .await
        .unwrap()
        .export(traces())
        .await
        .unwrap();
    MetricsServiceClient::connect(endpoint)
        .await
        .unwrap()
        .export(metrics())
        .await
        .unwrap();

    assert!(
        eventually(Duration::from_secs(10), || sink.log_lines().len() >= 3
            && sink.span_lines().len() >= 2
            && sink.metric_points().len() >= 2)
        .await
    );
    assert_eq!(
        sink.log_lines(),
        vec![
            "e2e|one|k=v0|sev=9",
            "e2e|two|k=v1|sev=9",
            "e2e|three|k=v2|sev=9"
        ]
    );
    assert_eq!(
        sink.span_lines(),
        vec![
            "span-1|01010101010101010101010101010101|0101010101010101",
            "span-2|02020202020202020202020202020202|0202020202020202",
        ]
    );
    assert_eq!(
        sink.metric_points(),
        vec!["queue.depth=Some(AsInt(3))", "queue.depth=Some(AsInt(5))"]
    );

    let (_, text) = http_get(weir.ports.metrics, "/metrics").unwrap();
    assert!(
        text.contains("weir_pipeline_received_items_total{pipeline=\"logs\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("weir_pipeline_received_items_total{pipeline=\"traces\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("weir_pipeline_received_items_total{pipeline=\"metrics\"} 2"),
        "{text}"
    );
    weir.stop();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proto_gzip_and_json_through_two_weirs() {
    let sink = Sink::default();
    let sink_port = free_port();
    let server = sink.start(sink_port);
    let second = Weir::start(&grpc_exporter(sink_port), "otlp", "50ms");
    let first = Weir::start(
        &format!(
            "  otlphttp:\n    endpoint: http://127.0.0.1:{}",
            second.ports.http
        ),
        "otlphttp",
        "50ms",
    );

    let status = post(
        first.ports.http,
        "/v1/logs",
        "application/x-protobuf",
        true,
        logs("proto", &["a", "b"]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let json_logs = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json"}}]},
        "scopeLogs":[{"logRecords":[{"severityNumber":9,"body":{"stringValue":"c"},"attributes":[{"key":"k","value":{"stringValue":"v0"}}]}]}]}]}"#;
    assert_eq!(
        post(
            first.ports.http,
            "/v1/logs",
            "application/json",
            false,
            json_logs.as_bytes().to_vec()
        )
        .await,
        200
    );
    let json_spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"span-1","traceId":"01010101010101010101010101010101","spanId":"0101010101010101"}]}]}]}"#;
    assert_eq!(
        post(
            first.ports.http,
            "/v1/traces",
            "application/json",
            true,
            json_spans.as_bytes().to_vec()
        )
        .await,
        200
    );
    assert_eq!(
        post(
            first.ports.http,
            "/v1/metrics",
            "application/x-protobuf",
            false,
            metrics().encode_to_vec()
        )
        .await,
        200
    );

    assert!(
        eventually(Duration::from_secs(15), || sink.log_lines().len() >= 3
            && !sink.span_lines().is_empty()
            && sink.metric_points().len() >= 2)
        .await
    );
    let mut lines = sink.log_lines();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "json|c|k=v0|sev=9",
            "proto|a|k=v0|sev=9",
            "proto|b|k=v1|sev=9"
        ]
    );
    assert_eq!(
        sink.span_lines(),
        vec!["span-1|01010101010101010101010101010101|0101010101010101"]
    );
    assert_eq!(
        sink.metric_points(),
        vec!["queue.depth=Some(AsInt(3))", "queue.depth=Some(AsInt(5))"]
    );
    first.stop();
    second.stop();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_batch_and_drains_the_exporter() {
    let sink = Sink::default();
    let sink_port = free_port();
    let server = sink.start(sink_port);
    // A batch timeout far longer than the test.
    let weir = Weir::start(&grpc_exporter(sink_port), "otlp", "1h");
    let endpoint = format!("http://127.0.0.1:{}", weir.ports.grpc);
    let mut client = LogsServiceClient::connect(endpoint).await.unwrap();
    // The batch processor answers once the flush holding the records was accepted
    // downstream: with a 1h timeout, after a 5 ms pause in arrivals (the only sender waits
    // for its answer), not at the timeout.
    let started = std::time::Instant::now();
    client.export(logs("drain", &["x", "y"])).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    weir.stop();
    assert_eq!(
        sink.log_lines(),
        vec!["drain|x|k=v0|sev=9", "drain|y|k=v1|sev=9"]
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_then_back_loses_nothing() {
    let sink = Sink::default();
    let sink_port = free_port();
    let weir = Weir::start(&grpc_exporter(sink_port), "otlp", "50ms");
    let endpoint = format!("http://127.0.0.1:{}", weir.ports.grpc);
    LogsServiceClient::connect(endpoint)
        .await
        .unwrap()
        .export(logs("late", &["p", "q", "r"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let server = sink.start(sink_port);
    assert!(
        eventually(Duration::from_secs(10), || sink.log_lines().len() >= 3).await,
        "log:\n{}",
        log_of(weir.dir.path())
    );
    assert_eq!(
        sink.log_lines(),
        vec![
            "late|p|k=v0|sev=9",
            "late|q|k=v1|sev=9",
            "late|r|k=v2|sev=9"
        ]
    );
    // The retries are visible in the own metrics.
    let (_, text) = http_get(weir.ports.metrics, "/metrics").unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    };
    assert!(
        value("weir_exporter_retries_total{exporter=\"otlp\",signal=\"logs\"}") >= 1,
        "{text}"
    );
    assert_eq!(
        value("weir_exporter_sent_items_total{exporter=\"otlp\",signal=\"logs\"}"),
        3,
        "{text}"
    );
    weir.stop();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_while_draining_and_the_deadline_bounds_shutdown() {
    // The upstream never comes up: the exporter holds the data and keeps retrying, so the
    // drain lasts until the shutdown deadline.
    let dead_port = free_port();
    let mut weir = Weir::start(&grpc_exporter(dead_port), "otlp", "50ms");
    let endpoint = format!("http://127.0.0.1:{}", weir.ports.grpc);
    LogsServiceClient::connect(endpoint)
        .await
        .unwrap()
        .export(logs("stuck", &["z"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stop = std::time::Instant::now();
    sigterm(&weir.child);
    let body = wait_for_status(weir.ports.health, "/", 503, Duration::from_secs(5));
    assert_eq!(body.as_deref(), Some("{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\",\"uptime\":\"\"}"));
    let status = wait_exit(&mut weir.child, Duration::from_secs(20)).expect("weir did not exit");
    let elapsed = stop.elapsed();
    let log = log_of(weir.dir.path());
    assert!(
        elapsed >= Duration::from_secs(7) && elapsed < Duration::from_secs(12),
        "{elapsed:?}\n{log}"
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("shutdown deadline exceeded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigterm_cuts_the_drain_short() {
    let dead_port = free_port();
    let mut weir = Weir::start(&grpc_exporter(dead_port), "otlp", "50ms");
    let endpoint = format!("http://127.0.0.1:{}", weir.ports.grpc);
    LogsServiceClient::connect(endpoint)
        .await
        .unwrap()
        .export(logs("stuck", &["z"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&weir.child);
    assert!(wait_for_status(weir.ports.health, "/", 503, Duration::from_secs(5)).is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = std::time::Instant::now();
    sigterm(&weir.child);
    let status = wait_exit(&mut weir.child, Duration::from_secs(5))
        .expect("weir ignored the second SIGTERM");
    let log = log_of(weir.dir.path());
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "{:?}\n{log}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("second signal during shutdown"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_runs_as_deprecated_debug_and_debug_writes_to_output_paths() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("debug.out");
    let exporters = format!(
        "  logging: {{loglevel: debug}}\n  debug/file: {{verbosity: normal, use_internal_logger: false, output_paths: ['{}']}}",
        out.display()
    );
    let weir = Weir::start(&exporters, "logging, debug/file", "50ms");
    let body = logs("printed", &["first-record", "second-record"]).encode_to_vec();
    assert_eq!(
        post(
            weir.ports.http,
            "/v1/logs",
            "application/x-protobuf",
            false,
            body
        )
        .await,
        200
    );
    let shown = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(10), || shown().lines().count() >= 3).await,
        "output file: {:?}",
        shown()
    );
    let text = shown();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "Logs: 1 resource logs, 2 log records");
    assert!(lines[1].contains("first-record"), "{text}");
    assert!(lines[2].contains("second-record"), "{text}");
    let log = weir.stop();
    assert!(
        log.contains("the logging exporter is deprecated"),
        "no deprecation warning:\n{log}"
    );
    // loglevel: debug maps to the detailed verbosity: every field is shown in the log.
    assert!(log.contains("second-record"), "{log}");
}
