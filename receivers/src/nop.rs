//! `nop`: a receiver that produces nothing, so a pipeline can exist without a source (the
//! collector's `nopreceiver`: pipelines fed only by a connector, placeholders in templates).
//!
//! ```yaml
//! receivers:
//!   nop:
//! ```

use std::sync::Arc;

use serde::Deserialize;
use weir_api::{
    parse_component_config, BuildContext, BuildError, Component, ConfigErrors, ReceiverConfig,
    ReceiverFactory, SignalConsumers, SignalSet,
};

/// The `nop` receiver takes no settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NopReceiverSettings {}

/// Factory of the `nop` receiver.
pub struct NopReceiverFactory;

impl ReceiverFactory for NopReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        let settings: NopReceiverSettings = parse_component_config(config, path)?;
        Ok(Box::new(settings))
    }
}

impl ReceiverConfig for NopReceiverSettings {
    fn build(
        &self,
        _ctx: &BuildContext,
        _consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        Ok(Arc::new(NopReceiver))
    }
}

/// The running `nop` receiver: starts and stops, and never hands on a batch.
pub struct NopReceiver;

impl Component for NopReceiver {}
