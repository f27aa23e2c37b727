//! Weir core processors: `batch`, `queuebatch` and `memory_limiter`, with the collector's field names and
//! defaults.

pub mod batch;
pub mod memory_limiter;
pub mod queuebatch;

use weir_api::Registry;

/// Adds this crate's component types to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("batch", batch::BatchFactory);
    registry.processor("memory_limiter", memory_limiter::MemoryLimiterFactory);
    registry.processor("queuebatch", queuebatch::QueueBatchFactory);
}
