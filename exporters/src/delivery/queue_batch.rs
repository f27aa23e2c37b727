//! `sending_queue.batch`: the collector's exporter-side batching, run by Weir's `batch`
//! processor logic (one batcher per signal) in front of the exporter's queue.
//!
//! Mapping: `flush_timeout` -> `timeout`, `min_size` -> `send_batch_size`, `max_size` ->
//! `send_batch_max_size`, items counted as the collector's `items` sizer counts them (log
//! records, spans, data points). As with the `batch` processor, a sender's `consume` returns
//! once the batch holding its items is in the queue, so nothing is acknowledged that a
//! crash could lose; the collector acknowledges on enqueue and batches after the queue.

use std::sync::Arc;

use async_trait::async_trait;
use weir_api::{
    Batch, BuildContext, BuildError, Component, ConsumeError, Consumer, PerSignal, ProcessorConfig,
    Stage, StartError,
};

use super::QueueSettings;

/// The exporter's stage with batching in front when `sending_queue.batch` is set, else the
/// exporter itself.
pub fn with_queue_batch(
    ctx: &BuildContext,
    queue: &QueueSettings,
    exporter: Arc<dyn Stage>,
) -> Result<Arc<dyn Stage>, BuildError> {
    let Some(b) = queue.batch.as_ref().filter(|b| queue.enabled && b.is_on()) else {
        return Ok(exporter);
    };
    let config = b.batch_config();
    let mut batch_ctx = BuildContext {
        id: ctx.id.clone(),
        pipeline: Some(format!("{}/sending_queue", ctx.id)),
        telemetry: ctx.telemetry.clone(),
        ready: ctx.ready.clone(),
        base_dir: ctx.base_dir.clone(),
        authenticators: ctx.authenticators.clone(),
        shared: ctx.shared.clone(),
    };
    let next: Arc<dyn Consumer> = exporter.clone();
    let batchers = PerSignal::try_from_fn(|signal| {
        batch_ctx.pipeline = Some(format!("{}/sending_queue/{signal}", ctx.id));
        config.build(&batch_ctx, signal, next.clone())
    })?;
    Ok(Arc::new(QueueBatch { batchers, exporter }))
}

/// One batcher per signal in front of the exporter.
struct QueueBatch {
    batchers: PerSignal<Arc<dyn Stage>>,
    exporter: Arc<dyn Stage>,
}

#[async_trait]
impl Consumer for QueueBatch {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.batchers[batch.signal()].consume(batch).await
    }
}

#[async_trait]
impl Component for QueueBatch {
    async fn start(&self) -> Result<(), StartError> {
        self.exporter.start().await?;
        for (_, b) in self.batchers.iter() {
            b.start().await?;
        }
        Ok(())
    }

    async fn shutdown(&self) {
        // The batchers flush into the exporter, which then drains its queue.
        for (_, b) in self.batchers.iter() {
            b.shutdown().await;
        }
        self.exporter.shutdown().await;
    }
}
