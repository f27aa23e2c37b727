//! Catalog summaries: what the metadata extractor builds and the control plane stores.
//! A library with no pipeline component: the `metadata` processor (weir-metadata) and the
//! catalog (weir-catalog: its store, analysis, ingest, and the `catalog` exporter, which
//! summarises what it receives) both use it.
//!
//! - [`summary`]: [`summary::CatalogSummary`] and its parts, serde-serialisable and
//!   mergeable under [`summary::MergeCaps`];
//! - [`sketch`], [`sketch_wire`]: the distinct-value and duration sketches and the bounded
//!   reading of their wire form;
//! - [`key`]: [`SketchKey`], the deployment's key value hashes are made with, and its
//!   key file;
//! - [`validate`]: limits on a summary received from outside ([`validate::SummaryLimits`]);
//! - [`error`]: the errors of reading and writing key files and mining input
//!   ([`error::MetadataError`]);
//! - [`mask`]: masks variable and sensitive tokens (numbers, ids, addresses, e-mails,
//!   secrets) before mining;
//! - [`structure`]: the rule for which words of a template, name or key may be stored;
//! - [`drain`]: the streaming Drain-style [`drain::TemplateMiner`], bounded in memory;
//! - [`extract`]: turns batches into summaries under caps;
//! - [`handle`]: the summariser's config ([`MetadataConfig`]) and [`MetadataHandle`]
//!   (summarise, then take), which the `metadata` processors share with the `catalog`
//!   exporter through their build's `weir_api::Shared`;
//! - [`cli`]: `weir catalog mine`.

pub mod background;
pub mod cli;
pub mod drain;
pub mod error;
pub mod extract;
pub mod handle;
pub mod key;
pub mod mask;
mod raw;
mod redact;
mod shapes;
pub mod sketch;
pub mod sketch_wire;
pub mod structure;
pub mod summary;
pub mod validate;

pub use background::{Background, BackgroundCounters};
pub use handle::{MetadataConfig, MetadataHandle, MiningConfig};
pub use key::SketchKey;
pub use summary::CatalogSummary;
