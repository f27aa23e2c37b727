//! Traces and metrics: the same job done by the closest built-in (the `policy` processor) and
//! by a WASM module (wasm-sdk/examples/drop_matching), through their real stages, on batches
//! that arrive as protobuf bytes as from a receiver:
//! - traces: 1,000 spans (one in ten `GET /healthz`), drop the health checks
//!   (policy `trace_field: name, exact: GET /healthz, keep: 0%`; module `field: name`);
//! - metrics: 100 metrics of 10 points (1,000 points; gauges, sums and histograms, one metric
//!   in ten named `debug.queue`), drop that metric (policy `metric_field: name, exact:
//!   debug.queue, keep: false`; module `field: name`).
//!
//! Two more WASM rows split the module's cost (a profile by subtraction):
//! - `wasm_noop`: a module that answers "unchanged" without reading the batch (the host's
//!   fixed cost: instance checkout, copy into guest memory, the call);
//! - `wasm_walk_keep_all`: drop_matching with a value no item has (the guest walks every
//!   item in place and answers "unchanged": no verdicts to apply).
//!
//! Two more rows, `builtin_policy_then_encode` and `wasm_then_encode`, add the exporter's
//! next step to the two stages: the protobuf encoding of the output (`Batch::to_protobuf`:
//! the bytes the stage kept or cut, else an encode of the edited payload).
//!
//! Both stages start from the same undecoded bytes, as a receiver hands them on (a clone of
//! the job's batch, asserted undecoded): what a stage reads, it decodes inside the timing
//! (the built-in decodes the metrics request to evaluate it, then cuts its drops from the
//! bytes; the module walks the bytes). Both stages must produce the same batch, and both
//! must leave it as cut bytes for the exporter (asserted first). Run:
//! `cargo bench -p weir-wasm --bench signal_jobs`. Throughput is in spans or points/s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, Span, Status};
use weir_api::{Batch, BuildContext, ComponentId, Payload, ProcessorFactory, Signal, Stage};

use common::{attr, encoded, spans_batch, Sink};

const ITEMS: usize = 1000;

