//! The Weir engine: config loading and validation, graph building, the service lifecycle,
//! Weir's own metrics and health endpoints, and the CLI the `weir` binary runs.
//!
//! See docs/ARCHITECTURE.md for how the pieces fit.

pub mod cli;
pub mod config;
pub mod extensions;
pub mod graph;
pub mod logging;
pub mod metrics_server;
pub mod runtime;
pub mod telemetry_push;

#[cfg(test)]
mod test_components;

use weir_api::Registry;

/// Every component type compiled into this binary. Each crate adds its own types; this list
/// is the one place that decides what `weir` contains.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    weir_receivers::register(&mut registry);
    weir_exporters::register(&mut registry);
    weir_processors::register(&mut registry);
    weir_policy::register(&mut registry);
    weir_filter::register(&mut registry);
    weir_transform::register(&mut registry);
    weir_wasm::register(&mut registry);
    weir_metadata::register(&mut registry);
    weir_connectors::register(&mut registry);
    weir_catalog::register(&mut registry);
    extensions::register(&mut registry);
    registry
}
