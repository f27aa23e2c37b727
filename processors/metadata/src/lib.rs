//! The `metadata` processor: a pass-through that summarises every batch for the catalog.
//!
//! ```yaml
//! processors:
//!   metadata:
//!     max_templates: 2000
//!     flush_interval: 60s
//! service:
//!   pipelines:
//!     logs:
//!       receivers: [otlp]
//!       processors: [metadata]
//!       exporters: [catalog]
//! ```
//!
//! Only the pipeline component lives here. What it builds and how (masking, template
//! mining, the summary model, sketches, keys, the [`weir_summary::MetadataHandle`] the
//! `catalog` exporter takes summaries from) is weir-summary's, a library the control plane
//! uses without depending on this processor.

pub mod processor;

use weir_api::Registry;

pub use processor::{MetadataFactory, MetadataProcessor, MetadataProcessorConfig};

/// Adds the `metadata` processor to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("metadata", processor::MetadataFactory);
}
