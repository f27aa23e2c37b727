//! Runs a synchronous [`Processor`] as a pipeline [`Stage`] behind the fail-open guard.

use std::sync::Arc;

use async_trait::async_trait;
use weir_api::{
    Batch, BuildContext, Component, ConsumeError, Consumer, Processor, ProcessorStage, Signal,
    Stage,
};

/// [`ProcessorStage`] (which catches errors and panics and passes the batch on unchanged)
/// with the no-op lifecycle a stateless processor needs.
struct GuardedStage(ProcessorStage);

#[async_trait]
impl Consumer for GuardedStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.consume(batch).await
    }
}

impl Component for GuardedStage {}

/// Wraps `processor` in front of `next` for the pipeline being built.
pub(crate) fn guarded(
    ctx: &BuildContext,
    signal: Signal,
    processor: Arc<dyn Processor>,
    next: Arc<dyn Consumer>,
) -> Arc<dyn Stage> {
    let pipeline = ctx
        .pipeline
        .clone()
        .unwrap_or_else(|| signal.as_str().to_string());
    Arc::new(GuardedStage(ProcessorStage::new(
        ctx.id.clone(),
        &pipeline,
        processor,
        next,
        &ctx.telemetry,
    )))
}
