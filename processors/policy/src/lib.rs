//! The `policy` processor of Weir (usetero/policy 1.6.0) and its policy sources: files
//! ([`load`], [`file_source`]), `PolicyService.Sync` over gRPC and HTTP as a client
//! ([`sync_client`]), the swappable active set ([`active`]) and `weir policy eval|validate`
//! ([`cli`]).
//!
//! Compiling and deciding is the engine's (weir-policy-engine, a library the control plane's
//! dry run uses too): [`processor`] runs `weir_policy_engine::run::process` on every batch
//! with the active set. The policy model, the reading of policy documents, the wire formats
//! and the sync protocol are the contract crate's (weir-policy-contract), re-exported here as
//! [`proto`], [`parse`], [`sync_json`] and [`server`].

pub mod active;
pub mod cli;
pub mod file_source;
pub mod load;
pub mod processor;
pub mod sync_client;

use weir_api::Registry;
pub use weir_policy_contract::sync as server;
pub use weir_policy_contract::{parse, proto, sync_json};
/// Keys and sealed files at rest (the policy cache): weir-tls's, re-exported.
pub use weir_tls::at_rest;

/// Adds the `policy` processor to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor("policy", processor::PolicyFactory);
}
