//! Metadata extractor: template mining, attribute schemas, sketches; the metadata processor

use weir_api::Registry;

/// Adds this crate's component types to the registry.
pub fn register(_registry: &mut Registry) {}
