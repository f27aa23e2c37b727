//! The OTLP protobuf messages, at the same paths as `opentelemetry_proto::tonic` (the
//! `opentelemetry-proto` crate itself pulls `wasm-bindgen` into wasm32 builds, whose imports
//! no Weir host provides, so the SDK carries the generated messages itself).
#![allow(missing_docs, clippy::all, rustdoc::all)]

/// Common types: values, key-values, instrumentation scope.
pub mod common {
    /// Version 1.
    pub mod v1 {
        include!("common.rs");
    }
}
/// The resource an item came from.
pub mod resource {
    /// Version 1.
    pub mod v1 {
        include!("resource.rs");
    }
}
/// Log records.
pub mod logs {
    /// Version 1.
    pub mod v1 {
        include!("logs.rs");
    }
}
/// Spans.
pub mod trace {
    /// Version 1.
    pub mod v1 {
        include!("trace.rs");
    }
}
/// Metrics.
pub mod metrics {
    /// Version 1.
    pub mod v1 {
        include!("metrics.rs");
    }
}
/// The export requests a batch arrives as.
pub mod collector {
    /// Logs export.
    pub mod logs {
        /// Version 1.
        pub mod v1 {
            /// One batch of log records (`ExportLogsServiceRequest`).
            #[derive(Clone, PartialEq, ::prost::Message)]
            pub struct ExportLogsServiceRequest {
                #[prost(message, repeated, tag = "1")]
                pub resource_logs: ::prost::alloc::vec::Vec<crate::otlp::logs::v1::ResourceLogs>,
            }
        }
    }
    /// Traces export.
    pub mod trace {
        /// Version 1.
        pub mod v1 {
            /// One batch of spans (`ExportTraceServiceRequest`).
            #[derive(Clone, PartialEq, ::prost::Message)]
            pub struct ExportTraceServiceRequest {
                #[prost(message, repeated, tag = "1")]
                pub resource_spans: ::prost::alloc::vec::Vec<crate::otlp::trace::v1::ResourceSpans>,
            }
        }
    }
    /// Metrics export.
    pub mod metrics {
        /// Version 1.
        pub mod v1 {
            /// One batch of metrics (`ExportMetricsServiceRequest`).
            #[derive(Clone, PartialEq, ::prost::Message)]
            pub struct ExportMetricsServiceRequest {
                #[prost(message, repeated, tag = "1")]
                pub resource_metrics:
                    ::prost::alloc::vec::Vec<crate::otlp::metrics::v1::ResourceMetrics>,
            }
        }
    }
}
