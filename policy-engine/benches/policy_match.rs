//! Records per second through the policy engine for 10, 100 and 1,000 log policies mixing
//! regex, contains and attribute equality. Batches of 1,000 records; about 1 in 20 records
//! is dropped, the rest pass, so the measured cost is mostly matching.
//!
//! `evaluate` and `process` start from the decoded request; `evaluate_encoded` and
//! `process_encoded` from its protobuf bytes as a receiver hands them on (checked, not
//! decoded), which the policy engine reads in place; `decode_then_process` is the same
//! received batch decoded by prost first (what the engine did before reading in place).
//!
//! `traces/*` are the same for spans: 10, 100 and 1,000 trace policies (name regex, name
//! contains with a span kind, span attribute equality), drop-only, about 1 in 20 spans
//! dropped; `evaluate_encoded` and `process_encoded` read the spans in place.
//!
//! `metrics/*` are the same for metric data points: 10, 100 and 1,000 metric policies
//! (name regex, name contains with a metric type, data point attribute equality with a
//! resource attribute), drop-only, batches of 200 metrics of 5 points (gauges and
//! cumulative sums), about 1 in 20 points dropped; `evaluate_encoded` and
//! `process_encoded` read the points in place ([`evaluate_metrics_encoded`]).
//!
//! `cargo bench -p weir-policy-engine --bench policy_match`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Gauge, Metric, Sum};
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use prost::Message;
use weir_api::fixtures::kv;
use weir_api::{Batch, Payload, Signal};
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::evaluate::{evaluate_logs, evaluate_metrics, evaluate_traces};
use weir_policy_engine::raw_logs::evaluate_logs_encoded;
use weir_policy_engine::raw_metrics::evaluate_metrics_encoded;
use weir_policy_engine::raw_traces::evaluate_traces_encoded;
use weir_policy_engine::run::process;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

/// `n` policies, a third each: body regex, body contains, attribute equality (plus a
/// severity matcher on some, so policies have several matchers).
fn policies(n: usize) -> PolicySet {
    let mut doc = String::from("policies:\n");
    for i in 0..n {
        let m = match i % 3 {
            0 => format!("      - {{log_field: body, regex: 'error code E{i:04}[0-9]+'}}\n"),
            1 => format!(
                "      - {{log_field: body, contains: 'checkout-{i}-failed'}}\n      - {{log_field: severity_text, exact: ERROR}}\n"
            ),
            _ => format!(
                "      - {{log_attribute: user.id, equals: 'user-{i}'}}\n      - {{resource_attribute: service.name, exact: api}}\n"
            ),
        };
        doc.push_str(&format!(
            "  - id: p{i:05}\n    name: bench {i}\n    log:\n      match:\n{m}      keep: none\n"
        ));
    }
    let parsed = parse_document(&doc, "bench").unwrap();
    let set = PolicySet::build(parsed, &StatsRegistry::new());
    assert!(set.entries.iter().all(|e| e.errors.is_empty()));
    set
}

