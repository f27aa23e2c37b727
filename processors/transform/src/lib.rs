//! Collector-compatible processors that change telemetry in place: `attributes`,
//! `resource` (attribute actions), and the ones that follow in this crate.
//!
//! ```yaml
//! processors:
//!   attributes/redact:
//!     actions:
//!       - {key: password, action: delete}
//!   resource:
//!     attributes:
//!       - {key: deployment.environment, value: prod, action: upsert}
//! ```
//!
//! Every processor runs behind the engine's fail-open guard.

pub mod attraction;
pub mod attributes;
pub mod matching;
pub mod resource;
mod stage;

use weir_api::Registry;

/// Adds this crate's processor types to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("attributes", attributes::AttributesFactory);
    registry.processor("resource", resource::ResourceFactory);
}
