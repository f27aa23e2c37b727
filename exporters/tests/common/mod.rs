//! Shared test helpers: OTLP payload builders and exporter setup.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_api::{BuildContext, ComponentId, Payload, Registry, Stage, Telemetry};

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

/// `n` log records whose bodies and `seq` attributes carry `tag` and their index.
pub fn logs(tag: &str, n: usize) -> Payload {
    Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("checkout"),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("{tag} line {i}"))),
                        }),
                        attributes: vec![kv("seq", format!("{tag}-{i}")), kv("user.id", "u-42")],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// `n` spans named after `tag`.
pub fn traces(tag: &str, n: usize) -> Payload {
    Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![7; 16],
                        span_id: vec![i as u8 + 1; 8],
                        name: format!("{tag} span {i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_500_000_000,
                        attributes: vec![kv("http.route", "/pay")],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// One gauge metric with `n` points.
pub fn metrics(tag: &str, n: usize) -> Payload {
    Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: format!("{tag}.queue.depth"),
                    unit: "1".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..n)
                            .map(|i| NumberDataPoint {
                                time_unix_nano: 1_700_000_000_000_000_000,
                                attributes: vec![kv("queue", format!("q{i}"))],
                                value: Some(number_data_point::Value::AsInt(i as i64)),
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
    })
}

/// Builds exporter `kind` from a JSON config through the registry, as the engine would.
pub fn build_exporter(kind: &str, config: serde_json::Value) -> (Arc<dyn Stage>, Telemetry) {
    let mut registry = Registry::new();
    weir_exporters::register(&mut registry);
    let factory = registry.exporters.get(kind).expect("registered");
    let parsed = factory
        .parse(&config, &format!("exporters.{kind}"))
        .unwrap_or_else(|e| panic!("config: {e}"));
    let ctx = BuildContext::for_component(ComponentId::parse(kind).unwrap());
    let telemetry = ctx.telemetry.clone();
    (parsed.build(&ctx).unwrap(), telemetry)
}

/// The value of one sample line (`name{labels}`) in Prometheus text, 0 when absent.
pub fn metric(telemetry: &Telemetry, series: &str) -> f64 {
    let text = telemetry.encode();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Polls `cond` every 10ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// A loopback port nothing listens on now, never the same one twice in a test process.
#[allow(unused_imports)] // not every test binary picks a port
pub use weir_api::fixtures::free_port;
