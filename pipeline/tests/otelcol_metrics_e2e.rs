//! The Collector's own metric names: a real `weir` takes spans over gRPC and log records over
//! HTTP, sends them to a test OTLP server (and spans to a dead one), and its `/metrics` must
//! carry the exact `otelcol_*` counts per name and label beside the `weir_*` ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
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
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Default)]
struct Sink {
    spans: Arc<Mutex<usize>>,
    logs: Arc<Mutex<usize>>,
    /// Pushed own-metrics requests.
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
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

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = r
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        *self.spans.lock().unwrap() += n;
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n: usize = r
            .into_inner()
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        *self.logs.lock().unwrap() += n;
        Ok(tonic::Response::new(Default::default()))
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("svc".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// The value of the sample whose line starts with `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otelcol_metrics_count_real_traffic_per_name_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let sink_port = free_port();
    let dead_port = free_port();
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
      http: {{endpoint: '127.0.0.1:{http}'}}
processors:
  batch: {{timeout: 50ms}}
exporters:
  otlp/up:
    endpoint: 127.0.0.1:{sink_port}
    tls: {{insecure: true}}
  otlp/down:
    endpoint: 127.0.0.1:{dead_port}
    tls: {{insecure: true}}
    retry_on_failure: {{enabled: false}}
service:
  telemetry:
    resource: {{service.name: edge-a, service.instance.id: null}}
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}}}}}}}
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {bare}
                without_units: true
                without_type_suffix: true
                without_scope_info: true
                with_resource_constant_labels: {{included: [service.name]}}
        - periodic:
            interval: 200
            exporter: {{otlp: {{protocol: grpc, endpoint: 'http://127.0.0.1:{sink_port}', insecure: true}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp/up, otlp/down]}}
    logs: {{receivers: [otlp], exporters: [otlp/up]}}
