//! Runs a synchronous [`Processor`] as a pipeline [`Stage`] behind the fail-open guard.

use std::sync::Arc;

use weir_api::{BuildContext, Consumer, Processor, ProcessorStage, Signal, Stage};

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
    Arc::new(ProcessorStage::new(
        ctx.id.clone(),
        &pipeline,
        processor,
        next,
        &ctx.telemetry,
    ))
}
