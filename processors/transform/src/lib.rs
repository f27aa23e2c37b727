//! Collector-compatible processors that change telemetry in place: `attributes`,
//! `resource` (attribute actions), `transform` (OTTL statements), `resourcedetection`
//! (`env` and `system` detectors) and `metricstransform` (renames, copies, label edits).
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
pub mod metricstransform;
pub mod resource;
pub mod resourcedetection;
mod stage;
pub mod transform;

use weir_api::Registry;

/// Adds this crate's processor types to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("attributes", attributes::AttributesFactory);
    registry.processor("resource", resource::ResourceFactory);
    registry.processor("transform", transform::TransformFactory);
    registry.processor("resourcedetection", resourcedetection::DetectionFactory);
    registry.processor(
        "metricstransform",
        metricstransform::MetricsTransformFactory,
    );
}
