//! Weir's edge <-> control-plane policy contract (the telemetry policy specification,
//! usetero/policy 1.6.0): everything both sides must agree on, and nothing that runs a
//! policy.
//!
//! - [`proto`]: the policy model and the sync protocol's types (package `tero.policy.v1`,
//!   generated from proto/), with the `PolicyService` gRPC client and server.
//! - [`parse`]: reading and validating policy documents (YAML or JSON; the specification's
//!   file form and the protobuf-JSON spellings) into the model, defaults applied once.
//! - [`sync_json`]: the JSON form of the sync request and response.
//! - [`canonical`]: a policy's canonical form (its protobuf encoding) and the policy-set hash.
//! - [`sync`]: serving `PolicyService.Sync` (a store trait, its gRPC service and HTTP route).
//! - [`yaml`]: one policy document as YAML, read (with line and column in errors) and
//!   rendered for editing; the control plane's API and UI use only this.
//!
//! The policy processor (weir-policy) compiles and evaluates what this crate reads; the
//! control plane (weir-catalog) stores and serves it.

pub mod canonical;
pub mod parse;
pub mod proto;
pub mod sync;
pub mod sync_json;
pub mod yaml;

/// The label that puts a policy in shadow mode when its value is `"true"`: the edge matches
/// and counts it but drops and changes nothing. The control plane sets it on the policies it
/// serves in shadow mode.
pub const SHADOW_LABEL: &str = "weir.shadow";
