//! Collector-compatible `filter` (OTTL conditions and the legacy include/exclude form) and
//! `probabilistic_sampler` processors.
//!
//! ```yaml
//! processors:
//!   filter/noise:
//!     log_conditions:
//!       - 'log.severity_number < SEVERITY_NUMBER_INFO'
//!   probabilistic_sampler:
//!     sampling_percentage: 15.3
//!     hash_seed: 22
//! ```
//!
//! Both processors run behind the engine's fail-open guard: they compute every decision
//! before changing the batch, so an error leaves the batch as it arrived.

pub mod filter;
pub mod ottl;
pub mod sampler;
mod stage;

use weir_api::Registry;

/// Adds this crate's component types (`filter`, `probabilistic_sampler`) to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("filter", filter::FilterFactory);
    registry.processor("probabilistic_sampler", sampler::SamplerFactory);
}