",
        grpc = ports.grpc,
        http = ports.http,
        metrics = ports.metrics,
        bare = ports.health,
    );
    let cfg = write(dir.path(), "weir.yaml", &config);
    let sink = Sink::default();
    let server = {
        let s = sink.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(
                    TraceServiceServer::new(s.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    LogsServiceServer::new(s.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(MetricsServiceServer::new(s))
                .serve(([127, 0, 0, 1], sink_port).into())
                .await
                .unwrap();
        })
    };
    let mut child = spawn(dir.path(), &cfg, &[]);
    assert!(
        wait_for_status(ports.metrics, "/metrics", 200, Duration::from_secs(30)).is_some(),
        "{}",
        log_of(dir.path())
    );

    // 5 spans over gRPC in two requests.
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = TraceServiceClient::connect(format!("http://127.0.0.1:{}", ports.grpc)).await
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = client.expect("grpc receiver up");
    for n in [2usize, 3] {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    spans: (0..n)
                        .map(|i| Span {
                            trace_id: vec![1; 16],
                            span_id: vec![i as u8 + 1; 8],
                            name: format!("op{i}"),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        client.export(req).await.unwrap();
    }
    // 3 log records over HTTP (protobuf).
    let body = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: (0..3)
                    .map(|i| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("l{i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", ports.http))
        .await
        .unwrap();
    s.write_all(
        format!(
            "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.write_all(&body).await.unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Wait for delivery and for the dead exporter's failure.
    let failed = "otelcol_exporter_send_failed_spans_total{exporter=\"otlp/down\",otel_scope_name=\"go.opentelemetry.io/collector/exporter/exporterhelper\",otel_scope_version=\"\"}";
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        text = http_get(ports.metrics, "/metrics").unwrap().1;
        let sent = |what: &str| {
            sample(
                &text,
                &format!("otelcol_exporter_sent_{what}_total{{exporter=\"otlp/up\",otel_scope_name=\"go.opentelemetry.io/collector/exporter/exporterhelper\",otel_scope_version=\"\"}}"),
            )
        };
        if *sink.spans.lock().unwrap() == 5
            && *sink.logs.lock().unwrap() == 3
            && sample(&text, failed) == Some(5.0)
            && sent("spans") == Some(5.0)
            && sent("log_records") == Some(3.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recv = "otel_scope_name=\"go.opentelemetry.io/collector/receiver/receiverhelper\",otel_scope_version=\"\"";
    let exp = "otel_scope_name=\"go.opentelemetry.io/collector/exporter/exporterhelper\",otel_scope_version=\"\"";
    let proc_ = "otel_scope_name=\"go.opentelemetry.io/collector/processor/processorhelper\",otel_scope_version=\"\"";
    for (series, want) in [
        (format!("otelcol_receiver_accepted_spans_total{{receiver=\"otlp\",transport=\"grpc\",{recv}}}"), 5.0),
        (format!("otelcol_receiver_accepted_spans_total{{receiver=\"otlp\",transport=\"http\",{recv}}}"), 0.0),
        (format!("otelcol_receiver_accepted_log_records_total{{receiver=\"otlp\",transport=\"http\",{recv}}}"), 3.0),
        (format!("otelcol_receiver_accepted_log_records_total{{receiver=\"otlp\",transport=\"grpc\",{recv}}}"), 0.0),
        (format!("otelcol_receiver_refused_spans_total{{receiver=\"otlp\",transport=\"grpc\",{recv}}}"), 0.0),
        (format!("otelcol_exporter_sent_spans_total{{exporter=\"otlp/up\",{exp}}}"), 5.0),
        (format!("otelcol_exporter_sent_log_records_total{{exporter=\"otlp/up\",{exp}}}"), 3.0),
        (format!("otelcol_exporter_sent_spans_total{{exporter=\"otlp/down\",{exp}}}"), 0.0),
        (failed.to_string(), 5.0),
        (format!("otelcol_exporter_send_failed_log_records_total{{exporter=\"otlp/up\",{exp}}}"), 0.0),
        (format!("otelcol_processor_incoming_items_total{{processor=\"batch\",otel_signal=\"traces\",{proc_}}}"), 5.0),
        (format!("otelcol_processor_outgoing_items_total{{processor=\"batch\",otel_signal=\"traces\",{proc_}}}"), 5.0),
        (format!("otelcol_exporter_queue_size{{exporter=\"otlp/up\",{exp}}}"), 0.0),
    ] {
        assert_eq!(sample(&text, &series), Some(want), "{series} in:\n{text}\n{}", log_of(dir.path()));
    }
    // The weir_* names stay.
    assert_eq!(
        sample(&text, "weir_receiver_accepted_items_total{receiver=\"otlp\",transport=\"grpc\",signal=\"traces\"}"),
        Some(5.0)
    );
    let capacity = sample(
        &text,
        &format!("otelcol_exporter_queue_capacity{{exporter=\"otlp/up\",{exp}}}"),
    );
    assert!(capacity.unwrap_or(0.0) > 0.0, "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("otelcol_exporter_queue_size{{exporter=\"otlp/down\",{exp}}}")
        ),
        Some(0.0),
        "the failed batch left the queue"
    );
    let svc = "otel_scope_name=\"go.opentelemetry.io/collector/service\",otel_scope_version=\"\"";
    let uptime = sample(
        &text,
        &format!("otelcol_process_uptime_seconds_total{{{svc}}}"),
    )
    .unwrap();
    assert!(uptime > 0.0 && uptime < 120.0, "{uptime}");
    let rss = sample(&text, &format!("otelcol_process_memory_rss_bytes{{{svc}}}")).unwrap();
    assert!(rss > 1e6, "{rss}");
    assert!(sample(
        &text,
        &format!("otelcol_process_cpu_seconds_total{{{svc}}}")
    )
    .is_some());
    // The resource: service.name replaced, service.instance.id removed, version kept.
    let target = text
        .lines()
        .find(|l| l.starts_with("target_info{"))
        .unwrap();
    assert!(target.contains("service_name=\"edge-a\""), "{target}");
    assert!(target.contains("service_version=\""), "{target}");
    assert!(!target.contains("service_instance_id"), "{target}");
    assert!(text.ends_with("# EOF\n"));

    // The second pull reader: no units, no _total, no scope labels, service.name as a label.
    let bare = http_get(ports.health, "/metrics").unwrap().1;
    for (series, want) in [
        ("otelcol_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\",service_name=\"edge-a\"}", 5.0),
        ("otelcol_exporter_sent_log_records{exporter=\"otlp/up\",service_name=\"edge-a\"}", 3.0),
    ] {
        assert_eq!(sample(&bare, series), Some(want), "{series} in:\n{bare}");
    }
    assert!(
        bare.contains("# TYPE otelcol_receiver_accepted_spans unknown\n"),
        "{bare}"
    );
    assert!(
        sample(&bare, "otelcol_process_uptime{service_name=\"edge-a\"}").is_some(),
        "{bare}"
    );
    assert!(!bare.contains("otel_scope_name"), "{bare}");
    assert!(!bare.contains("otelcol_process_uptime_seconds"), "{bare}");

    // The periodic reader pushes every 200 ms while running...
    let start = Instant::now();
    while sink.metrics.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let while_running = sink.metrics.lock().unwrap().len();
    assert!(while_running >= 1, "{}", log_of(dir.path()));
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).is_some());
    // ...and once more at shutdown. The periodic reader pushed while running and once more at shutdown; the last push
    // has the final totals, under the Collector's OTLP names, units and attributes.
    let pushed = sink.metrics.lock().unwrap().clone();
    assert!(pushed.len() > while_running, "{} pushes", pushed.len());
    let last = pushed.last().unwrap();
    let rm = &last.resource_metrics[0];
    let res: Vec<(String, String)> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect();
    assert!(
        res.contains(&("service.name".to_string(), "edge-a".to_string())),
        "{res:?}"
    );
    assert!(
        !res.iter().any(|(k, _)| k == "service.instance.id"),
        "{res:?}"
    );
    let mut found = Vec::new();
    for sm in &rm.scope_metrics {
        let scope = sm.scope.as_ref().unwrap().name.clone();
        for m in &sm.metrics {
            let Some(metric::Data::Sum(sum)) = &m.data else {
                continue;
            };
            for p in &sum.data_points {
                let attrs: Vec<String> = p
                    .attributes
                    .iter()
                    .map(
                        |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => format!("{}={s}", kv.key),
                            _ => kv.key.clone(),
                        },
                    )
                    .collect();
                if let Some(number_data_point::Value::AsInt(v)) = p.value {
                    found.push((
                        scope.clone(),
                        m.name.clone(),
                        m.unit.clone(),
                        attrs.join(","),
                        v,
                    ));
                }
            }
        }
    }
    for want in [
        (
            "go.opentelemetry.io/collector/receiver/receiverhelper",
            "otelcol_receiver_accepted_spans",
            "{span}",
            "receiver=otlp,transport=grpc",
            5,
        ),
        (
            "go.opentelemetry.io/collector/exporter/exporterhelper",
            "otelcol_exporter_send_failed_spans",
            "{span}",
            "exporter=otlp/down",
            5,
        ),
        (
            "go.opentelemetry.io/collector/processor/processorhelper",
            "otelcol_processor_outgoing_items",
            "{item}",
            "processor=batch,otel.signal=traces",
            5,
        ),
    ] {
        let want = (
            want.0.to_string(),
            want.1.to_string(),
            want.2.to_string(),
            want.3.to_string(),
            want.4,
        );
        assert!(found.contains(&want), "{want:?} not in {found:?}");
    }
    server.abort();
}

/// Reads one HTTP/1.1 request from `s`: (request line, headers lowercased, body); `None`
/// when the client closed the connection.
async fn read_request(
    s: &mut tokio::net::TcpStream,
) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((request_line, headers, body))
}

/// Answers 200 to every request on `s` until the client closes it.
async fn answer_all(mut s: tokio::net::TcpStream) {
    while read_request(&mut s).await.is_some() {
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_reader_posts_otlp_protobuf_over_http_with_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // The Collector's schema-0.2 shape: headers as a map, endpoint without a scheme or path.
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
exporters:
  nop:
service:
  telemetry:
    metrics:
      level: Detailed
      readers:
        - periodic:
            interval: 100
            exporter:
              otlp:
                protocol: http/protobuf
                endpoint: 127.0.0.1:{port}
                insecure: true
                headers: {{x-api-key: secret-1}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [nop]}}
",
        grpc = ports.grpc,
    );
    let cfg = write(dir.path(), "weir.yaml", &config);
    let mut child = spawn(dir.path(), &cfg, &[]);
    let accept = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await;
    let (mut s, _) = accept
        .unwrap_or_else(|_| panic!("no push:\n{}", log_of(dir.path())))
        .unwrap();
    let (line, headers, body) = read_request(&mut s).await.expect("a request");
    s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(line, "POST /v1/metrics HTTP/1.1");
    assert!(
        headers.contains(&("x-api-key".to_string(), "secret-1".to_string())),
        "{headers:?}"
    );
    assert!(
        headers.contains(&(
            "content-type".to_string(),
            "application/x-protobuf".to_string()
        )),
        "{headers:?}"
    );
    let req = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
    let names: Vec<(String, String)> = req.resource_metrics[0]
        .scope_metrics
        .iter()
        .flat_map(|sm| sm.metrics.iter().map(|m| (m.name.clone(), m.unit.clone())))
        .collect();
    for want in [
        ("otelcol_process_uptime", "s"),
        ("otelcol_process_memory_rss", "By"),
        ("otelcol_receiver_accepted_log_records", "{record}"),
        ("otelcol_exporter_sent_log_records", "{record}"),
    ] {
        assert!(
            names.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {names:?}"
        );
    }
    // Answer the pushes that follow, including the last one at shutdown.
    tokio::spawn(answer_all(s));
    let answering = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(answer_all(s));
        }
    });
    let started = std::time::Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{}", log_of(dir.path()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    answering.abort();
}
