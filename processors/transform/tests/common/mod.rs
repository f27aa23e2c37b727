//! Shared helpers of this crate's integration tests: the OTLP builders the filter tests use
//! (one copy for both crates, re-exported here), and per processor how a test builds it and
//! reads what it did.
#![allow(dead_code)]

pub mod attributes;
#[path = "../../../filter/tests/common/mod.rs"]
mod otlp;
pub mod transform;

pub use otlp::*;
