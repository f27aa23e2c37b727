//! Weir policy engine: compiles telemetry policies (usetero/policy 1.6.0) and decides
//! batches with them. A pure library: no pipeline component, no policy source.
//!
//! The policy model, the reading of policy documents and the wire formats are the contract
//! crate's (weir-policy-contract). [`set::PolicySet::build`] compiles each policy on its own
//! (errors stay with their policy) and builds a multi-pattern prefilter per signal;
//! [`evaluate`] decides the records of a decoded request, [`raw_logs`], [`raw_traces`] and
//! [`raw_metrics`] the records of an encoded one without decoding it whole; [`run::process`] decides every
//! record of a batch, then applies the decisions ([`transform`], [`sampling`]);
//! [`stats::StatsRegistry`] counts hits and misses per policy.
//!
//! The `policy` processor (weir-policy) and the control plane's dry run (weir-catalog) both
//! use this crate.

pub mod compile;
pub mod evaluate;
pub mod matcher;
mod raw;
pub mod raw_logs;
pub mod raw_metrics;
pub mod raw_traces;
pub mod record;
pub mod run;
pub mod sampling;
pub mod set;
pub mod stats;
pub mod transform;
