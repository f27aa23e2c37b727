//! Consumers (anything a batch can be handed to) and the fail-open processor stage.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{Batch, Component, ComponentId, Counter, Telemetry};

/// Why a consumer did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Not now: queues are full or memory is short. The sender should retry later; receivers
    /// map this to HTTP 429/503 with Retry-After or gRPC RESOURCE_EXHAUSTED/UNAVAILABLE.
    #[error("{component}: cannot accept data now: {reason}")]
    Refused {
        /// Which component refused.
        component: String,
        /// Why, for the client and the logs.
        reason: String,
        /// When the sender may try again.
        retry_after: Option<Duration>,
    },
    /// The data itself is unacceptable and retrying will not help (HTTP 400 / gRPC
    /// INVALID_ARGUMENT).
    #[error("{component}: rejected data: {reason}")]
    Rejected {
        /// Which component rejected.
        component: String,
        /// Why.
        reason: String,
    },
    /// The pipeline is shutting down.
    #[error("pipeline is shutting down")]
    ShuttingDown,
}

impl ConsumeError {
    /// Whether a sender should retry the same data.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ConsumeError::Rejected { .. })
    }
}

/// Anything a batch can be handed to: a processor stage, a fan-out, an exporter.
///
/// `consume` returns once the batch is accepted (queued or persisted) downstream; an `Err`
/// means the data was not accepted and the caller still owns the decision (tell the client to
/// retry).
#[async_trait]
pub trait Consumer: Send + Sync {
    /// Hands one batch on.
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError>;
}

/// An error inside a processor while handling one batch. The engine fails open on it: the
/// batch continues as it was before the processor ran.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProcessError(pub Box<dyn std::error::Error + Send + Sync>);

impl ProcessError {
    /// Wraps any error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ProcessError(Box::new(e))
    }
}

/// A synchronous, in-place batch transform: the common kind of processor (policy, filter,
/// sampler, wasm, metadata).
///
/// Contract: on `Err` (or a panic) the processor must not have changed the batch, so compute
/// first and apply last; the stage then passes the batch on unchanged (fail open). Dropping
/// every item is `Ok` with an empty batch; the stage then stops it.
pub trait Processor: Send + Sync {
    /// Processes one batch in place.
    fn process(&self, batch: &mut Batch) -> Result<(), ProcessError>;
}

/// Runs a [`Processor`] as a pipeline stage with the fail-open guard: errors and panics are
/// counted and logged, the batch continues.
pub struct ProcessorStage {
    id: ComponentId,
    processor: Arc<dyn Processor>,
    next: Arc<dyn Consumer>,
    failures: Counter,
    dropped: Counter,
}

impl ProcessorStage {
    /// Wraps `processor` in front of `next`. Registers the processor's failure and drop
    /// counters in `telemetry`.
    pub fn new(
        id: ComponentId,
        pipeline: &str,
        processor: Arc<dyn Processor>,
        next: Arc<dyn Consumer>,
        telemetry: &Telemetry,
    ) -> Self {
        let labels = [
            ("processor", id.to_string()),
            ("pipeline", pipeline.to_string()),
        ];
        let failures = telemetry.counter(
            "weir_processor_failures",
            "Batches a processor failed on and passed on unprocessed (fail open)",
            &labels,
        );
        let dropped = telemetry.counter(
            "weir_processor_dropped_items",
            "Items (log records, spans, data points) a processor dropped on purpose",
            &labels,
        );
        ProcessorStage {
            id,
            processor,
            next,
            failures,
            dropped,
        }
    }
}

#[async_trait]
impl Consumer for ProcessorStage {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let before = batch.item_count();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.processor.process(&mut batch)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.failures.inc();
                tracing::warn!(processor = %self.id, error = %e, "processor failed; batch passed on unprocessed");
            }
            Err(_) => {
                self.failures.inc();
                tracing::error!(processor = %self.id, "processor panicked; batch passed on unprocessed");
            }
        }
        let after = batch.item_count();
        if after < before {
            self.dropped.inc_by((before - after) as u64);
        }
        if after == 0 {
            return Ok(());
        }
        self.next.consume(batch).await
    }
}

// A synchronous processor holds no tasks or buffers: nothing to start, nothing to flush.
impl Component for ProcessorStage {}

/// Hands each batch to several consumers (a receiver feeding several pipelines, or a
/// pipeline feeding several exporters). Clones only when there is more than one.
pub struct FanOut {
    consumers: Vec<Arc<dyn Consumer>>,
}

impl FanOut {
    /// A fan-out over `consumers`.
    pub fn new(consumers: Vec<Arc<dyn Consumer>>) -> Self {
        FanOut { consumers }
    }

    /// The one consumer of `consumers` itself, or a fan-out over several.
    pub fn of(mut consumers: Vec<Arc<dyn Consumer>>) -> Arc<dyn Consumer> {
        if consumers.len() == 1 {
            consumers.remove(0)
        } else {
            Arc::new(FanOut::new(consumers))
        }
    }
}

