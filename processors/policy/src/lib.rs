//! Weir policy engine: the telemetry policy specification (usetero/policy 1.6.0), policy
//! sources and the `policy` processor.
//!
//! The engine is a pure library: [`parse`] reads YAML/JSON policy documents into the wire
//! types of [`proto`]; [`set::PolicySet::build`] compiles each policy on its own (errors stay
//! with their policy) and builds a multi-pattern prefilter per signal; [`run::process`]
//! decides every record of a batch, then applies the decisions.

pub mod active;
pub mod at_rest;
pub mod cli;
pub mod compile;
pub mod evaluate;
pub mod file_source;
pub mod load;
pub mod matcher;
pub mod parse;
pub mod processor;
pub mod proto;
mod raw;
pub mod raw_logs;
pub mod raw_traces;
pub mod record;
pub mod run;
pub mod sampling;
pub mod server;
pub mod set;
pub mod stats;
pub mod sync_client;
pub mod sync_json;
pub mod transform;

use weir_api::Registry;

/// Adds the `policy` processor to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("policy", processor::PolicyFactory);
}
