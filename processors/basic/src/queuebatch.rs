//! The `queuebatch` processor (the collector's replacement of `batch`, v0.158+): its
//! config is the exporter sending queue's (`sizer`, `queue_size`, `num_consumers`,
//! `block_on_overflow`, `wait_for_result`, `batch: {flush_timeout, sizer, min_size,
//! max_size, partition}`), with the processor's defaults; the batching runs on the `batch`
//! processor's logic.
//!
//! ```yaml
//! processors:
//!   queuebatch:
//!     num_consumers: 1          # default 1
//!     sizer: requests           # default requests
//!     queue_size: 10            # default 10
//!     block_on_overflow: true   # default true
//!     wait_for_result: false    # default false
//!     batch:                    # on by default; `enabled: false` turns it off
//!       flush_timeout: 200ms
//!       sizer: items
//!       min_size: 8192
//!       max_size: 0
//! ```
//!
//! Mapping: `flush_timeout` -> `timeout`, `min_size` -> `send_batch_size`, `max_size` ->
//! `send_batch_max_size`. Weir has no separate queue here: a sender is answered once the
//! flush holding its items was taken by the next stage (what `wait_for_result: true` asks
//! for, and a bounded backlog, as `block_on_overflow` protects); so `queue_size`,
//! `num_consumers`, `block_on_overflow` and `wait_for_result` are checked and have no further
//! effect. Not supported (config errors): `storage`, the `bytes` sizer for batches, and
//! `batch.partition.metadata_keys`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use weir_api::{
    parse_component_config, BuildContext, BuildError, ConfigErrors, Consumer, ProcessorConfig,
    ProcessorFactory, Signal, SignalSet, Stage,
};

use crate::batch::BatchConfig;

/// What a queue or batch size counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizerKind {
    /// Requests (batches as received).
    Requests,
    /// Log records, spans or metric data points.
    Items,
    /// Bytes of the protobuf encoding.
    Bytes,
}

/// `batch` of a sending queue or of this processor (the collector's defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueBatchSettings {
    /// `false` turns batching off (the collector's optional-section form). Default: on.
    pub enabled: Option<bool>,
    /// Longest time items wait for more before they are sent. Default `200ms`.
    #[serde(with = "humantime_serde")]
    pub flush_timeout: Duration,
    /// What `min_size` and `max_size` count: `items` (`bytes`: not supported yet).
    /// Default: the queue's sizer when that is items or bytes, else `items`.
    pub sizer: Option<SizerKind>,
    /// Items that trigger a send. Default `8192`.
    pub min_size: u64,
    /// Most items in one request; larger ones are split. Default `0` (no limit).
    pub max_size: u64,
    /// Batching per client metadata. Not supported yet: must stay empty.
    pub partition: QueueBatchPartition,
}

/// `batch.partition`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueBatchPartition {
    /// Metadata keys that split batches. Default: none.
    #[serde(deserialize_with = "weir_api::config::string_list")]
    pub metadata_keys: Vec<String>,
}

impl Default for QueueBatchSettings {
    fn default() -> Self {
        QueueBatchSettings {
            enabled: None,
            flush_timeout: Duration::from_millis(200),
            sizer: None,
            min_size: 8192,
            max_size: 0,
            partition: QueueBatchPartition::default(),
        }
    }
}

impl QueueBatchSettings {
    /// Whether batching is on (`enabled` not `false`).
    pub fn is_on(&self) -> bool {
        self.enabled != Some(false)
    }

    /// The sizer of the batch given the queue's.
    pub fn effective_sizer(&self, queue: SizerKind) -> SizerKind {
        self.sizer.unwrap_or(match queue {
            SizerKind::Requests => SizerKind::Items,
            other => other,
        })
    }

