//! The leaf crate every Weir component depends on: the telemetry batch, the component
//! traits, factories and the registry they are listed in, and shared error types.
//!
//! Data flows as [`Batch`]es through [`Consumer`]s: a receiver hands each decoded request to
//! the consumer of its pipeline(s); a processor stage transforms it and hands it on; an
//! exporter queues it for sending. Components are described by factories
//! ([`ReceiverFactory`], [`ProcessorFactory`], [`ExporterFactory`], [`ExtensionFactory`])
//! that parse and validate their own YAML section before anything is built.

pub mod auth;
mod batch;
mod component;
pub mod config;
mod consumer;
#[cfg(feature = "test-fixtures")]
pub mod fixtures;
#[cfg(feature = "grpc")]
pub mod grpc_raw;
pub mod json;
pub mod metric_splice;
mod registry;
pub mod reload;
pub mod rpc_status;
mod shared;
mod splice;
pub mod storage;
mod telemetry;
mod telemetry_collector;
mod wire_check;
pub mod wire_read;
pub mod zipkin_proto;

pub use auth::{AuthError, Authenticators, ClientAuthenticator, ServerAuthenticator};
pub use batch::{Batch, BatchContext, DecodeError, Payload, PerSignal, Signal, SignalSet};
pub use component::{
    BuildContext, BuildError, Component, ConnectorConfig, ConnectorFactory, ExporterConfig,
    ExporterFactory, ExtensionConfig, ExtensionFactory, ProcessorConfig, ProcessorFactory,
    ReceiverConfig, ReceiverFactory, SignalConsumers, Stage, StartError,
};
pub use config::{parse_component_config, ComponentId, ConfigError, ConfigErrors};
pub use consumer::{ConsumeError, Consumer, FanOut, ProcessError, Processor, ProcessorStage};
pub use registry::Registry;
pub use shared::Shared;
pub use telemetry::{process_start, Counter, Exposition, Gauge, Telemetry};
pub use telemetry_collector::sanitize as telemetry_label_name;
pub use wire_check::varint as read_varint;

/// The receipt check of [`Batch::decode`] on its own (the number of items of a valid encoded
/// export request of `signal`, `None` when the bytes are not one): for the benchmark
/// (`benches/receipt_check.rs`), not an API.
#[doc(hidden)]
pub fn check_encoded_request(signal: Signal, buf: &[u8]) -> Option<usize> {
    wire_check::count_items(signal, buf)
}

/// Re-export of the OTLP protobuf types the batch is made of.
pub use opentelemetry_proto::tonic as otlp;