#[async_trait]
impl Consumer for FanOut {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        // Every consumer is offered the batch, even when an earlier one refused, so one slow
        // exporter does not starve the others; the first refusal (in consumer order) is
        // reported so the client retries. (A retry can duplicate data at the consumers that
        // accepted; the collector's fan-out behaves the same way.)
        //
        // The consumers are offered the batch together, not one after the other: each runs
        // what it does at once (its processors read the batch now, while its bytes are still
        // in the CPU's caches from the receiver's check) and one that waits (a `batch`
        // processor holds a request until the flush that exports it) does not hold back the
        // next one until that flush. Answered when every consumer has answered.
        let n = self.consumers.len();
        let mut batches: Vec<Batch> = Vec::with_capacity(n);
        for _ in 1..n {
            batches.push(batch.clone());
        }
        batches.push(batch);
        let mut pending: Vec<_> = self
            .consumers
            .iter()
            .zip(batches)
            .map(|(c, b)| Some(c.consume(b)))
            .collect();
        let mut results: Vec<Option<Result<(), ConsumeError>>> = (0..n).map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut waiting = false;
            for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(r) => {
                            *result = Some(r);
                            *slot = None;
                        }
                        std::task::Poll::Pending => waiting = true,
                    }
                }
            }
            if waiting {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        results
            .into_iter()
            .flatten()
            .find(Result::is_err)
            .unwrap_or(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Payload, Signal};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Sink(Mutex<Vec<Batch>>);
    #[async_trait]
    impl Consumer for Sink {
        async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }

    struct Failing;
    impl Processor for Failing {
        fn process(&self, _: &mut Batch) -> Result<(), ProcessError> {
            Err(ProcessError::new(std::io::Error::other("boom")))
        }
    }
    struct Panicking;
    impl Processor for Panicking {
        fn process(&self, _: &mut Batch) -> Result<(), ProcessError> {
            panic!("guest went wrong")
        }
    }
    struct DropAll;
    impl Processor for DropAll {
        fn process(&self, b: &mut Batch) -> Result<(), ProcessError> {
            let mut p = b.payload_mut();
            if let Payload::Logs(r) = &mut p {
                r.resource_logs.clear();
            }
            Ok(())
        }
    }

    fn batch(n: usize) -> Batch {
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

    fn stage(p: Arc<dyn Processor>, sink: Arc<Sink>, t: &Telemetry) -> ProcessorStage {
        ProcessorStage::new(ComponentId::parse("x/y").unwrap(), "logs", p, sink, t)
    }

    #[tokio::test]
    async fn failing_and_panicking_processors_fail_open() {
        let t = Telemetry::new();
        let sink = Arc::new(Sink::default());
        stage(Arc::new(Failing), sink.clone(), &t)
            .consume(batch(4))
            .await
            .unwrap();
        stage(Arc::new(Panicking), sink.clone(), &t)
            .consume(batch(5))
            .await
            .unwrap();
        let got: Vec<usize> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.item_count())
            .collect();
        assert_eq!(got, vec![4, 5]);
        let text = t.encode();
        assert!(
            text.contains("weir_processor_failures_total{processor=\"x/y\",pipeline=\"logs\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn emptied_batch_stops_and_drops_are_counted() {
        let t = Telemetry::new();
        let sink = Arc::new(Sink::default());
        stage(Arc::new(DropAll), sink.clone(), &t)
            .consume(batch(7))
            .await
            .unwrap();
        assert!(sink.0.lock().unwrap().is_empty());
        assert!(t
            .encode()
            .contains("weir_processor_dropped_items_total{processor=\"x/y\",pipeline=\"logs\"} 7"));
    }

    /// A consumer that holds each batch until it is released (as a `batch` processor holds
    /// a request until its flush), then refuses or takes it.
    struct Held {
        release: tokio::sync::Notify,
        refuse: bool,
    }
    #[async_trait]
    impl Consumer for Held {
        async fn consume(&self, _: Batch) -> Result<(), ConsumeError> {
            self.release.notified().await;
            if self.refuse {
                return Err(ConsumeError::Refused {
                    component: "held".into(),
                    reason: "full".into(),
                    retry_after: None,
                });
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn fanout_offers_the_batch_to_all_at_once_and_reports_the_first_refusal() {
        let held = Arc::new(Held {
            release: tokio::sync::Notify::new(),
            refuse: true,
        });
        let after = Arc::new(Sink::default());
        let f = Arc::new(FanOut::new(vec![
            held.clone(),
            after.clone(),
            Arc::new(Failing2),
        ]));
        let task = tokio::spawn({
            let f = f.clone();
            async move { f.consume(batch(3)).await }
        });
        // The consumer after the held one has the batch while the first still holds it.
        for _ in 0..100 {
            if !after.0.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(after.0.lock().unwrap()[0].item_count(), 3);
        assert!(!task.is_finished(), "answered only when every consumer has");
        held.release.notify_one();
        let err = task.await.unwrap().unwrap_err().to_string();
        assert!(err.starts_with("held: cannot accept"), "{err}");
    }

    /// Refuses every batch with its own name.
    struct Failing2;
    #[async_trait]
    impl Consumer for Failing2 {
        async fn consume(&self, _: Batch) -> Result<(), ConsumeError> {
            Err(ConsumeError::Refused {
                component: "second".into(),
                reason: "full".into(),
                retry_after: None,
            })
        }
    }

    #[tokio::test]
    async fn fanout_delivers_to_all() {
        let a = Arc::new(Sink::default());
        let b = Arc::new(Sink::default());
        let f = FanOut::new(vec![a.clone(), b.clone()]);
        f.consume(batch(2)).await.unwrap();
        assert_eq!(a.0.lock().unwrap().len(), 1);
        assert_eq!(b.0.lock().unwrap()[0].item_count(), 2);
        assert_eq!(Signal::Logs, b.0.lock().unwrap()[0].signal());
    }
}
