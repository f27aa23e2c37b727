//! Helpers shared by the integration tests and examples.
#![allow(dead_code)]

pub mod loghub;
