//! What the OTLP exporters share: a [`Sender`] makes one attempt; [`Delivery`] puts a
//! sending queue and retries around it and counts what happens.
//!
//! ```yaml
//! exporters:
//!   otlp:
//!     endpoint: collector:4317
//!     retry_on_failure: { enabled: true, initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s }
//!     sending_queue: { enabled: true, num_consumers: 10, queue_size: 1000, sizer: requests }
//! ```
//!
//! A full queue never drops data: `consume` returns [`ConsumeError::Refused`] with a retry
//! hint and the receiver tells its client to come back later. Data is dropped only after a
//! permanent error or when `max_elapsed_time` runs out, with an error log and a count in
//! `weir_exporter_send_failed_items`.

mod queue;
mod retry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use weir_api::{Batch, Component, ConsumeError, Consumer, Counter, Signal, Telemetry};

pub use queue::{ExportQueue, Job, PushError, QueueSettings, Sizer};
pub use retry::{Backoff, RetrySettings};

use crate::SendError;

/// When a client whose data was refused by a full queue may try again.
pub const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What an upstream said about an accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Items the upstream rejected in a partial success (not retried).
    pub rejected_items: u64,
    /// The upstream's explanation of the partial success.
    pub message: String,
}

/// One attempt to deliver a batch upstream.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// Sends `batch` once.
    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError>;

    /// Why batches of `signal` can never be sent (no URL configured for it), if so. Checked
    /// before a batch is queued, so the sender hears of it at once.
    fn cannot_send(&self, _signal: Signal) -> Option<String> {
        None
    }
}

struct SignalCounters {
    sent: Counter,
    send_failed: Counter,
    enqueue_failed: Counter,
    retries: Counter,
}

struct DeliveryCore {
    exporter: String,
    sender: Arc<dyn Sender>,
    retry: RetrySettings,
    counters: [SignalCounters; 3],
}

fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Logs => 0,
        Signal::Traces => 1,
        Signal::Metrics => 2,
    }
}

impl DeliveryCore {
    fn counters(&self, signal: Signal) -> &SignalCounters {
        &self.counters[signal_index(signal)]
    }

    /// Sends with retries until delivered, a permanent error, or the retry time runs out.
    async fn deliver(&self, batch: &Batch) -> Result<(), SendError> {
        let signal = batch.signal();
        let items = batch.item_count() as u64;
        let counters = self.counters(signal);
        let mut backoff = Backoff::new(&self.retry);
        loop {
            let err = match self.sender.send(batch).await {
                Ok(delivered) => {
                    let rejected = delivered.rejected_items.min(items);
                    if delivered.rejected_items > 0 {
                        tracing::warn!(
                            exporter = %self.exporter, %signal, rejected = delivered.rejected_items,
                            message = %delivered.message,
                            "upstream accepted the request partially; rejected items are not retried"
                        );
                        counters.send_failed.inc_by(rejected);
                    }
                    counters.sent.inc_by(items - rejected);
                    return Ok(());
                }
                Err(e) => e,
            };
            if !err.is_retryable() {
                return Err(err);
            }
            match backoff.next_delay(err.retry_after()) {
                Some(delay) => {
                    tracing::warn!(
                        exporter = %self.exporter, %signal, error = %err,
                        retry_in = ?delay, "send failed; will retry"
                    );
                    counters.retries.inc();
                    tokio::time::sleep(delay).await;
                }
                None => return Err(err),
            }
        }
    }

    /// Logs and counts a batch that [`DeliveryCore::deliver`] gave up on. From the queue
    /// the data is gone; without a queue the caller still holds it (its client is told to
    /// retry, or that the data was rejected).
    fn report_failure(&self, batch: &Batch, err: &SendError, from_queue: bool) {
        let signal = batch.signal();
        let items = batch.item_count() as u64;
        self.counters(signal).send_failed.inc_by(items);
        let why = if err.is_retryable() {
            "retries exhausted (retry_on_failure)"
        } else {
            "permanent error"
        };
        if from_queue {
            tracing::error!(
                exporter = %self.exporter, %signal, dropped_items = items, error = %err,
                "{why}; dropping data"
            );
        } else {
            tracing::warn!(
                exporter = %self.exporter, %signal, items, error = %err,
                "{why}; handing the failure back to the sender"
            );
        }
    }
}

