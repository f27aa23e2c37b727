//! Weir receivers: OTLP over gRPC and HTTP

use weir_api::Registry;

/// Adds this crate's component types to the registry.
pub fn register(_registry: &mut Registry) {}
