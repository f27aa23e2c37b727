//! Connectors: components that are an exporter of one pipeline and a receiver of another,
//! configured under `connectors:` as in the OpenTelemetry Collector.
//!
//! - `forward`: hands each batch to the pipelines that receive from it (same signal);
//! - `count`: counts spans, span events, metrics, data points and log records (optionally
//!   by OTTL conditions and attributes) and emits the counts as delta sums on a metrics
//!   pipeline;
//! - `routing`: sends each resource (or record) to the pipelines of the first route whose
//!   OTTL condition matches, or to the default pipelines;
//! - `spanmetrics`: aggregates calls, duration histograms (and span events) per service,
//!   span name, kind, status and configured dimensions, emitted every flush interval.
//!
//! The engine builds one instance per (connector, exporter signal, receiver signal) and
//! hands it the entries of the pipelines it feeds; see `weir_api::ConnectorConfig`.

pub mod count;
pub mod forward;
pub mod routing;
pub mod spanmetrics;

use weir_api::Registry;

/// Adds this crate's connector types to the registry.
pub fn register(registry: &mut Registry) {
    registry.connector("forward", forward::ForwardFactory);
    registry.connector("count", count::CountFactory);
    registry.connector("routing", routing::RoutingFactory);
    registry.connector("spanmetrics", spanmetrics::SpanMetricsFactory);
}
