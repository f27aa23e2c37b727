//! Collector-compatible filter (OTTL) and probabilistic_sampler processors

use weir_api::Registry;

/// Adds this crate's component types to the registry.
pub fn register(_registry: &mut Registry) {}
