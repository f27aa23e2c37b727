//! Template-mining throughput (masking + Drain) per line.
//!
//! Uses the Loghub 2k samples' raw lines when `WEIR_LOGHUB` (default
//! `../../../shared/datasets/loghub-2k` from this crate) exists, else generated lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_summary::drain::{MinerConfig, TemplateMiner};
use weir_summary::mask::{MaskedLine, Masker};

const SYSTEMS: [&str; 8] = [
    "Android",
    "Apache",
    "BGL",
    "HDFS",
    "Hadoop",
    "Linux",
    "OpenStack",
    "Spark",
];

fn lines() -> Vec<String> {
    let dir = std::env::var("WEIR_LOGHUB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub-2k")
        });
    let mut out = Vec::new();
    for s in SYSTEMS {
        if let Ok(text) = std::fs::read_to_string(dir.join(s).join(format!("{s}_2k.log"))) {
            out.extend(text.lines().map(str::to_string));
        }
    }
    if out.is_empty() {
        for i in 0..16_000u32 {
            out.push(match i % 4 {
                0 => format!(
                    "Connected to 10.0.{}.{}:5432 in {} ms",
                    i % 7,
                    i % 250,
                    i % 90
                ),
                1 => format!("user u{i} logged in from session {i:x}-{}", i * 7),
                2 => format!("GET /api/v1/orders/{i}?page={} 200 {}b", i % 9, i * 3),
                _ => format!("worker {} finished job {i} status=ok", i % 16),
            });
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let mut group = c.benchmark_group("mining");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("mask", |b| {
        let masker = Masker::new();
        let mut out = MaskedLine::new();
        b.iter(|| {
            for l in &lines {
                masker.mask_into(l, &mut out);
                std::hint::black_box(out.tokens().len());
            }
        })
    });
    group.bench_function("mask_and_mine", |b| {
        let mut miner = TemplateMiner::new(MinerConfig::default());
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(miner.add(l));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
