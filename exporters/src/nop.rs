//! `nop`: accepts every batch and discards it, counting what it discarded.
//!
//! ```yaml
//! exporters:
//!   nop:
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, ExporterConfig, ExporterFactory, PerSignal, SignalSet, Stage,
};

/// The `nop` exporter takes no settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NopSettings {}

/// Factory of the `nop` exporter.
pub struct NopFactory;

impl ExporterFactory for NopFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let settings: NopSettings = parse_component_config(config, path)?;
        Ok(Box::new(settings))
    }
}

impl ExporterConfig for NopSettings {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let counters = PerSignal::from_fn(|signal| {
            ctx.telemetry.counter(
                "weir_exporter_sent_items",
                "Items (log records, spans, data points) an exporter delivered upstream",
                &[
                    ("exporter", ctx.id.to_string()),
                    ("signal", signal.as_str().to_string()),
                ],
            )
        });
        Ok(Arc::new(NopExporter { counters }))
    }
}

/// The running `nop` exporter.
pub struct NopExporter {
    counters: PerSignal<Counter>,
}

#[async_trait]
impl Consumer for NopExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.counters[batch.signal()].inc_by(batch.item_count() as u64);
        Ok(())
    }
}

impl Component for NopExporter {}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use weir_api::{ComponentId, Payload};

    #[tokio::test]
    async fn discards_and_counts() {
        let config = NopFactory
            .parse(&serde_json::Value::Null, "exporters.nop")
            .unwrap();
        let ctx = BuildContext::for_component(ComponentId::parse("nop").unwrap());
        let stage = config.build(&ctx).unwrap();
        let batch = Batch::new(Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); 3],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }));
        stage.consume(batch).await.unwrap();
        let text = ctx.telemetry.encode();
        assert!(
            text.contains("weir_exporter_sent_items_total{exporter=\"nop\",signal=\"traces\"} 3"),
            "{text}"
        );
        let err = NopFactory
            .parse(&serde_json::json!({"x": 1}), "exporters.nop")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("exporters.nop.x: unknown field `x`"),
            "{err}"
        );
    }
}
