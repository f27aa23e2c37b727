//! The `resource` processor: the Collector's attribute actions on resource attributes.
//!
//! ```yaml
//! processors:
//!   resource:
//!     attributes:
//!       - key: deployment.environment
//!         value: production
//!         action: upsert
//!       - key: host.ip
//!         action: delete
//! ```

use std::sync::Arc;

use serde::Deserialize;
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, Consumer, Payload,
    ProcessError, Processor, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
};

use crate::attraction::{self, Action};

/// `resource` processor config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// The actions on resource attributes (see [`attraction::ActionConfig`]), applied in
    /// order. Required (non-empty).
    pub attributes: Vec<serde_json::Value>,
}

/// Factory of the `resource` processor type.
pub struct ResourceFactory;

impl ProcessorFactory for ResourceFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        Ok(Box::new(ResourceProcessorConfig {
            processor: Arc::new(ResourceProcessor::from_config(config, path)?),
        }))
    }
}

struct ResourceProcessorConfig {
    processor: Arc<ResourceProcessor>,
}

impl ProcessorConfig for ResourceProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(crate::stage::guarded(
            ctx,
            signal,
            self.processor.clone(),
            next,
        ))
    }
}

/// The running `resource` processor.
pub struct ResourceProcessor {
    actions: Vec<Action>,
}

impl ResourceProcessor {
    /// Parses and validates `config` (found at YAML `path`), reporting every problem.
    pub fn from_config(config: &serde_json::Value, path: &str) -> Result<Self, ConfigErrors> {
        let cfg: ResourceConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.attributes.is_empty() {
            errors.push(
                format!("{path}.attributes"),
                "missing required field \"attributes\"",
            );
        }
        let actions =
            attraction::compile(&cfg.attributes, &format!("{path}.attributes"), &mut errors);
        errors.into_result(ResourceProcessor { actions })
    }
}

impl Processor for ResourceProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        let ctx = batch.context.clone();
        let apply = |r: &mut Option<Resource>| {
            let r = r.get_or_insert_with(Resource::default);
            attraction::apply(&self.actions, &mut r.attributes, &ctx);
        };
        match batch.payload_mut() {
            Payload::Logs(req) => req
                .resource_logs
                .iter_mut()
                .for_each(|x| apply(&mut x.resource)),
            Payload::Traces(req) => req
                .resource_spans
                .iter_mut()
                .for_each(|x| apply(&mut x.resource)),
            Payload::Metrics(req) => req
                .resource_metrics
                .iter_mut()
                .for_each(|x| apply(&mut x.resource)),
        }
        Ok(())
    }
}
