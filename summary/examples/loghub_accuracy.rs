//! Grouping accuracy and mining throughput on the labelled Loghub 2k samples.
//!
//! ```text
//! cargo run --release -p weir-summary --example loghub_accuracy -- /work/shared/datasets/loghub-2k
//! ```
//! Prints each system's grouping accuracy, the mean, and the throughput of mining all
//! samples repeated (median of 5 runs, one thread). `WEIR_SHOW=System` prints that
//! system's wrongly grouped true templates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The example uses only part of the shared test helpers.
#[allow(dead_code)]
#[path = "../tests/common/loghub.rs"]
mod loghub;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload};
use weir_summary::drain::{MinerConfig, TemplateMiner};
use weir_summary::{MetadataConfig, MetadataHandle};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/datasets/loghub-2k".to_string()),
    );
    let show = std::env::var("WEIR_SHOW").ok();
    // WEIR_MINER='{"similarity_threshold":0.5}' tries other settings.
    let config: MinerConfig = std::env::var("WEIR_MINER")
        .map(|j| serde_json::from_str(&j).expect("WEIR_MINER is a MinerConfig in JSON"))
        .unwrap_or_default();
    // WEIR_BENCH_ONLY=1: throughput only (for profiling, e.g. under callgrind);
    // WEIR_REPEAT: how often the samples are repeated per run (default 40).
    let bench_only = std::env::var_os("WEIR_BENCH_ONLY").is_some();
    let repeat: usize = std::env::var("WEIR_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let mut sum = 0.0;
    let mut all_lines: Vec<String> = Vec::new();
    if bench_only {
        for system in loghub::SYSTEMS {
            match loghub::load(&dir, system) {
                Ok(d) => all_lines.extend(d.contents),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
        bench(&config, &all_lines, repeat);
        return;
    }
    for system in loghub::SYSTEMS {
        let data = match loghub::load(&dir, system) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let (ids, miner) = loghub::mine(&data.contents, config.clone());
        let acc = loghub::grouping_accuracy(&ids, &data.event_ids);
        println!("{system:<10} {acc:.4}  ({} templates)", miner.len());
        sum += acc;
        if show.as_deref() == Some(system) {
            explain(&miner, &ids, &data);
        }
        all_lines.extend(data.contents);
    }
    println!("{:<10} {:.4}", "mean", sum / loghub::SYSTEMS.len() as f64);

    println!("leave-one-system-out (settings chosen on the other seven):");
    let grid = loghub::grid();
    let rows = loghub::leave_one_out(&dir).expect("samples load");
    for r in &rows {
        let c = &grid[r.chosen];
        println!(
            "{:<10} {:.4}  (threshold {}, max_word_variants {}; {:.4} on the other seven)",
            r.system, r.held_out, c.similarity_threshold, c.max_word_variants, r.train_mean
        );
    }
    let mean = rows.iter().map(|r| r.held_out).sum::<f64>() / rows.len() as f64;
    println!("{:<10} {mean:.4}", "mean");
    if std::env::var_os("WEIR_NO_BENCH").is_some() {
        return;
    }
    bench(&config, &all_lines, repeat);
}

/// Lines per second through masking + mining, then records per second through the
/// summariser (medians of 5 runs, one thread).
fn bench(config: &MinerConfig, all_lines: &[String], repeat: usize) {
    // WEIR_BENCH_PROCESSOR=1: the summariser only (for profiling it alone).
    if std::env::var_os("WEIR_BENCH_PROCESSOR").is_some() {
        processor_throughput(all_lines, repeat.div_ceil(4));
        return;
    }
    let mut rates = Vec::new();
    for _ in 0..5 {
        let mut miner = TemplateMiner::new(config.clone());
        let start = Instant::now();
        let mut n = 0u64;
        for _ in 0..repeat {
            for l in all_lines {
                std::hint::black_box(miner.add(l));
                n += 1;
            }
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "throughput {:.0} lines/s (median of 5 runs of {} lines, one thread)",
        rates[2],
        all_lines.len() * repeat
    );
    processor_throughput(all_lines, repeat.div_ceil(4));
}

/// Records per second through the `metadata` processor's summariser (OTLP log batches of
/// 1000 records with two attributes each, one of 8 values and one unique per line as a
/// request id is; median of 5 runs).
fn processor_throughput(lines: &[String], repeat: usize) {
    let s = |v: &str| {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        })
    };
    let batches: Vec<Batch> = lines
        .chunks(1000)
        .enumerate()
        .map(|(c, chunk)| {
            Batch::new(Payload::Logs(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![KeyValue {
                            key: "service.name".into(),
                            value: s("bench"),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records: chunk
                            .iter()
                            .enumerate()
                            .map(|(i, l)| LogRecord {
                                body: s(l),
                                severity_number: 9,
                                attributes: vec![
                                    KeyValue {
                                        key: "thread".into(),
                                        value: s(&format!("t{}", i % 8)),
                                        ..Default::default()
                                    },
                                    KeyValue {
                                        key: "request.id".into(),
                                        value: s(&format!("r{}", c * 1000 + i)),
                                        ..Default::default()
                                    },
                                ],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }))
        })
        .collect();
    let mut rates = Vec::new();
    for _ in 0..5 {
        let handle = MetadataHandle::new(&MetadataConfig::default());
        let start = Instant::now();
        for _ in 0..repeat {
            for b in &batches {
                handle.observe(b);
            }
        }
        rates.push((lines.len() * repeat) as f64 / start.elapsed().as_secs_f64());
        std::hint::black_box(handle.take());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "processor  {:.0} log records/s (median of 5 runs, one thread)",
        rates[2]
    );
}

/// Prints, for each true template split or merged wrongly, the predicted templates.
fn explain(miner: &TemplateMiner, ids: &[u64], data: &loghub::Labelled) {
    let templates: HashMap<u64, String> = miner
        .templates()
        .into_iter()
        .map(|(slot, id, _, _)| (id, miner.raw_template(slot).unwrap_or_default()))
        .collect();
    let mut by_truth: HashMap<&str, HashMap<u64, usize>> = HashMap::new();
    let mut by_pred: HashMap<u64, HashMap<&str, usize>> = HashMap::new();
    for (p, t) in ids.iter().zip(&data.event_ids) {
        *by_truth.entry(t).or_default().entry(*p).or_default() += 1;
        *by_pred.entry(*p).or_default().entry(t).or_default() += 1;
    }
    let mut keys: Vec<_> = by_truth.keys().copied().collect();
    keys.sort();
    for t in keys {
        let preds = &by_truth[t];
        let bad = preds.len() > 1 || preds.keys().any(|p| by_pred[p].len() > 1);
        if bad {
            let example = data.event_ids.iter().position(|e| e == t).unwrap();
            println!("TRUE {t}: e.g. {:?}", data.contents[example]);
            for (p, n) in preds {
                println!(
                    "   {n:>4} -> #{p} {:?} (holds {:?})",
                    templates.get(p).map(String::as_str).unwrap_or("?"),
                    by_pred[p]
                );
            }
        }
    }
}