fn batch(records: usize, policies: usize) -> ExportLogsServiceRequest {
    let log_records = (0..records)
        .map(|i| {
            // Every 20th record hits some policy; the others look alike but miss.
            let hit = i % 20 == 0;
            let p = (i / 20) % policies.max(1);
            let body = match (hit, p % 3) {
                (true, 0) => format!("request failed with error code E{p:04}17 at step {i}"),
                (true, 1) => format!("order {i}: checkout-{p}-failed after retry"),
                _ => format!(
                    "GET /api/items/{i} completed in {} ms for tenant acme",
                    i % 97
                ),
            };
            let user = if hit && p % 3 == 2 {
                format!("user-{p}")
            } else {
                format!("customer-{i}")
            };
            LogRecord {
                severity_text: if hit { "ERROR" } else { "INFO" }.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body)),
                }),
                attributes: vec![kv("user.id", &user), kv("http.method", "GET")],
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_match");
    let records = 1000;
    for n in [10usize, 100, 1000] {
        let set = policies(n);
        let req = batch(records, n);
        let dropped = evaluate_logs(&set, &req, std::time::Instant::now()).dropped;
        assert!(dropped > 0, "benchmark batch should hit some policies");
        let bytes = Bytes::from(req.encode_to_vec());
        let raw = evaluate_logs_encoded(&set, &bytes, std::time::Instant::now()).unwrap();
        assert_eq!((raw.dropped, raw.prost_decoded), (dropped, 0));
        group.throughput(Throughput::Elements(records as u64));
        group.bench_with_input(BenchmarkId::new("evaluate", n), &n, |b, _| {
            b.iter(|| evaluate_logs(&set, &req, std::time::Instant::now()))
        });
        group.bench_with_input(BenchmarkId::new("process", n), &n, |b, _| {
            b.iter_batched(
                || Batch::new(Payload::Logs(req.clone())),
                |mut batch| process(&set, &mut batch, false),
                criterion::BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("evaluate_encoded", n), &n, |b, _| {
            b.iter(|| evaluate_logs_encoded(&set, &bytes, std::time::Instant::now()))
        });
        // What a received batch cost before: decoded by prost, then evaluated and cut.
        group.bench_with_input(BenchmarkId::new("decode_then_process", n), &n, |b, _| {
            b.iter_batched(
                || Batch::decode(Signal::Logs, bytes.clone()).unwrap(),
                |mut batch| {
                    batch.payload();
                    process(&set, &mut batch, false)
                },
                criterion::BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("process_encoded", n), &n, |b, _| {
            b.iter_batched(
                || Batch::decode(Signal::Logs, bytes.clone()).unwrap(),
                |mut batch| {
                    let out = process(&set, &mut batch, false);
                    assert!(!batch.is_decoded());
                    out
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// `n` trace policies, a third each: name regex, name contains with a span kind, span
/// attribute equality with a resource attribute; all drop.
fn trace_policies(n: usize) -> PolicySet {
    let mut doc = String::from("policies:\n");
    for i in 0..n {
        let m = match i % 3 {
            0 => format!("      - {{trace_field: name, regex: 'charge E{i:04}[0-9]+'}}\n"),
            1 => format!(
                "      - {{trace_field: name, contains: 'checkout-{i}-retry'}}\n      - {{span_kind: client}}\n"
            ),
            _ => format!(
                "      - {{span_attribute: user.id, equals: 'user-{i}'}}\n      - {{resource_attribute: service.name, exact: api}}\n"
            ),
        };
        doc.push_str(&format!(
            "  - id: t{i:05}\n    name: bench {i}\n    trace:\n      match:\n{m}      keep: {{percentage: 0}}\n"
        ));
    }
    let set = PolicySet::build(
        parse_document(&doc, "bench").unwrap(),
        &StatsRegistry::new(),
    );
    assert!(set.entries.iter().all(|e| e.errors.is_empty()));
    set
}

fn trace_batch(spans: usize, policies: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| {
            let hit = i % 20 == 0;
            let p = (i / 20) % policies.max(1);
            let name = match (hit, p % 3) {
                (true, 0) => format!("charge E{p:04}17 step {i}"),
                (true, 1) => format!("order {i}: checkout-{p}-retry"),
                _ => format!("GET /api/items/{}", i % 97),
            };
            let user = if hit && p % 3 == 2 {
                format!("user-{p}")
            } else {
                format!("customer-{i}")
            };
            let id = (i as u128 * 0x9e37_79b9_7f4a_7c15).to_be_bytes();
            Span {
                trace_id: id.to_vec(),
                span_id: id[8..].to_vec(),
                name,
                kind: if hit { 3 } else { 2 },
                start_time_unix_nano: 1,
                end_time_unix_nano: 2,
                attributes: vec![kv("user.id", &user), kv("http.method", "GET")],
                events: vec![span::Event {
                    name: "retry".into(),
                    attributes: vec![kv("attempt", "1")],
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn bench_traces(c: &mut Criterion) {
    let mut group = c.benchmark_group("traces");
    let spans = 1000;
    for n in [10usize, 100, 1000] {
        let set = trace_policies(n);
        let req = trace_batch(spans, n);
        let dropped = evaluate_traces(&set, &req).dropped;
        assert!(dropped > 0, "benchmark batch should hit some policies");
        let bytes = Bytes::from(req.encode_to_vec());
        let raw = evaluate_traces_encoded(&set, &bytes).unwrap();
        assert_eq!((raw.dropped, raw.prost_decoded), (dropped, 0));
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_with_input(BenchmarkId::new("evaluate", n), &n, |b, _| {
            b.iter(|| evaluate_traces(&set, &req))
        });
        group.bench_with_input(BenchmarkId::new("evaluate_encoded", n), &n, |b, _| {
            b.iter(|| evaluate_traces_encoded(&set, &bytes))
        });
        group.bench_with_input(BenchmarkId::new("decode_then_process", n), &n, |b, _| {
            b.iter_batched(
                || Batch::decode(Signal::Traces, bytes.clone()).unwrap(),
                |mut batch| {
                    batch.payload();
                    process(&set, &mut batch, false)
                },
                criterion::BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("process_encoded", n), &n, |b, _| {
            b.iter_batched(
                || Batch::decode(Signal::Traces, bytes.clone()).unwrap(),
                |mut batch| {
                    let out = process(&set, &mut batch, false);
                    assert!(!batch.is_decoded());
                    out
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// `n` metric policies, a third each: name regex, name contains with a metric type, data
/// point attribute equality with a resource attribute; all drop.
fn metric_policies(n: usize) -> PolicySet {
    let mut doc = String::from("policies:\n");
    for i in 0..n {
        let m = match i % 3 {
            0 => format!("      - {{metric_field: name, regex: 'queue E{i:04}[0-9]+'}}\n"),
            1 => format!(
                "      - {{metric_field: name, contains: 'checkout-{i}-debug'}}\n      - {{metric_type: 2}}\n"
            ),
            _ => format!(
                "      - {{datapoint_attribute: user.id, equals: 'user-{i}'}}\n      - {{resource_attribute: service.name, exact: api}}\n"
            ),
        };
        doc.push_str(&format!(
            "  - id: m{i:05}\n    name: bench {i}\n    metric:\n      match:\n{m}      keep: false\n"
        ));
    }
    let set = PolicySet::build(
        parse_document(&doc, "bench").unwrap(),
        &StatsRegistry::new(),
    );
    assert!(set.entries.iter().all(|e| e.errors.is_empty()));
    set
}

/// `metrics` metrics of 5 points each, gauges and sums in turn; every 20th metric is hit by
/// name (the first two policy kinds), or one of its points by attribute (the third).
fn metric_batch(metrics: usize, policies: usize) -> ExportMetricsServiceRequest {
    let metrics = (0..metrics)
        .map(|i| {
            let hit = i % 20 == 0;
            let p = (i / 20) % policies.max(1);
            let name = match (hit, p % 3) {
                (true, 0) => format!("queue E{p:04}17 depth"),
                (true, 1) => format!("app.checkout-{p}-debug.count"),
                _ => format!("http.server.requests.{}", i % 97),
            };
            let data_points = (0..5)
                .map(|j| {
                    let user = if hit && p % 3 == 2 && j == 0 {
                        format!("user-{p}")
                    } else {
                        format!("customer-{}", i * 5 + j)
                    };
                    NumberDataPoint {
                        attributes: vec![kv("user.id", &user), kv("http.method", "GET")],
                        time_unix_nano: 1,
                        value: Some(number_data_point::Value::AsInt(i as i64)),
                        ..Default::default()
                    }
                })
                .collect();
            let data = if i % 2 == 0 {
                metric::Data::Gauge(Gauge { data_points })
            } else {
                metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })
            };
            Metric {
                name,
                unit: "1".into(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn bench_metrics(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics");
    let metrics = 200;
    for n in [10usize, 100, 1000] {
        let set = metric_policies(n);
        let req = metric_batch(metrics, n);
        let decoded = evaluate_metrics(&set, &req);
        assert!(
            decoded.dropped > 0,
            "benchmark batch should hit some policies"
        );
        let points = decoded.keep.len();
        let bytes = Bytes::from(req.encode_to_vec());
        let raw = evaluate_metrics_encoded(&set, &bytes).unwrap();
        assert_eq!((&raw.keep, raw.prost_decoded), (&decoded.keep, 0));
        group.throughput(Throughput::Elements(points as u64));
        group.bench_with_input(BenchmarkId::new("evaluate", n), &n, |b, _| {
            b.iter(|| evaluate_metrics(&set, &req))
        });
        group.bench_with_input(BenchmarkId::new("evaluate_encoded", n), &n, |b, _| {
            b.iter(|| evaluate_metrics_encoded(&set, &bytes))
        });
        group.bench_with_input(BenchmarkId::new("decode_then_process", n), &n, |b, _| {
            b.iter_batched(
                || Batch::decode(Signal::Metrics, bytes.clone()).unwrap(),
                |mut batch| {
                    batch.payload();
                    process(&set, &mut batch, false)
                },
                criterion::BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("process_encoded", n), &n, |b, _| {
            b.iter_batched(
                || Batch::decode(Signal::Metrics, bytes.clone()).unwrap(),
                |mut batch| {
                    let out = process(&set, &mut batch, false);
                    assert!(!batch.is_decoded());
                    out
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_traces, bench_metrics);
criterion_main!(benches);
