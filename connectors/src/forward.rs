//! `forward`: joins pipelines of one signal. Every batch a pipeline exports to it enters
//! every pipeline that lists it as a receiver.
//!
//! ```yaml
//! connectors:
//!   forward: {}
//! service:
//!   pipelines:
//!     logs/in:  {receivers: [otlp], exporters: [forward]}
//!     logs/out: {receivers: [forward], processors: [batch], exporters: [otlp]}
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors,
    ConnectorConfig, ConnectorFactory, ConsumeError, Consumer, FanOut, Signal, Stage,
};

/// The `forward` connector takes no settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSettings {}

/// Factory of the `forward` connector.
pub struct ForwardFactory;

impl ConnectorFactory for ForwardFactory {
    fn pairs(&self) -> Vec<(Signal, Signal)> {
        Signal::ALL.iter().map(|s| (*s, *s)).collect()
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ConnectorConfig>, ConfigErrors> {
        let settings: ForwardSettings = parse_component_config(config, path)?;
        Ok(Box::new(settings))
    }
}

impl ConnectorConfig for ForwardSettings {
    fn build(
        &self,
        _ctx: &BuildContext,
        _from: Signal,
        _to: Signal,
        outputs: Vec<(String, Arc<dyn Consumer>)>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(Arc::new(Forward {
            next: FanOut::of(outputs.into_iter().map(|(_, c)| c).collect()),
        }))
    }
}

/// The running `forward` connector.
struct Forward {
    next: Arc<dyn Consumer>,
}

#[async_trait]
impl Consumer for Forward {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        // A refusal travels back to the sender, so nothing is acknowledged that the
        // downstream pipelines did not take.
        self.next.consume(batch).await
    }
}

impl Component for Forward {}
