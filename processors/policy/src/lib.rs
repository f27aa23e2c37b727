//! Weir policy engine: the telemetry policy specification, policy sources and the policy processor

use weir_api::Registry;

/// Adds this crate's component types to the registry.
pub fn register(_registry: &mut Registry) {}
