//! `weir-bench summarise`: the catalog summariser alone, on exactly the load the `edge`
//! scenario sends (the generator's pool of 64 requests with the runner's seed), each request
//! read in place and summarised over and over as the `catalog` exporter's summariser does in
//! `configs/edge.yaml`. It prints items per CPU-second of the summarising thread, so a
//! profiler (`valgrind --tool=callgrind`, `perf record`) sees the summary and nothing else.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use weir_api::{Batch, Signal};
use weir_summary::{MetadataConfig, MetadataHandle};

use crate::generate::{Generator, Mix};
use crate::prom::thread_cpu;

/// What one run measured.
pub struct Report {
    /// Items summarised.
    pub items: u64,
    /// CPU time of the summarising thread.
    pub cpu: Duration,
    /// Wall time.
    pub wall: Duration,
}

/// Summarises `passes` passes over the pool of `batch`-item requests the `edge` scenario
/// sends for `signal` (generator `seed`), on the calling thread, and checks that every item
/// was counted in the summary.
pub fn run(signal: Signal, seed: u64, batch: usize, passes: usize) -> Result<Report> {
    ensure!(
        matches!(signal, Signal::Logs | Signal::Traces),
        "the summariser reads logs and traces; metrics have no summary to measure"
    );
    let pool = Generator::new(seed, Mix::default()).pool(signal, 64, batch);
    let handle = MetadataHandle::new(&MetadataConfig::default());
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let mut items = 0u64;
    for _ in 0..passes {
        for request in &pool {
            let batch = Batch::decode(signal, request.bytes.clone())?;
            items += batch.item_count() as u64;
            handle.observe(&batch);
        }
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    let summary = handle.take();
    let counted: u64 = summary
        .services
        .values()
        .map(|s| s.logs.volume.items + s.traces.volume.items)
        .sum();
    ensure!(
        counted == items,
        "the summary counted {counted} items of the {items} observed"
    );
    Ok(Report { items, cpu, wall })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_of_the_edge_load_is_summarised() {
        let r = run(Signal::Logs, 42, 100, 2).unwrap();
        assert_eq!(r.items, 2 * 64 * 100);
        let r = run(Signal::Traces, 42, 50, 1).unwrap();
        assert_eq!(r.items, 64 * 50);
        let e = run(Signal::Metrics, 42, 10, 1).err().unwrap();
        assert!(e.to_string().contains("metrics have no summary"), "{e}");
    }
}
