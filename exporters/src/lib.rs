//! Weir's exporters: `otlp_grpc` (alias `otlp`), `otlp_http` (alias `otlphttp`), `debug`,
//! `file`, `nop`, and the Prometheus exporters `prometheus` (a pull endpoint) and
//! `prometheusremotewrite`, which share [`prom_naming`], and `zipkin` (Zipkin v2 JSON or
//! protobuf).
//!
//! The two OTLP exporters share the [`delivery`] machinery: a bounded sending queue with
//! consumer tasks and retry with exponential backoff. A full queue refuses new data with a
//! retry hint (the receiver passes that on to its client), so nothing is dropped silently.

pub mod debug;
pub mod delivery;
mod error;
pub mod file;
pub mod nop;
pub mod otlp_grpc;
pub mod otlp_http;
mod otlp_response;
mod otlp_settings;
pub mod otlptext;
pub mod prom_naming;
pub mod prometheus;
pub mod prometheus_remote_write;
pub mod zipkin;

pub use error::SendError;

use weir_api::Registry;

/// Adds this crate's exporter types to the registry.
pub fn register(registry: &mut Registry) {
    registry.exporter(&["otlp_grpc", "otlp"], otlp_grpc::OtlpGrpcFactory);
    registry.exporter(&["otlp_http", "otlphttp"], otlp_http::OtlpHttpFactory);
    registry.exporter(&["debug"], debug::DebugFactory);
    registry.exporter(&["logging"], debug::LoggingFactory);
    registry.exporter(&["file"], file::FileFactory);
    registry.exporter(&["nop"], nop::NopFactory);
    registry.exporter(&["prometheus"], prometheus::PrometheusFactory);
    registry.exporter(
        &["prometheusremotewrite"],
        prometheus_remote_write::RemoteWriteFactory,
    );
    registry.exporter(&["zipkin"], zipkin::ZipkinFactory);
}
