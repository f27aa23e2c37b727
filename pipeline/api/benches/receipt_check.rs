//! The receipt check of encoded OTLP export requests (`pipeline/api/src/wire_check.rs`,
//! what `Batch::decode` runs on every received request), on requests of 1,000 items of each
//! signal shaped as the weir-bench load generator builds them (bench/src/generate.rs):
//! - logs: 4 resources of 4 attributes, each record with time, severity number and text, a
//!   string body, 3 attributes (string, int, string), trace and span ids;
//! - traces: the same resources, each span with ids, name, kind, times, 3 attributes
//!   (string, int, int) and a status;
//! - metrics: the same resources, metrics of 1 to 8 points (gauges of doubles, monotonic
//!   sums of ints, histograms of 10 bounds and 11 bucket counts), 2 to 4 point attributes.
//!
//! Two rows per signal: `current` (the crate's check) and `reference` (a verbatim copy of the
//! check as it was before its fast paths, kept here so that one run compares both).
//!
//! Run: `cargo bench -p weir-api --bench receipt_check`. Throughput is in items/s. With
//! `WEIR_RECEIPT_CHECK_SEEDS=<dir>`, small requests of the same shapes (4, 12 and 40 items)
//! are written there first, as fuzzing seeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use weir_api::Signal;

const ITEMS: usize = 1000;

/// splitmix64: a fixed sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const SERVICES: [&str; 5] = ["checkout", "payments", "cart", "frontend", "inventory"];
const ROUTES: [&str; 4] = [
    "/api/v1/orders/{id}",
    "/api/v1/pay",
    "/api/v1/cart",
    "/healthz",
];
const BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const POINT_TIME: u64 = 1_700_000_000_000_000_000;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_string())
}

fn resource(service: &str, i: usize) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv("service.version", s(&format!("1.{}.0", i % 7))),
            kv("deployment.environment", s("production")),
            kv("host.name", s(&format!("node-{:02}", i % 16))),
        ],
        ..Default::default()
    }
}

/// `n` items over 4 groups: (service index, service, items of the group).
fn groups(rng: &mut Rng, n: usize) -> Vec<(usize, &'static str, usize)> {
    (0..4)
        .map(|g| {
            let i = rng.below(SERVICES.len() as u64) as usize;
            (i, SERVICES[i], if g == 3 { n - 3 * (n / 4) } else { n / 4 })
        })
        .collect()
}

