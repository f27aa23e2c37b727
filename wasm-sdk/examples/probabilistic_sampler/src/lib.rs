//! The collector's `probabilistic_sampler` in `hash_seed` mode, as a module: the same
//! decisions as Weir's built-in sampler for the same `hash_seed` and `sampling_percentage`.
//!
//! ```yaml
//! processors:
//!   wasm/sampler:
//!     module: probabilistic_sampler.wasm
//!     config: { sampling_percentage: 25, hash_seed: 22 }
//! ```
//! The hash is FNV-1a 32 over the seed (4 bytes, little-endian) then the 16-byte trace id; an
//! item is kept when the low 14 bits of the hash are below `percentage * 163.84` (computed in
//! 32-bit floats and truncated, as the collector does). Spans and log records are sampled by
//! trace id; items without one are kept (the built-in can instead sample such log records by
//! an attribute, which this example does not).

use weir_wasm_sdk::{export, Error, Logs, Processor, Spans};

const BIT_MASK_HASH_BUCKETS: u32 = 0x4000 - 1;

struct ProbabilisticSampler {
    seed: u32,
    threshold: u32,
}

fn fnv1a32(seed: u32, id: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in seed.to_le_bytes().iter().chain(id) {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

impl ProbabilisticSampler {
    fn keep(&self, trace_id: &[u8]) -> bool {
        if trace_id.is_empty() {
            return true;
        }
        fnv1a32(self.seed, trace_id) & BIT_MASK_HASH_BUCKETS < self.threshold
    }
}

impl Processor for ProbabilisticSampler {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        let percentage = config["sampling_percentage"].as_f64().unwrap_or(0.0) as f32;
        if !(0.0..=100.0).contains(&percentage) {
            return Err(Error::new(format!(
                "sampling_percentage must be 0..100, got {percentage}"
            )));
        }
        let seed = config["hash_seed"].as_u64().unwrap_or(0);
        let seed = u32::try_from(seed)
            .map_err(|_| Error::new(format!("hash_seed must fit in 32 bits, got {seed}")))?;
        Ok(ProbabilisticSampler {
            seed,
            threshold: (percentage * 163.84f32) as u32,
        })
    }

    fn process_spans(&mut self, spans: &mut Spans<'_>) -> Result<(), Error> {
        spans.retain_view(|span| self.keep(span.trace_id()))
    }

    fn process_logs(&mut self, logs: &mut Logs<'_>) -> Result<(), Error> {
        logs.retain_view(|record| self.keep(record.trace_id()))
    }
}

export!(ProbabilisticSampler, logs, traces);
