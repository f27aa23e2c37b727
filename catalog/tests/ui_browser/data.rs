//! What the UI test feeds the catalog: `frontend` and `payments` logs, spans and a gauge,
//! and `checkout`'s DEBUG/INFO logs (as OTLP JSON for the edge, or as a batch when no
//! `weir` binary is at hand).

use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use weir_api::{Batch, Payload};
use weir_catalog::control::ControlPlane;

pub fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

pub fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service), kv("host.name", "node-7")],
        ..Default::default()
    })
}

pub const T0: u64 = 1_700_000_000_000_000_000;

/// `frontend`: health-check logs, request logs, spans (health checks among them) and a
/// gauge that never changes. `payments`: request logs only.
pub fn other_services() -> Vec<Batch> {
    let log = |i: u64, sev: &str, body: String, attrs: Vec<KeyValue>| LogRecord {
        time_unix_nano: T0 + i * 1_000_000_000,
        severity_text: sev.into(),
        severity_number: if sev == "WARN" { 13 } else { 9 },
        body: s(&body),
        attributes: attrs,
        ..Default::default()
    };
    let frontend_logs = (0..400)
        .map(|i| match i % 4 {
            // Words, not a path: masking keeps only vocabulary words in a template, and
            // the health-check finding reads the template.
            0 | 1 => log(i, "INFO", "health check passed in 0ms".into(), vec![]),
            2 => log(
                i,
                "INFO",
                format!("GET /products/{i} 200 {}ms", i % 50),
                vec![
                    kv("http.route", "/products/{id}"),
                    kv("user.id", format!("u{i}")),
                ],
            ),
            _ => log(
                i,
                "WARN",
                format!("slow upstream catalog {}ms", 900 + i),
                vec![],
            ),
        })
        .collect();
    let payments_logs = (0..150)
        .map(|i| {
            log(
                i,
                "INFO",
                format!("charge {i} authorised amount={}", i * 3),
                vec![kv("currency", "EUR")],
            )
        })
        .collect();
    let logs = |service: &str, records: Vec<LogRecord>| {
        Batch::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(service),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    };
    let spans = (0..300u64)
        .map(|i| {
            let (name, kind) = match i % 3 {
                0 => ("GET /healthz", span::SpanKind::Server),
                1 => ("GET /products/{id}", span::SpanKind::Server),
                _ => ("SELECT products", span::SpanKind::Client),
            };
            Span {
                trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
                span_id: (i + 1).to_be_bytes().to_vec(),
                name: name.into(),
                kind: kind as i32,
                start_time_unix_nano: T0 + i * 1_000_000_000,
                end_time_unix_nano: T0 + i * 1_000_000_000 + (i % 40 + 1) * 1_000_000,
                attributes: vec![kv("http.method", "GET")],
                ..Default::default()
            }
        })
        .collect();
    let traces = Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("frontend"),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    let gauge =
        |name: &str, value: &dyn Fn(u64) -> f64, attrs: &dyn Fn(u64) -> Vec<KeyValue>| Metric {
            name: name.into(),
            unit: "1".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: (0..120u64)
                    .map(|i| NumberDataPoint {
                        time_unix_nano: T0 + i * 1_000_000_000,
                        value: Some(number_data_point::Value::AsDouble(value(i))),
                        attributes: attrs(i),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        };
    let metrics = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("frontend"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    gauge("process.threads", &|_| 16.0, &|_| vec![]),
                    gauge("http.server.active_requests", &|i| (i % 9) as f64, &|i| {
                        vec![kv("http.route", format!("/r{}", i % 6))]
                    }),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    vec![
        logs("frontend", frontend_logs),
        logs("payments", payments_logs),
        traces,
        metrics,
    ]
}

/// 100 DEBUG and 100 INFO records from `checkout`, as OTLP/HTTP JSON (what the edge gets).
pub fn checkout_json(round: u64) -> String {
    let mut records = Vec::new();
    for i in 0..100u64 {
        let t = T0 + round * 1_000_000_000_000 + i * 1_000_000_000;
        records.push(format!(
            r#"{{"timeUnixNano":"{t}","severityText":"DEBUG","severityNumber":5,"body":{{"stringValue":"cache lookup key=user:{i} hit=true"}}}}"#
        ));
        records.push(format!(
            r#"{{"timeUnixNano":"{t}","severityText":"INFO","severityNumber":9,"body":{{"stringValue":"order {i} placed"}}}}"#
        ));
    }
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

/// `checkout` logs for the catalog when no `weir` binary is at hand (same records as
/// [`checkout_json`]).
pub fn checkout_batch(round: u64) -> Batch {
    let mut records = Vec::new();
    for i in 0..100u64 {
        let t = T0 + round * 1_000_000_000_000 + i * 1_000_000_000;
        for (sev, num, body) in [
            ("DEBUG", 5, format!("cache lookup key=user:{i} hit=true")),
            ("INFO", 9, format!("order {i} placed")),
        ] {
            records.push(LogRecord {
                time_unix_nano: t,
                severity_text: sev.into(),
                severity_number: num,
                body: s(&body),
                ..Default::default()
            });
        }
    }
    Batch::new(Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "checkout")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

pub fn finding_of(control: &ControlPlane, service: &str, kind: &str) -> Option<String> {
    control
        .findings()
        .unwrap()
        .into_iter()
        .find(|f| f.service == service && serde_json::to_value(f.kind).unwrap() == kind)
        .map(|f| f.id)
}
