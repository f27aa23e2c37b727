//! The same drop rule ("drop log records whose severity_text is DEBUG") three ways, on the
//! same batches of 1,000 log records (~225 B each) that arrive as protobuf bytes, as from a
//! receiver:
//! - `builtin_policy`: the `policy` processor stage with the policy
//!   `{log_field: severity_text, exact: DEBUG} => keep: none`;
//! - `wasm`: the `wasm` processor stage running wasm-sdk/examples/drop_matching with
//!   `{field: severity_text, equals: DEBUG}`;
//! - `native_closure`: a hand-written `retain` on the decoded batch (the floor).
//!
//! Run: `cargo bench -p weir-wasm --bench drop_rule`. Throughput is in records/s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::{Batch, BuildContext, ComponentId, Payload, ProcessorFactory, Signal, Stage};

use common::{attr, logs_batch, string_value, Sink};

const RECORDS: usize = 1000;

/// 1,000 records, one in four DEBUG, with the fields a real log record carries.
fn input() -> Batch {
    let levels = [("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("INFO", 9)];
    let records = (0..RECORDS)
        .map(|i| {
            let (text, number) = levels[i % levels.len()];
            LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                observed_time_unix_nano: 1_700_000_000_000_000_500 + i as u64,
                severity_text: text.to_string(),
                severity_number: number,
                body: string_value(&format!(
                    "GET /api/v1/orders/{i} completed in {}ms for user {}",
                    i % 97,
                    i * 7919 % 10007
                )),
                attributes: vec![
                    attr("http.method", "GET"),
                    attr("http.route", "/api/v1/orders/{id}"),
                    attr("thread.name", &format!("worker-{}", i % 8)),
                ],
                trace_id: (0..16).map(|b| (i * 31 + b) as u8).collect(),
                span_id: (0..8).map(|b| (i * 17 + b) as u8).collect(),
                ..Default::default()
            }
        })
        .collect();
    logs_batch(records)
}

fn stage(
    factory: &dyn ProcessorFactory,
    id: &str,
    config: serde_json::Value,
) -> (Arc<dyn Stage>, Arc<Sink>) {
    let parsed = factory
        .parse(&config, &format!("processors.{id}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ctx = BuildContext::for_component(ComponentId::parse(id).unwrap());
    ctx.pipeline = Some("logs".into());
    let sink = Arc::new(Sink::default());
    let stage = parsed.build(&ctx, Signal::Logs, sink.clone()).unwrap();
    (stage, sink)
}

fn native_drop_debug(batch: &mut Batch) {
    if let Payload::Logs(r) = batch.payload_mut() {
        for rl in &mut r.resource_logs {
            for sl in &mut rl.scope_logs {
                sl.log_records.retain(|lr| lr.severity_text != "DEBUG");
            }
        }
    }
    batch.payload_mut().prune_empty();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let batch = input();
    let bytes = batch.original_bytes().unwrap().len();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("drop-debug.yaml"),
        "id: drop-debug\nname: drop debug\nlog:\n  match:\n    - {log_field: severity_text, exact: DEBUG}\n  keep: none\n",
    )
    .unwrap();
    let policy = stage(
        &weir_policy::processor::PolicyFactory,
        "policy/bench",
        json!({"sources": [{"file": {"path": dir.path().display().to_string(), "watch": false}}]}),
    );
    runtime.block_on(async { weir_api::Component::start(policy.0.as_ref()).await.unwrap() });
    let wasm = stage(
        &weir_wasm::WasmFactory,
        "wasm/bench",
        json!({"module": common::example_wasm("drop_matching").display().to_string(),
               "config": {"field": "severity_text", "equals": "DEBUG"}}),
    );

    // Both stages must do the same job before their speed means anything.
    let expected = {
        let mut b = batch.clone();
        native_drop_debug(&mut b);
        b.payload().clone()
    };
    for (name, (stage, sink)) in [("policy", &policy), ("wasm", &wasm)] {
        runtime.block_on(stage.consume(batch.clone())).unwrap();
        let out = sink.take();
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(
            out[0].payload(),
            &expected,
            "{name} did not drop the same records"
        );
    }
    assert_eq!(expected.item_count(), RECORDS * 3 / 4);
    eprintln!(
        "batch: {RECORDS} records, {bytes} bytes ({} B/record)",
        bytes / RECORDS
    );

    let mut group = c.benchmark_group("drop_debug_1000_records");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, (stage, sink)) in [("builtin_policy", &policy), ("wasm", &wasm)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || batch.clone(),
                |input| {
                    runtime.block_on(stage.consume(input)).unwrap();
                    sink.take()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("native_closure", |b| {
        b.iter_batched(
            || batch.clone(),
            |mut input| {
                native_drop_debug(&mut input);
                input
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
