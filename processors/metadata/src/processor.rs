//! The `metadata` processor: a pass-through that summarises every batch for the catalog.
//!
//! The summariser itself (config, caps, template mining, the handle the summaries are
//! taken from) is weir-summary's ([`weir_summary::handle`]); this is the pipeline
//! component around it. Each instance (one per component id, shared by every pipeline that
//! lists it) keeps its summaries in one [`MetadataHandle`], put in its build's
//! [`weir_api::Shared`] under the component id; the `catalog` exporter built in the same
//! service takes them from there.

use std::sync::Arc;

use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, ConfigErrors, Consumer, ProcessError,
    Processor, ProcessorConfig, ProcessorFactory, ProcessorStage, Signal, SignalSet, Stage,
};
use weir_summary::{MetadataConfig, MetadataHandle};

/// Config of the `metadata` processor: the summariser's settings.
#[derive(Debug, Clone)]
pub struct MetadataProcessorConfig(pub MetadataConfig);

/// The pass-through processor: summarises, never changes the batch.
pub struct MetadataProcessor {
    handle: Arc<MetadataHandle>,
}

impl MetadataProcessor {
    /// A processor feeding `handle`.
    pub fn new(handle: Arc<MetadataHandle>) -> Self {
        MetadataProcessor { handle }
    }
}

impl Processor for MetadataProcessor {
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError> {
        // Read-only access: the batch keeps its original bytes.
        self.handle.observe(batch);
        Ok(())
    }
}

/// Factory of the `metadata` processor.
pub struct MetadataFactory;

impl ProcessorFactory for MetadataFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let parsed: MetadataConfig = parse_component_config(config, path)?;
        parsed
            .validate(path)
            .into_result(Box::new(MetadataProcessorConfig(parsed)) as Box<dyn ProcessorConfig>)
    }
}

impl ProcessorConfig for MetadataProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        // Every pipeline of this build listing the id gets the same handle.
        let handle = ctx
            .shared
            .get_or_insert_with(&ctx.id.to_string(), || MetadataHandle::new(&self.0));
        let pipeline = ctx.pipeline.as_deref().unwrap_or("");
        let stage = ProcessorStage::new(
            ctx.id.clone(),
            pipeline,
            Arc::new(MetadataProcessor::new(handle)),
            next,
            &ctx.telemetry,
        );
        Ok(Arc::new(stage))
    }
}