fn spans() -> Batch {
    let spans = (0..ITEMS)
        .map(|i| {
            let health = i % 10 == 0;
            Span {
                trace_id: (0..16).map(|b| (i * 31 + b) as u8).collect(),
                span_id: (0..8).map(|b| (i * 17 + b) as u8).collect(),
                parent_span_id: if i % 4 == 0 {
                    Vec::new()
                } else {
                    (0..8).map(|b| (i * 13 + b) as u8).collect()
                },
                name: if health {
                    "GET /healthz".into()
                } else {
                    format!("GET /api/v1/orders/{}", i % 50)
                },
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1000,
                end_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1000 + 250_000,
                attributes: vec![
                    attr("http.method", "GET"),
                    attr("http.route", "/api/v1/orders/{id}"),
                    attr("net.peer.name", &format!("10.0.0.{}", i % 200)),
                ],
                events: if i % 20 == 7 {
                    vec![Event {
                        name: "exception".into(),
                        attributes: vec![attr("exception.type", "Timeout")],
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status::default()),
                ..Default::default()
            }
        })
        .collect();
    spans_batch(spans)
}

fn metrics() -> Batch {
    let point = |m: usize, p: usize| NumberDataPoint {
        attributes: vec![
            attr("host.name", &format!("host-{}", p % 5)),
            attr("cpu", &format!("{p}")),
        ],
        start_time_unix_nano: 1_699_999_990_000_000_000,
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble((m * 10 + p) as f64)),
        ..Default::default()
    };
    let metrics = (0..ITEMS / 10)
        .map(|m| {
            let name = if m % 10 == 3 {
                "debug.queue".to_string()
            } else {
                format!("system.metric.{m}")
            };
            let points = |m| (0..10).map(move |p| point(m, p));
            let data = match m % 3 {
                0 => Data::Gauge(Gauge {
                    data_points: points(m).collect(),
                }),
                1 => Data::Sum(Sum {
                    data_points: points(m).collect(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                _ => Data::Histogram(Histogram {
                    data_points: (0..10)
                        .map(|p| HistogramDataPoint {
                            attributes: vec![attr("http.route", &format!("/r{p}"))],
                            time_unix_nano: 1_700_000_000_000_000_000,
                            count: 10,
                            sum: Some(55.0),
                            bucket_counts: vec![1, 2, 3, 4],
                            explicit_bounds: vec![1.0, 5.0, 10.0],
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                }),
            };
            Metric {
                name,
                unit: "1".into(),
                description: "a metric".into(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    encoded(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "node")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn stage(
    factory: &dyn ProcessorFactory,
    id: &str,
    signal: Signal,
    config: serde_json::Value,
) -> (Arc<dyn Stage>, Arc<Sink>) {
    let parsed = factory
        .parse(&config, &format!("processors.{id}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ctx = BuildContext::for_component(ComponentId::parse(id).unwrap());
    ctx.pipeline = Some(signal.as_str().into());
    let sink = Arc::new(Sink::default());
    let stage = parsed.build(&ctx, signal, sink.clone()).unwrap();
    (stage, sink)
}

struct Job {
    name: &'static str,
    signal: Signal,
    batch: Batch,
    policy: &'static str,
    kept: usize,
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let jobs = [
        Job {
            name: "traces_drop_health_1000_spans",
            signal: Signal::Traces,
            batch: spans(),
            policy: "id: drop-health\nname: drop health\ntrace:\n  match:\n    - {trace_field: name, exact: GET /healthz}\n  keep:\n    percentage: 0\n",
            kept: 900,
        },
        Job {
            name: "metrics_drop_by_name_1000_points",
            signal: Signal::Metrics,
            batch: metrics(),
            policy: "id: drop-debug\nname: drop debug metric\nmetric:\n  match:\n    - {metric_field: name, exact: debug.queue}\n  keep: false\n",
            kept: 900,
        },
    ];
    let module = common::example_wasm("drop_matching").display().to_string();
    for job in jobs {
        assert!(
            !job.batch.is_decoded(),
            "{}: the input is bytes as received",
            job.name
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.yaml"), job.policy).unwrap();
        let policy = stage(
            &weir_policy::processor::PolicyFactory,
            "policy/bench",
            job.signal,
            json!({"sources": [{"file": {"path": dir.path().display().to_string(), "watch": false}}]}),
        );
        runtime.block_on(async { weir_api::Component::start(policy.0.as_ref()).await.unwrap() });
        let equals = match job.signal {
            Signal::Traces => "GET /healthz",
            _ => "debug.queue",
        };
        let wasm = stage(
            &weir_wasm::WasmFactory,
            "wasm/bench",
            job.signal,
            json!({"module": module, "config": {"field": "name", "equals": equals}}),
        );
        let noop_dir = tempfile::tempdir().unwrap();
        let entry = match job.signal {
            Signal::Traces => "weir_process_traces",
            _ => "weir_process_metrics",
        };
        let noop_path = noop_dir.path().join("noop.wat");
        std::fs::write(
            &noop_path,
            format!(
                r#"(module (memory (export "memory") 1)
                  (global $top (mut i32) (i32.const 0))
                  (func (export "weir_abi_version") (result i32) i32.const 1)
                  (func (export "weir_alloc") (param $len i32) (result i32)
                    (local $need i32)
                    ;; pages needed past the first 64 KiB, grown on demand
                    (local.set $need (i32.add (i32.shr_u (local.get $len) (i32.const 16)) (i32.const 2)))
                    (if (i32.gt_u (local.get $need) (memory.size))
                      (then (drop (memory.grow (i32.sub (local.get $need) (memory.size))))))
                    i32.const 65536)
                  (func (export "{entry}") (param i32 i32) (result i32) i32.const 0))"#
            ),
        )
        .unwrap();
        let noop = stage(
            &weir_wasm::WasmFactory,
            "wasm/noop",
            job.signal,
            json!({"module": noop_path.display().to_string()}),
        );
        let walk = stage(
            &weir_wasm::WasmFactory,
            "wasm/walk",
            job.signal,
            json!({"module": module, "config": {"field": "name", "equals": "no such name"}}),
        );
        for (name, (stage, sink)) in [("noop", &noop), ("walk", &walk)] {
            runtime.block_on(stage.consume(job.batch.clone())).unwrap();
            let out = sink.take();
            assert_eq!(out[0].item_count(), ITEMS, "{name} kept everything");
        }
        // Both must do the same job before their speed means anything.
        let mut outputs = Vec::new();
        for (name, (stage, sink)) in [("policy", &policy), ("wasm", &wasm)] {
            runtime.block_on(stage.consume(job.batch.clone())).unwrap();
            let out = sink.take();
            assert_eq!(out.len(), 1, "{name}");
            assert_eq!(out[0].item_count(), job.kept, "{name}");
            assert!(
                out[0].original_bytes().is_some(),
                "{}: {name}'s verdicts were applied by cutting the bytes",
                job.name
            );
            outputs.push(out[0].payload().clone());
        }
        assert_eq!(
            outputs[0], outputs[1],
            "{}: policy and wasm differ",
            job.name
        );
        eprintln!(
            "{}: {} bytes",
            job.name,
            job.batch.original_bytes().unwrap().len()
        );
        let mut group = c.benchmark_group(job.name);
        group.throughput(Throughput::Elements(ITEMS as u64));
        for (name, (stage, sink)) in [
            ("builtin_policy", &policy),
            ("wasm", &wasm),
            ("wasm_noop", &noop),
            ("wasm_walk_keep_all", &walk),
        ] {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || job.batch.clone(),
                    |input| {
                        runtime.block_on(stage.consume(input)).unwrap();
                        sink.take()
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        // The same two stages with the exporter's next step, the output's protobuf encoding
        // (`to_protobuf`: the held bytes when the stage kept or cut them, else an encode of
        // the decoded payload), which is part of the job's cost in a pipeline.
        for (name, (stage, sink)) in [
            ("builtin_policy_then_encode", &policy),
            ("wasm_then_encode", &wasm),
        ] {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || job.batch.clone(),
                    |input| {
                        runtime.block_on(stage.consume(input)).unwrap();
                        let out = sink.take();
                        let bytes: Vec<_> = out.iter().map(Batch::to_protobuf).collect();
                        (out, bytes)
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
