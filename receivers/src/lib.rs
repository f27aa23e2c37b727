//! Weir receivers: OTLP over gRPC and HTTP, `nop`, and `prometheus` (scrapes targets).
//!
//! [`register`] adds the receiver types of this crate to the registry; the binary calls it
//! in its list of component crates.

pub mod nop;
pub mod otlp;
pub mod prometheus;

use weir_api::Registry;

/// Adds this crate's component types to the registry: `otlp`, `nop`, `prometheus`.
pub fn register(registry: &mut Registry) {
    registry.receiver("otlp", otlp::OtlpReceiverFactory);
    registry.receiver("nop", nop::NopReceiverFactory);
    registry.receiver("prometheus", prometheus::PrometheusReceiverFactory);
}