    /// Reports every unsupported or out-of-range value; `path` is the `batch` section's.
    pub fn validate(
        &self,
        queue_sizer: SizerKind,
        queue_size: u64,
        path: &str,
        errors: &mut ConfigErrors,
    ) {
        if !self.is_on() {
            return;
        }
        if self.flush_timeout.is_zero() {
            errors.push(format!("{path}.flush_timeout"), "must be positive");
        }
        let sizer = self.effective_sizer(queue_sizer);
        match sizer {
            SizerKind::Items => {}
            SizerKind::Bytes => errors.push(
                format!("{path}.sizer"),
                "the bytes sizer is not supported for batching yet; use items",
            ),
            SizerKind::Requests => errors.push(
                format!("{path}.sizer"),
                "`batch` supports only the items or bytes sizer",
            ),
        }
        if self.max_size > 0 && self.max_size < self.min_size {
            errors.push(
                format!("{path}.max_size"),
                format!(
                    "max_size ({}) must be greater or equal to min_size ({})",
                    self.max_size, self.min_size
                ),
            );
        }
        if sizer == queue_sizer && self.min_size > queue_size {
            errors.push(
                format!("{path}.min_size"),
                "must be less than or equal to queue_size",
            );
        }
        if !self.partition.metadata_keys.is_empty() {
            errors.push(
                format!("{path}.partition.metadata_keys"),
                "batching by metadata keys is not supported yet",
            );
        }
    }

    /// The `batch` processor settings that run this batching.
    pub fn batch_config(&self) -> BatchConfig {
        if !self.is_on() {
            // Every batch passes at once.
            return BatchConfig {
                timeout: Duration::ZERO,
                ..Default::default()
            };
        }
        BatchConfig {
            send_batch_size: usize::try_from(self.min_size).unwrap_or(usize::MAX),
            send_batch_max_size: usize::try_from(self.max_size).unwrap_or(usize::MAX),
            timeout: self.flush_timeout,
            ..Default::default()
        }
    }
}

/// A field that, once present (even as `null`), holds a value: `null` means the defaults.
pub fn present_or_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// `processors.queuebatch` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueBatchProcessorConfig {
    /// Answer senders only once their data was sent on. Default false.
    pub wait_for_result: bool,
    /// What `queue_size` counts. Default `requests`.
    pub sizer: SizerKind,
    /// Queue capacity in units of `sizer`. Default 10.
    pub queue_size: u64,
    /// Wait for room when full. Default true.
    pub block_on_overflow: bool,
    /// A storage extension for the queue. Not supported.
    pub storage: Option<String>,
    /// Tasks sending batches on. Default 1.
    pub num_consumers: u64,
    /// Batching. Default: on with its defaults.
    #[serde(deserialize_with = "present_or_default")]
    pub batch: Option<QueueBatchSettings>,
}

impl Default for QueueBatchProcessorConfig {
    fn default() -> Self {
        QueueBatchProcessorConfig {
            wait_for_result: false,
            sizer: SizerKind::Requests,
            queue_size: 10,
            block_on_overflow: true,
            storage: None,
            num_consumers: 1,
            batch: Some(QueueBatchSettings::default()),
        }
    }
}

/// Factory of the `queuebatch` processor.
pub struct QueueBatchFactory;

impl ProcessorFactory for QueueBatchFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }
    fn parse(&self, config: &Value, path: &str) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let cfg: QueueBatchProcessorConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.num_consumers == 0 {
            errors.push(format!("{path}.num_consumers"), "must be positive");
        }
        if cfg.queue_size == 0 {
            errors.push(format!("{path}.queue_size"), "must be positive");
        }
        if cfg.storage.is_some() {
            errors.push(
                format!("{path}.storage"),
                "storage extensions are not supported; keep data on disk with an exporter's sending_queue.storage",
            );
        }
        if let Some(b) = &cfg.batch {
            b.validate(
                cfg.sizer,
                cfg.queue_size,
                &format!("{path}.batch"),
                &mut errors,
            );
        }
        errors.into_result(Box::new(cfg) as Box<dyn ProcessorConfig>)
    }
}

