//! Metadata extractor for the catalog: masking and template mining of log lines,
//! mergeable summaries (templates, attribute schemas, metrics, spans) and the pass-through
//! `metadata` processor that builds them.
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
//! - [`mask`]: masks variable and sensitive tokens (numbers, ids, addresses, e-mails,
//!   secrets) before mining;
//! - [`structure`]: the rule for which words of a template, name or key may be stored;
//! - [`drain`]: the streaming Drain-style [`drain::TemplateMiner`], bounded in memory;
//! - [`summary`]: [`summary::CatalogSummary`] and its parts, serde-serialisable and
//!   mergeable;
//! - [`extract`]: turns batches into summaries under caps;
//! - [`processor`]: the processor and [`processor::MetadataHub`], where the `catalog`
//!   exporter takes summaries from;
//! - [`cli`]: `weir catalog mine`.

pub mod cli;
pub mod drain;
pub mod error;
pub mod extract;
pub mod key;
pub mod mask;
pub mod processor;
mod raw;
mod redact;
mod shapes;
pub mod sketch;
pub mod sketch_wire;
pub mod structure;
pub mod summary;
pub mod validate;

use weir_api::Registry;

pub use key::SketchKey;
pub use processor::{MetadataConfig, MetadataHandle, MetadataHub};
pub use summary::CatalogSummary;

/// Adds the `metadata` processor to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("metadata", processor::MetadataFactory);
}