/// An exporter stage: a sending queue (optional) and retries around a [`Sender`].
pub struct Delivery {
    core: Arc<DeliveryCore>,
    queue: Option<Arc<ExportQueue>>,
    num_consumers: usize,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Delivery {
    /// Builds the stage for exporter `exporter` (its id), registering its metrics.
    pub fn new(
        exporter: String,
        sender: Arc<dyn Sender>,
        retry: RetrySettings,
        queue: QueueSettings,
        telemetry: &Telemetry,
    ) -> Self {
        let counters = [Signal::Logs, Signal::Traces, Signal::Metrics].map(|signal| {
            let labels = [
                ("exporter", exporter.clone()),
                ("signal", signal.as_str().to_string()),
            ];
            SignalCounters {
                sent: telemetry.counter(
                    "weir_exporter_sent_items",
                    "Items (log records, spans, data points) an exporter delivered upstream",
                    &labels,
                ),
                send_failed: telemetry.counter(
                    "weir_exporter_send_failed_items",
                    "Items an exporter dropped after a permanent error, exhausted retries or a partial success",
                    &labels,
                ),
                enqueue_failed: telemetry.counter(
                    "weir_exporter_enqueue_failed_items",
                    "Items refused because the sending queue was full (the sender was told to retry)",
                    &labels,
                ),
                retries: telemetry.counter(
                    "weir_exporter_retries",
                    "Send attempts that failed with a retryable error and were retried",
                    &labels,
                ),
            }
        });
        let num_consumers = queue.num_consumers;
        let queue = queue.enabled.then(|| {
            let labels = [("exporter", exporter.clone())];
            let size = telemetry.gauge(
                "weir_exporter_queue_size",
                "Room in use in the sending queue, in units of its sizer",
                &labels,
            );
            let q = ExportQueue::new(queue, size);
            telemetry
                .gauge(
                    "weir_exporter_queue_capacity",
                    "Capacity of the sending queue, in units of its sizer",
                    &labels,
                )
                .set(i64::try_from(q.capacity()).unwrap_or(i64::MAX));
            Arc::new(q)
        });
        Delivery {
            core: Arc::new(DeliveryCore {
                exporter,
                sender,
                retry,
                counters,
            }),
            queue,
            num_consumers,
            workers: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Consumer for Delivery {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if let Some(reason) = self.core.sender.cannot_send(batch.signal()) {
            self.core
                .counters(batch.signal())
                .send_failed
                .inc_by(batch.item_count() as u64);
            tracing::error!(exporter = %self.core.exporter, signal = %batch.signal(), "{reason}");
            return Err(ConsumeError::Rejected {
                component: self.core.exporter.clone(),
                reason,
            });
        }
        let Some(queue) = &self.queue else {
            // No queue: send now and let the caller's client retry what did not go through.
            return self.core.deliver(&batch).await.map_err(|e| {
                self.core.report_failure(&batch, &e, false);
                if e.is_retryable() {
                    ConsumeError::Refused {
                        component: self.core.exporter.clone(),
                        reason: e.to_string(),
                        retry_after: Some(e.retry_after().unwrap_or(QUEUE_FULL_RETRY_AFTER)),
                    }
                } else {
                    ConsumeError::Rejected {
                        component: self.core.exporter.clone(),
                        reason: e.to_string(),
                    }
                }
            });
        };
        match queue.push(batch).await {
            Ok(()) => Ok(()),
            Err(PushError::Full(batch)) => {
                self.core
                    .counters(batch.signal())
                    .enqueue_failed
                    .inc_by(batch.item_count() as u64);
                Err(ConsumeError::Refused {
                    component: self.core.exporter.clone(),
                    reason: format!(
                        "sending queue is full ({} {})",
                        queue.capacity(),
                        queue.sizer().as_str()
                    ),
                    retry_after: Some(QUEUE_FULL_RETRY_AFTER),
                })
            }
            Err(PushError::Closed(_)) => Err(ConsumeError::ShuttingDown),
        }
    }
}

#[async_trait]
impl Component for Delivery {
    async fn start(&self) -> Result<(), weir_api::StartError> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..self.num_consumers {
            let (queue, core) = (queue.clone(), self.core.clone());
            workers.push(tokio::spawn(async move {
                while let Some(job) = queue.pop().await {
                    if let Err(e) = core.deliver(&job.batch).await {
                        core.report_failure(&job.batch, &e, true);
                    }
                    // Dropping the job frees its room in the queue.
                }
            }));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let Some(queue) = &self.queue else {
            return;
        };
        queue.close();
        let held = queue.in_use();
        if held > 0 {
            tracing::info!(
                exporter = %self.core.exporter, queued = held, sizer = queue.sizer().as_str(),
                "draining the sending queue before shutdown"
            );
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in workers {
            let _ = w.await;
        }
    }
}