impl ProcessorConfig for QueueBatchProcessorConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let batch = match &self.batch {
            Some(b) => b.batch_config(),
            None => QueueBatchSettings {
                enabled: Some(false),
                ..Default::default()
            }
            .batch_config(),
        };
        batch.build(ctx, signal, next)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::{Batch, ComponentId, ConsumeError, Payload};

    #[derive(Default)]
    struct Sink(Mutex<Vec<usize>>);
    #[async_trait::async_trait]
    impl Consumer for Sink {
        async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
            self.0.lock().unwrap().push(batch.item_count());
            Ok(())
        }
    }

    fn logs(n: usize) -> Batch {
        Batch::new(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    fn parse(v: serde_json::Value) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        QueueBatchFactory.parse(&v, "processors.queuebatch")
    }

    async fn run(config: serde_json::Value, sends: &[usize]) -> Vec<usize> {
        let cfg = parse(config).unwrap_or_else(|e| panic!("{e}"));
        let sink = Arc::new(Sink::default());
        let ctx = BuildContext::for_component(ComponentId::parse("queuebatch").unwrap());
        let stage = cfg.build(&ctx, Signal::Logs, sink.clone()).unwrap();
        stage.start().await.unwrap();
        let all = sends.iter().map(|n| stage.consume(logs(*n)));
        for r in futures_join(all).await {
            r.unwrap();
        }
        stage.shutdown().await;
        let got = sink.0.lock().unwrap().clone();
        got
    }

    /// Polls every future in one task, as concurrent senders (no extra dependency).
    async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut pinned: Vec<_> = futs.map(Box::pin).collect();
        let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
                if slot.is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => *slot = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(|o| o.unwrap()).collect()
    }

    #[tokio::test]
    async fn defaults_batch_and_the_collector_fields_map_onto_the_batcher() {
        // Defaults: batching on (min_size 8192): concurrent small sends become one batch.
        assert_eq!(run(serde_json::json!({}), &[2, 3, 4]).await, vec![9]);
        // min_size / max_size: flushed at 10, cut at 12.
        let got = run(
            serde_json::json!({"batch": {"min_size": 10, "max_size": 12, "flush_timeout": "1s"}}),
            &[5, 5, 5, 5, 5],
        )
        .await;
        assert_eq!(got.iter().sum::<usize>(), 25, "{got:?}");
        assert!(got.iter().all(|n| *n <= 12), "{got:?}");
        // batch switched off: every batch passes as it came.
        assert_eq!(
            run(serde_json::json!({"batch": {"enabled": false}}), &[2, 3]).await,
            vec![2, 3]
        );
    }

    #[test]
    fn every_problem_is_named() {
        let err = parse(serde_json::json!({
            "num_consumers": 0,
            "storage": "file_storage",
            "sizer": "items",
            "queue_size": 100,
            "batch": {"sizer": "bytes", "min_size": 10, "max_size": 5, "partition": {"metadata_keys": "tenant"}},
        }))
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "processors.queuebatch.num_consumers: must be positive\n\
             processors.queuebatch.storage: storage extensions are not supported; keep data on disk with an exporter's sending_queue.storage\n\
             processors.queuebatch.batch.sizer: the bytes sizer is not supported for batching yet; use items\n\
             processors.queuebatch.batch.max_size: max_size (5) must be greater or equal to min_size (10)\n\
             processors.queuebatch.batch.partition.metadata_keys: batching by metadata keys is not supported yet"
        );
        // The processor's own defaults (queue_size 10, sizer requests) with the batch
        // defaults load; an items queue smaller than min_size does not.
        assert!(parse(serde_json::json!({"batch": null})).is_ok());
        let err = parse(serde_json::json!({"sizer": "items", "batch": {}}))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "processors.queuebatch.batch.min_size: must be less than or equal to queue_size"
        );
    }
}
