//! What a receiver pays per request before the pipeline sees it: checking the protobuf and
//! counting its items (what `Batch::decode` does for logs and traces; for metrics it decodes
//! with prost), against building the request in memory with prost (what it did before, and
//! what a processor that reads the records still pays on first access). The requests are the
//! load harness's own (1,000 records, spans or metric data points, 50% noise, fixed seed).
//!
//! `cargo bench -p weir-bench --bench receive`
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is a binary; its generator is included as a module.
#[allow(dead_code, unused_imports)]
#[path = "../src/generate.rs"]
mod generate;
// The generator's unit tests (compiled here too) use the harness's scanner.
#[allow(dead_code, unused_imports)]
#[path = "../src/scan.rs"]
mod scan;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::{Batch, Signal};

fn receive(c: &mut Criterion) {
    for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
        let pool = generate::Generator::new(7, generate::Mix::default()).pool(signal, 8, 1000);
        let mut group = c.benchmark_group(format!("receive_{signal}_1000"));
        group.throughput(Throughput::Elements(1000));
        let mut i = 0;
        group.bench_function("check_and_count", |b| {
            b.iter(|| {
                i = (i + 1) % pool.len();
                let batch = Batch::decode(signal, pool[i].bytes.clone()).unwrap();
                black_box(batch.item_count())
            })
        });
        group.bench_function("prost_decode_and_drop", |b| {
            b.iter(|| {
                i = (i + 1) % pool.len();
                let bytes = pool[i].bytes.clone();
                match signal {
                    Signal::Traces => {
                        black_box(ExportTraceServiceRequest::decode(bytes).unwrap());
                    }
                    Signal::Logs => {
                        black_box(ExportLogsServiceRequest::decode(bytes).unwrap());
                    }
                    Signal::Metrics => {
                        black_box(ExportMetricsServiceRequest::decode(bytes).unwrap());
                    }
                }
            })
        });
        group.bench_function("check_then_read", |b| {
            b.iter(|| {
                i = (i + 1) % pool.len();
                let batch = Batch::decode(signal, pool[i].bytes.clone()).unwrap();
                black_box(batch.payload().item_count())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, receive);
criterion_main!(benches);
