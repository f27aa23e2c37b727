//! Weir policy engine: the telemetry policy specification (usetero/policy 1.6.0), policy
//! sources and the `policy` processor.
//!
//! The policy model, the reading of policy documents, the wire formats and the sync protocol
//! are the contract crate's (weir-policy-contract), re-exported here as [`proto`], [`parse`],
//! [`sync_json`] and [`server`]. The engine is a pure library over them:
//! [`set::PolicySet::build`] compiles each policy on its own (errors stay
//! with their policy) and builds a multi-pattern prefilter per signal; [`run::process`]
//! decides every record of a batch, then applies the decisions.

pub mod active;
pub mod cli;
pub mod compile;
pub mod evaluate;
pub mod file_source;
pub mod load;
pub mod matcher;
pub mod processor;
mod raw;
pub mod raw_logs;
pub mod raw_traces;
pub mod record;
pub mod run;
pub mod sampling;
pub mod set;
pub mod stats;
pub mod sync_client;
pub mod transform;

use weir_api::Registry;
pub use weir_policy_contract::sync as server;
pub use weir_policy_contract::{parse, proto, sync_json};
/// Keys and sealed files at rest (the policy cache): weir-tls's, re-exported.
pub use weir_tls::at_rest;

/// Adds the `policy` processor to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("policy", processor::PolicyFactory);
}
