//! Weir receivers: OTLP over gRPC and HTTP, `nop`, `prometheus` (scrapes targets),
//! `filelog` (tails files), `hostmetrics` (the host's own metrics), the legacy trace
//! intakes `zipkin` (v2 JSON/protobuf, v1 JSON) and `jaeger` (gRPC, Thrift over HTTP and
//! UDP), and the `file_storage` extension (its checkpoints).
//!
//! [`register`] adds the receiver types of this crate to the registry; the binary calls it
//! in its list of component crates.

pub mod file_storage;
pub mod filelog;
pub mod hostmetrics;
mod http_server;
pub mod jaeger;
pub mod nop;
pub mod otlp;
pub mod prometheus;
pub mod zipkin;

use weir_api::Registry;

/// Adds this crate's component types to the registry: `otlp`, `nop`, `prometheus`,
/// `filelog` (also `file_log`), `hostmetrics`, `zipkin`, `jaeger` and the `file_storage` extension.
pub fn register(registry: &mut Registry) {
    registry.receiver("otlp", otlp::OtlpReceiverFactory);
    registry.receiver("nop", nop::NopReceiverFactory);
    registry.receiver("prometheus", prometheus::PrometheusReceiverFactory);
    registry.receiver("filelog", filelog::FileLogReceiverFactory);
    registry.receiver("file_log", filelog::FileLogReceiverFactory);
    registry.extension("file_storage", file_storage::FileStorageFactory);
    registry.receiver("hostmetrics", hostmetrics::HostMetricsReceiverFactory);
    registry.receiver("zipkin", zipkin::ZipkinReceiverFactory);
    registry.receiver("jaeger", jaeger::JaegerReceiverFactory);
}