fn logs(rng: &mut Rng, items: usize) -> Vec<u8> {
    let mut resource_logs = Vec::new();
    for (i, service, count) in groups(rng, items) {
        let log_records = (0..count)
            .map(|_| {
                let user = 1000 + rng.below(98_999) as u32;
                let ms = 1 + rng.below(899) as u32;
                let (sev, text, body) = match rng.below(20) {
                    0..=9 => (
                        5,
                        "DEBUG",
                        format!(
                            "cache lookup key=user:{user} hit={} took {ms}us",
                            ms.is_multiple_of(2)
                        ),
                    ),
                    10 => (
                        17,
                        "ERROR",
                        format!("payment declined for order {} code=E{}", user * 7, ms % 40),
                    ),
                    11 | 12 => (
                        13,
                        "WARN",
                        format!("slow query on orders took {ms} ms rows={user}"),
                    ),
                    _ => (
                        9,
                        "INFO",
                        format!(
                            "GET /api/v1/orders/{user} 200 {ms}ms ip=10.{}.{}.{}",
                            ms % 255,
                            user % 255,
                            (user / 7) % 255
                        ),
                    ),
                };
                LogRecord {
                    time_unix_nano: POINT_TIME + u64::from(user),
                    severity_number: sev,
                    severity_text: text.to_string(),
                    body: Some(AnyValue {
                        value: Some(s(&body)),
                    }),
                    attributes: vec![
                        kv("http.method", s("GET")),
                        kv("user.id", any_value::Value::IntValue(i64::from(user))),
                        kv("region", s(["eu-west-1", "us-east-1"][ms as usize % 2])),
                    ],
                    trace_id: rng.bytes(16),
                    span_id: rng.bytes(8),
                    ..Default::default()
                }
            })
            .collect();
        resource_logs.push(ResourceLogs {
            resource: Some(resource(service, i)),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: format!("{service}.logger"),
                    ..Default::default()
                }),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportLogsServiceRequest { resource_logs }.encode_to_vec()
}

fn traces(rng: &mut Rng, items: usize) -> Vec<u8> {
    let mut resource_spans = Vec::new();
    for (i, service, count) in groups(rng, items) {
        let spans = (0..count)
            .map(|_| {
                let noise = rng.below(2) == 0;
                let id = 1000 + rng.below(98_999) as u32;
                let name = if noise {
                    "GET /healthz"
                } else {
                    [
                        "GET /api/v1/orders/{id}",
                        "POST /api/v1/pay",
                        "SELECT orders",
                    ][id as usize % 3]
                };
                let start = POINT_TIME + u64::from(id);
                Span {
                    trace_id: rng.bytes(16),
                    span_id: rng.bytes(8),
                    name: name.to_string(),
                    kind: if noise { 2 } else { 1 + (id as i32 % 3) },
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + u64::from(id) * 1000,
                    attributes: vec![
                        kv("http.route", s("/api/v1/orders/{id}")),
                        kv("http.status_code", any_value::Value::IntValue(200)),
                        kv("user.id", any_value::Value::IntValue(i64::from(id))),
                    ],
                    status: Some(Status {
                        code: if id.is_multiple_of(50) { 2 } else { 0 },
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        resource_spans.push(ResourceSpans {
            resource: Some(resource(service, i)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: format!("{service}.tracer"),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

fn point_attributes(rng: &mut Rng, noise: bool, j: usize) -> Vec<KeyValue> {
    let n = 2 + rng.below(3) as usize;
    let mut attrs = if noise {
        vec![
            kv("cache.key", s(&format!("user:{}", rng.below(1_000_000)))),
            kv("worker", s(&format!("w-{}", j % 8))),
            kv(
                "thread.id",
                any_value::Value::IntValue(1 + rng.below(63) as i64),
            ),
            kv("build", s("dev")),
        ]
    } else {
        vec![
            kv("http.request.method", s(["GET", "POST", "PUT"][j % 3])),
            kv("http.route", s(ROUTES[(j / 3) % ROUTES.len()])),
            kv(
                "http.response.status_code",
                any_value::Value::IntValue([200, 200, 201, 404, 500][j % 5]),
            ),
            kv("server.port", any_value::Value::IntValue(8080)),
        ]
    };
    attrs.truncate(n);
    attrs
}

fn metric(rng: &mut Rng, points: usize) -> Metric {
    let noise = rng.below(2) == 0;
    let kind = rng.below(3);
    let time = POINT_TIME + rng.below(60_000) * 1_000_000;
    let start = POINT_TIME - 3_600_000_000_000;
    let data = match kind {
        0 => metric::Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|j| NumberDataPoint {
                    attributes: point_attributes(rng, noise, j),
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsDouble(
                        rng.below(10_000) as f64 / 100.0,
                    )),
                    ..Default::default()
                })
                .collect(),
        }),
        1 => metric::Data::Sum(Sum {
            data_points: (0..points)
                .map(|j| NumberDataPoint {
                    attributes: point_attributes(rng, noise, j),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsInt(rng.below(1_000_000) as i64)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
        _ => metric::Data::Histogram(Histogram {
            data_points: (0..points)
                .map(|j| {
                    let bucket_counts: Vec<u64> =
                        (0..=BOUNDS.len()).map(|_| rng.below(50)).collect();
                    let count = bucket_counts.iter().sum();
                    let sum = bucket_counts
                        .iter()
                        .zip(BOUNDS.iter().chain([10.0].iter()))
                        .map(|(c, b)| *c as f64 * b)
                        .sum();
                    HistogramDataPoint {
                        attributes: point_attributes(rng, noise, j),
                        start_time_unix_nano: start,
                        time_unix_nano: time,
                        count,
                        sum: Some(sum),
                        bucket_counts,
                        explicit_bounds: BOUNDS.to_vec(),
                        min: Some(0.001),
                        max: Some(10.0),
                        ..Default::default()
                    }
                })
                .collect(),
            aggregation_temporality: 2,
        }),
    };
    let name = match (noise, kind) {
        (true, 0) => "debug.queue.depth",
        (true, 1) => "debug.cache.lookups",
        (true, _) => "debug.handler.duration",
        (false, 0) => "process.cpu.utilization",
        (false, 1) => "http.server.requests",
        (false, _) => "http.server.request.duration",
    };
    Metric {
        name: name.to_string(),
        unit: "1".to_string(),
        data: Some(data),
        ..Default::default()
    }
}

fn metrics(rng: &mut Rng, items: usize) -> Vec<u8> {
    let mut resource_metrics = Vec::new();
    for (i, service, count) in groups(rng, items) {
        let mut metrics = Vec::new();
        let mut left = count;
        while left > 0 {
            let points = (1 + rng.below(8) as usize).min(left);
            metrics.push(metric(rng, points));
            left -= points;
        }
        resource_metrics.push(ResourceMetrics {
            resource: Some(resource(service, i)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: format!("{service}.meter"),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest { resource_metrics }.encode_to_vec()
}

fn receipt_check(c: &mut Criterion) {
    let mut rng = Rng(0x5eed);
    // With WEIR_RECEIPT_CHECK_SEEDS=<dir>: small requests of each signal written there first,
    // fuzzing seeds (fuzz/run-short.sh reads up to 64 KiB).
    if let Some(dir) = std::env::var_os("WEIR_RECEIPT_CHECK_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        for items in [4, 12, 40] {
            let mut rng = Rng(items as u64);
            std::fs::write(dir.join(format!("logs-{items}.pb")), logs(&mut rng, items)).unwrap();
            std::fs::write(
                dir.join(format!("traces-{items}.pb")),
                traces(&mut rng, items),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("metrics-{items}.pb")),
                metrics(&mut rng, items),
            )
            .unwrap();
        }
    }
    let requests = [
        (Signal::Logs, logs(&mut rng, ITEMS)),
        (Signal::Traces, traces(&mut rng, ITEMS)),
        (Signal::Metrics, metrics(&mut rng, ITEMS)),
    ];
    for (signal, bytes) in &requests {
        assert_eq!(weir_api::check_encoded_request(*signal, bytes), Some(ITEMS));
        assert_eq!(reference::count_items(*signal, bytes), Some(ITEMS));
        let mut group = c.benchmark_group(format!("receipt_check/{signal}"));
        group.throughput(Throughput::Elements(ITEMS as u64));
        // Alternating rows of one group, so that both see the same machine.
        group.bench_function("reference", |b| {
            b.iter(|| reference::count_items(*signal, std::hint::black_box(bytes)))
        });
        group.bench_function("current", |b| {
            b.iter(|| weir_api::check_encoded_request(*signal, std::hint::black_box(bytes)))
        });
        group.finish();
    }
}

criterion_group!(benches, receipt_check);
criterion_main!(benches);

/// The receipt check as it was before its fast paths (commit dd5e6e1), verbatim.
mod reference {
    use weir_api::Signal;

    /// prost's recursion limit (`prost::RECURSION_LIMIT`, not exported).
    const RECURSION_LIMIT: u32 = 100;

    /// The OTLP messages an export request is made of.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Msg {
        LogsRequest,
        ResourceLogs,
        ScopeLogs,
        LogRecord,
        TracesRequest,
        ResourceSpans,
        ScopeSpans,
        Span,
        SpanEvent,
        SpanLink,
        SpanStatus,
        MetricsRequest,
        ResourceMetrics,
        ScopeMetrics,
        Metric,
        Gauge,
        Sum,
        Histogram,
        ExpHistogram,
        Summary,
        NumberPoint,
        HistogramPoint,
        ExpHistogramPoint,
        ExpBuckets,
        SummaryPoint,
        ValueAtQuantile,
        Exemplar,
        Resource,
        EntityRef,
        Scope,
        KeyValue,
        AnyValue,
        ArrayValue,
        KeyValueList,
    }

    /// What a field's declared type requires of its encoding.
    #[derive(Debug, Clone, Copy)]
    enum Kind {
        /// int32, int64, uint32, bool, enum: wire type 0.
        Varint,
        /// fixed64, double: wire type 1.
        Fixed64,
        /// fixed32: wire type 5.
        Fixed32,
        /// bytes: wire type 2.
        Bytes,
        /// string: wire type 2, UTF-8.
        Str,
        /// A nested message: wire type 2, itself valid.
        Message(Msg),
        /// repeated fixed64 or double: wire type 1, or 2 packed (a multiple of 8 bytes).
        PackedFixed64,
        /// repeated uint64: wire type 0, or 2 packed (varints ending with the field).
        PackedVarint,
        /// Not in the schema: skipped.
        Unknown,
    }

    /// The declared type of field `number` of `msg` (as generated by opentelemetry-proto 0.33).
    fn kind(msg: Msg, number: u32) -> Kind {
        use Kind::{Bytes, Fixed32, Fixed64, Message, PackedFixed64, PackedVarint, Str};
        use Kind::{Unknown, Varint};
        match (msg, number) {
            (Msg::LogsRequest, 1) => Message(Msg::ResourceLogs),
            (Msg::TracesRequest, 1) => Message(Msg::ResourceSpans),
            (Msg::ResourceLogs | Msg::ResourceSpans, 1) => Message(Msg::Resource),
            (Msg::ResourceLogs, 2) => Message(Msg::ScopeLogs),
            (Msg::ResourceSpans, 2) => Message(Msg::ScopeSpans),
            (Msg::ScopeLogs | Msg::ScopeSpans, 1) => Message(Msg::Scope),
            (Msg::ScopeLogs, 2) => Message(Msg::LogRecord),
            (Msg::ScopeSpans, 2) => Message(Msg::Span),
            (Msg::ResourceLogs | Msg::ResourceSpans | Msg::ScopeLogs | Msg::ScopeSpans, 3) => Str,

            // time_unix_nano, observed_time_unix_nano
            (Msg::LogRecord, 1 | 11) => Fixed64,
            // severity_number, dropped_attributes_count
            (Msg::LogRecord, 2 | 7) => Varint,
            // severity_text, event_name
            (Msg::LogRecord, 3 | 12) => Str,
            (Msg::LogRecord, 5) => Message(Msg::AnyValue),
            (Msg::LogRecord, 6) => Message(Msg::KeyValue),
            (Msg::LogRecord, 8) => Fixed32,
            // trace_id, span_id
            (Msg::LogRecord, 9 | 10) => Bytes,

            // trace_id, span_id, parent_span_id
            (Msg::Span, 1 | 2 | 4) => Bytes,
            // trace_state, name
            (Msg::Span, 3 | 5) => Str,
            // kind, dropped attribute / event / link counts
            (Msg::Span, 6 | 10 | 12 | 14) => Varint,
            // start and end time
            (Msg::Span, 7 | 8) => Fixed64,
            (Msg::Span, 9) => Message(Msg::KeyValue),
            (Msg::Span, 11) => Message(Msg::SpanEvent),
            (Msg::Span, 13) => Message(Msg::SpanLink),
            (Msg::Span, 15) => Message(Msg::SpanStatus),
            (Msg::Span, 16) => Fixed32,
            (Msg::SpanEvent, 1) => Fixed64,
            (Msg::SpanEvent, 2) => Str,
            (Msg::SpanEvent, 3) => Message(Msg::KeyValue),
            (Msg::SpanEvent, 4) => Varint,
            (Msg::SpanLink, 1 | 2) => Bytes,
            (Msg::SpanLink, 3) => Str,
            (Msg::SpanLink, 4) => Message(Msg::KeyValue),
            (Msg::SpanLink, 5) => Varint,
            (Msg::SpanLink, 6) => Fixed32,
            (Msg::SpanStatus, 2) => Str,
            (Msg::SpanStatus, 3) => Varint,

            (Msg::MetricsRequest, 1) => Message(Msg::ResourceMetrics),
            (Msg::ResourceMetrics, 1) => Message(Msg::Resource),
            (Msg::ResourceMetrics, 2) => Message(Msg::ScopeMetrics),
            (Msg::ScopeMetrics, 1) => Message(Msg::Scope),
            (Msg::ScopeMetrics, 2) => Message(Msg::Metric),
            (Msg::ResourceMetrics | Msg::ScopeMetrics, 3) => Str,
            // name, description, unit
            (Msg::Metric, 1..=3) => Str,
            // the members of the `data` oneof
            (Msg::Metric, 5) => Message(Msg::Gauge),
            (Msg::Metric, 7) => Message(Msg::Sum),
            (Msg::Metric, 9) => Message(Msg::Histogram),
            (Msg::Metric, 10) => Message(Msg::ExpHistogram),
            (Msg::Metric, 11) => Message(Msg::Summary),
            (Msg::Metric, 12) => Message(Msg::KeyValue),
            (Msg::Gauge | Msg::Sum, 1) => Message(Msg::NumberPoint),
            (Msg::Histogram, 1) => Message(Msg::HistogramPoint),
            (Msg::ExpHistogram, 1) => Message(Msg::ExpHistogramPoint),
            (Msg::Summary, 1) => Message(Msg::SummaryPoint),
            // aggregation_temporality, is_monotonic
            (Msg::Sum, 2 | 3) => Varint,
            (Msg::Histogram | Msg::ExpHistogram, 2) => Varint,
            // start and observation time; as_double, as_int (sfixed64)
            (Msg::NumberPoint, 2 | 3 | 4 | 6) => Fixed64,
            (Msg::NumberPoint, 5) => Message(Msg::Exemplar),
            (Msg::NumberPoint, 7) => Message(Msg::KeyValue),
            (Msg::NumberPoint, 8) => Varint,
            // start and observation time, count, sum, min, max
            (Msg::HistogramPoint, 2..=5 | 11 | 12) => Fixed64,
            // bucket_counts, explicit_bounds
            (Msg::HistogramPoint, 6 | 7) => PackedFixed64,
            (Msg::HistogramPoint, 8) => Message(Msg::Exemplar),
            (Msg::HistogramPoint, 9) => Message(Msg::KeyValue),
            (Msg::HistogramPoint, 10) => Varint,
            (Msg::ExpHistogramPoint, 1) => Message(Msg::KeyValue),
            // start and observation time, count, sum, zero_count, min, max, zero_threshold
            (Msg::ExpHistogramPoint, 2..=5 | 7 | 12..=14) => Fixed64,
            // scale (sint32), flags
            (Msg::ExpHistogramPoint, 6 | 10) => Varint,
            // positive, negative
            (Msg::ExpHistogramPoint, 8 | 9) => Message(Msg::ExpBuckets),
            (Msg::ExpHistogramPoint, 11) => Message(Msg::Exemplar),
            // offset (sint32)
            (Msg::ExpBuckets, 1) => Varint,
            (Msg::ExpBuckets, 2) => PackedVarint,
            // start and observation time, count, sum
            (Msg::SummaryPoint, 2..=5) => Fixed64,
            (Msg::SummaryPoint, 6) => Message(Msg::ValueAtQuantile),
            (Msg::SummaryPoint, 7) => Message(Msg::KeyValue),
            (Msg::SummaryPoint, 8) => Varint,
            // quantile, value
            (Msg::ValueAtQuantile, 1 | 2) => Fixed64,
            // time, as_double, as_int (sfixed64)
            (Msg::Exemplar, 2 | 3 | 6) => Fixed64,
            // span_id, trace_id
            (Msg::Exemplar, 4 | 5) => Bytes,
            (Msg::Exemplar, 7) => Message(Msg::KeyValue),

            (Msg::Resource, 1) => Message(Msg::KeyValue),
            (Msg::Resource, 2) => Varint,
            (Msg::Resource, 3) => Message(Msg::EntityRef),
            // schema_url, type, id_keys, description_keys
            (Msg::EntityRef, 1..=4) => Str,
            (Msg::Scope, 1 | 2) => Str,
            (Msg::Scope, 3) => Message(Msg::KeyValue),
            (Msg::Scope, 4) => Varint,
            (Msg::KeyValue, 1) => Str,
            (Msg::KeyValue, 2) => Message(Msg::AnyValue),
            // key_strindex
            (Msg::KeyValue, 3) => Varint,
            (Msg::AnyValue, 1) => Str,
            // bool, int, string_value_strindex
            (Msg::AnyValue, 2 | 3 | 8) => Varint,
            (Msg::AnyValue, 4) => Fixed64,
            (Msg::AnyValue, 5) => Message(Msg::ArrayValue),
            (Msg::AnyValue, 6) => Message(Msg::KeyValueList),
            (Msg::AnyValue, 7) => Bytes,
            (Msg::ArrayValue, 1) => Message(Msg::AnyValue),
            (Msg::KeyValueList, 1) => Message(Msg::KeyValue),
            _ => Unknown,
        }
    }

    /// The number of log records, spans or metric data points in a valid encoded export
    /// request of `signal`, or `None` when the bytes are not one.
    ///
    /// One loop with an explicit stack of the messages being read, rather than a recursive call
    /// per nested message: a log record holds a dozen small messages (attributes and their
    /// values), and the calls were a good part of the time.
    pub fn count_items(signal: Signal, buf: &[u8]) -> Option<usize> {
        let mut msg = match signal {
            Signal::Logs => Msg::LogsRequest,
            Signal::Traces => Msg::TracesRequest,
            Signal::Metrics => Msg::MetricsRequest,
        };
        // The enclosing messages: where each ends, and its type. `depth` of them are open, and
        // what is left of prost's recursion limit for the current message's fields is
        // RECURSION_LIMIT - depth.
        let mut stack = [(0usize, Msg::LogsRequest); RECURSION_LIMIT as usize];
        let mut depth = 0usize;
        let mut end = buf.len();
        let mut pos = 0usize;
        let mut items = 0usize;
        // The metric being read (metrics do not nest): the `data` member its points are read
        // from so far, and how many points that member holds.
        let mut data_member: Option<Msg> = None;
        let mut metric_points = 0usize;
        loop {
            if pos >= end {
                if depth == 0 {
                    return Some(items);
                }
                if msg == Msg::Metric {
                    items += metric_points;
                }
                depth -= 1;
                (end, msg) = stack[depth];
                continue;
            }
            let cur = &buf[..end];
            let (number, wire) = key(cur, &mut pos)?;
            match kind(msg, number) {
                Kind::Varint if wire == 0 => {
                    varint(cur, &mut pos)?;
                }
                Kind::Fixed64 | Kind::PackedFixed64 if wire == 1 => advance(cur, &mut pos, 8)?,
                Kind::Fixed32 if wire == 5 => advance(cur, &mut pos, 4)?,
                Kind::Bytes if wire == 2 => {
                    delimited(cur, &mut pos)?;
                }
                Kind::Str if wire == 2 => {
                    let s = delimited(cur, &mut pos)?;
                    // The ASCII test is inlined and word-wide; most strings stop there.
                    if !s.is_ascii() {
                        std::str::from_utf8(s).ok()?;
                    }
                }
                Kind::Message(inner) if wire == 2 => {
                    let len = varint(cur, &mut pos)?;
                    let body_end = pos.checked_add(usize::try_from(len).ok()?)?;
                    if body_end > end || depth >= stack.len() {
                        return None;
                    }
                    match inner {
                        Msg::LogRecord | Msg::Span => items += 1,
                        Msg::NumberPoint
                        | Msg::HistogramPoint
                        | Msg::ExpHistogramPoint
                        | Msg::SummaryPoint => metric_points += 1,
                        Msg::Metric => {
                            data_member = None;
                            metric_points = 0;
                        }
                        // Another member of a metric's `data` replaces the points read so
                        // far; the same member again merges with them.
                        Msg::Gauge
                        | Msg::Sum
                        | Msg::Histogram
                        | Msg::ExpHistogram
                        | Msg::Summary
                            if data_member != Some(inner) =>
                        {
                            data_member = Some(inner);
                            metric_points = 0;
                        }
                        _ => {}
                    }
                    stack[depth] = (end, msg);
                    depth += 1;
                    (end, msg) = (body_end, inner);
                }
                Kind::PackedFixed64 if wire == 2 => {
                    if delimited(cur, &mut pos)?.len() % 8 != 0 {
                        return None;
                    }
                }
                Kind::PackedVarint if wire == 0 => {
                    varint(cur, &mut pos)?;
                }
                Kind::PackedVarint if wire == 2 => {
                    let packed = delimited(cur, &mut pos)?;
                    let mut at = 0;
                    while at < packed.len() {
                        varint(packed, &mut at)?;
                    }
                }
                Kind::Unknown => skip(cur, &mut pos, number, wire, RECURSION_LIMIT - depth as u32)?,
                // A known field with the wrong wire type.
                _ => return None,
            }
        }
    }

    /// Reads the protobuf varint at `*pos` as prost reads it (at most 10 bytes, the 10th no
    /// more than 1) and moves `pos` past it; `None` when there is none. The one varint reader
    /// of Weir's byte walkers (the receipt check, `Batch::retain_items`' splicing, the policy
    /// evaluation on the bytes).
    #[inline]
    fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
        let first = *buf.get(*pos)?;
        if first < 0x80 {
            *pos += 1;
            return Some(u64::from(first));
        }
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *buf.get(*pos)?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return (i < 9 || byte < 2).then_some(value);
            }
        }
        None
    }

    /// A field key: (field number, wire type), refused as prost refuses it.
    #[inline]
    fn key(buf: &[u8], pos: &mut usize) -> Option<(u32, u8)> {
        let key = u32::try_from(varint(buf, pos)?).ok()?;
        let wire = (key & 7) as u8;
        let number = key >> 3;
        (wire <= 5 && number >= 1).then_some((number, wire))
    }

    /// Moves past `len` bytes, if there are that many.
    #[inline]
    fn advance(buf: &[u8], pos: &mut usize, len: u64) -> Option<()> {
        let end = pos.checked_add(usize::try_from(len).ok()?)?;
        (end <= buf.len()).then(|| *pos = end)
    }

    /// The body of a length-delimited field.
    #[inline]
    fn delimited<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
        let len = varint(buf, pos)?;
        let start = *pos;
        advance(buf, pos, len)?;
        Some(&buf[start..*pos])
    }

    /// Skips an unknown field as prost's `skip_field` does, groups included.
    fn skip(buf: &[u8], pos: &mut usize, number: u32, wire: u8, budget: u32) -> Option<()> {
        if budget == 0 {
            return None;
        }
        match wire {
            0 => varint(buf, pos).map(drop),
            1 => advance(buf, pos, 8),
            2 => delimited(buf, pos).map(drop),
            3 => loop {
                let (inner_number, inner_wire) = key(buf, pos)?;
                if inner_wire == 4 {
                    return (inner_number == number).then_some(());
                }
                skip(buf, pos, inner_number, inner_wire, budget - 1)?;
            },
            5 => advance(buf, pos, 4),
            // An end-group key with no group open.
            _ => None,
        }
    }
}
