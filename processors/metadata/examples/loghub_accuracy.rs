//! Grouping accuracy and mining throughput on the labelled Loghub 2k samples.
//!
//! ```text
//! cargo run --release -p weir-metadata --example loghub_accuracy -- /work/shared/datasets/loghub-2k
//! ```
//! Prints each system's grouping accuracy, the mean, and the throughput of mining all
//! samples repeated (median of 5 runs, one thread). `WEIR_SHOW=System` prints that
//! system's wrongly grouped true templates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/loghub.rs"]
mod loghub;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use weir_metadata::drain::{MinerConfig, TemplateMiner};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/datasets/loghub-2k".to_string()),
    );
    let show = std::env::var("WEIR_SHOW").ok();
    let mut sum = 0.0;
    let mut all_lines: Vec<String> = Vec::new();
    for system in loghub::SYSTEMS {
        let data = match loghub::load(&dir, system) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let mut miner = TemplateMiner::new(MinerConfig::default());
        let ids: Vec<u64> = data.contents.iter().map(|l| miner.add(l).id).collect();
        let acc = loghub::grouping_accuracy(&ids, &data.event_ids);
        println!("{system:<10} {acc:.4}  ({} templates)", miner.len());
        sum += acc;
        if show.as_deref() == Some(system) {
            explain(&miner, &ids, &data);
        }
        all_lines.extend(data.contents);
    }
    println!("{:<10} {:.4}", "mean", sum / loghub::SYSTEMS.len() as f64);

    let repeat = 40;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let mut miner = TemplateMiner::new(MinerConfig::default());
        let start = Instant::now();
        let mut n = 0u64;
        for _ in 0..repeat {
            for l in &all_lines {
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
}

/// Prints, for each true template split or merged wrongly, the predicted templates.
fn explain(miner: &TemplateMiner, ids: &[u64], data: &loghub::Labelled) {
    let templates: HashMap<u64, String> = miner
        .templates()
        .into_iter()
        .map(|(_, id, _, t)| (id, t))
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
