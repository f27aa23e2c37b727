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
//! `sending_queue.batch: {flush_timeout: 200ms, min_size: 8192, max_size: 0}` (the
//! collector's queue batching; present, even empty, turns it on) puts a batcher per signal
//! in front of the queue (see `queue_batch`).
//!
//! With `sending_queue.storage` the queue is also written ahead to disk (see [`wal`] for
//! the file format), so data accepted while the upstream is down survives a crash and a
//! restart. With the Collector's form, `storage: file_storage/x`, there is one queue per
//! signal as the Collector keeps one storage client per exporter and signal: directories
//! `exporter_<type>_<name>_<signal>` in the extension's directory, each with its own disk
//! budget; an exporter in a logs and a traces pipeline keeps the two apart. (A queue an
//! earlier version kept for all signals, `exporter_<type>_<name>`, is moved into them at
//! start.) The inline form keeps one queue for all signals in its directory:
//!
//! ```yaml
//! exporters:
//!   otlp:
//!     endpoint: collector:4317
//!     sending_queue:
//!       storage:
//!         directory: /var/lib/weir/queue/otlp   # required; one exporter per directory
//!         fsync: batch                          # always | batch (default) | never
//!         max_size_mib: 1024                    # disk budget (default 1024)
//! ```
//!
//! `consume` returns once the batch is written (and fsynced, with `fsync: always`); room in
//! the in-memory queue is taken first, so a batch refused for a full queue is never written.
//! A batch is acknowledged in the log once sent, or once given up on (a permanent error, or
//! an opt-in `retry_on_failure.max_elapsed_time`: with storage, retries go on until the
//! batch is delivered unless a maximum age is configured). At start every unacknowledged
//! batch is read into memory (at most `max_size_mib` of them) and queued again, beyond
//! `queue_size` if need be. Delivery is at least once: a batch whose send succeeded just
//! before a crash, before its acknowledgement was written, is sent again. When the disk
//! budget is used up, or the disk itself is full (ENOSPC, or EFBIG under a file-size limit,
//! whose SIGXFSZ is ignored), `consume` refuses with a retry hint, as a full queue, and
//! accepts again once there is room. At shutdown the queue is given 2 s to drain; what is
//! left stays on disk for the next start. `weir_exporter_persisted_bytes` counts the bytes
//! of the log's segment files; `weir_exporter_queue_lost_records` and
//! `weir_exporter_queue_lost_bytes` count what damaged queue files cost at start.
//!
//! A full queue never drops data: `consume` returns [`ConsumeError::Refused`] with a retry
//! hint and the receiver tells its client to come back later. Data is dropped only after a
//! permanent error or when `max_elapsed_time` runs out, with an error log and a count in
//! `weir_exporter_send_failed_items` (and `weir_exporter_retry_expired_items` for the
//! latter).

mod disk_queue;
mod queue;
mod queue_batch;
mod retry;
pub mod wal;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_api::{
    Batch, Component, ComponentId, ConsumeError, Consumer, Counter, Gauge, PerSignal, Signal,
    StartError, Telemetry,
};

use disk_queue::{
    blocking, ignore_sigxfsz, migrate_shared_queue, Wals, DISK_QUEUE_DRAIN, FSYNC_BATCH_INTERVAL,
    SIGNALS,
};
pub use queue::{
    DiskQueueSettings, ExportQueue, Job, PushError, QueueBatchPartition, QueueBatchSettings,
    QueueSettings, Refusal, Reserved, Sizer, Storage,
};
pub use queue_batch::with_queue_batch;
pub use retry::{Backoff, RetrySettings, DEFAULT_MAX_ELAPSED_TIME};
use wal::{FsyncPolicy, Wal};

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
    expired: Counter,
    enqueue_failed: Counter,
    retries: Counter,
}

struct DeliveryCore {
    exporter: String,
    sender: Arc<dyn Sender>,
    retry: RetrySettings,
    counters: PerSignal<SignalCounters>,
}

impl DeliveryCore {
    fn counters(&self, signal: Signal) -> &SignalCounters {
        &self.counters[signal]
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
        if err.is_retryable() {
            self.counters(signal).expired.inc_by(items);
        }
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
    id: ComponentId,
    disk: Option<DiskQueueSettings>,
    /// `sending_queue.storage: file_storage/x`: the extension, resolved by `start`.
    disk_extension: Option<String>,
    /// The disk queue(s), set up by `start`.
    wals: OnceLock<Arc<Wals>>,
    persisted_bytes: Gauge,
    lost_records: Counter,
    lost_bytes: Counter,
    /// Set at shutdown to make consumer tasks leave what they hold on disk.
    stop: watch::Sender<bool>,
}

impl Delivery {
    /// Builds the stage for exporter `exporter` (its id), registering its metrics.
    pub fn new(
        id: &ComponentId,
        sender: Arc<dyn Sender>,
        mut retry: RetrySettings,
        queue: QueueSettings,
        telemetry: &Telemetry,
    ) -> Self {
        let exporter = id.to_string();
        let counters = PerSignal::from_fn(|signal| {
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
                expired: telemetry.counter(
                    "weir_exporter_retry_expired_items",
                    "Items dropped because retry_on_failure.max_elapsed_time ran out",
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
        let disk = match (&queue.storage, queue.enabled) {
            (Some(Storage::Disk(d)), true) => Some(d.clone()),
            _ => None,
        };
        let disk_extension = match (&queue.storage, queue.enabled) {
            (Some(Storage::Extension(name)), true) => Some(name.clone()),
            _ => None,
        };
        if (disk.is_some() || disk_extension.is_some()) && retry.max_elapsed_time.is_none() {
            // Stored data is kept until delivered; a maximum age is opt-in.
            retry.max_elapsed_time = Some(Duration::ZERO);
        }
        let exporter_label = [("exporter", exporter.clone())];
        let lost_records = telemetry.counter(
            "weir_exporter_queue_lost_records",
            "Unacknowledged records of the disk queue found damaged at start and skipped",
            &exporter_label,
        );
        let lost_bytes = telemetry.counter(
            "weir_exporter_queue_lost_bytes",
            "Bytes of the disk queue's files found damaged at start and skipped",
            &exporter_label,
        );
        let persisted_bytes = telemetry.gauge(
            "weir_exporter_persisted_bytes",
            "Bytes of the sending queue's write-ahead log on disk (sending_queue.storage)",
            &[("exporter", exporter.clone())],
        );
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
            id: id.clone(),
            disk,
            disk_extension,
            wals: OnceLock::new(),
            persisted_bytes,
            lost_records,
            lost_bytes,
            stop: watch::channel(false).0,
        }
    }

    fn refused(&self, reason: String) -> ConsumeError {
        ConsumeError::Refused {
            component: self.core.exporter.clone(),
            reason,
            retry_after: Some(QUEUE_FULL_RETRY_AFTER),
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
        if self.queue.is_some() && (self.disk.is_some() || self.disk_extension.is_some()) {
            let Some(queue) = &self.queue else {
                return Err(self.refused("no queue".to_string()));
            };
            let Some(wals) = self.wals.get() else {
                return Err(self.refused("the disk queue is not open yet".to_string()));
            };
            let wal = self.wal_for(queue, wals, batch.signal()).await?;
            return self.consume_persisted(queue, &wal, batch).await;
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
        let wals = match (&self.disk, &self.disk_extension) {
            (Some(d), _) => Some(Wals {
                shared: Some(self.open_disk_queue(queue, d).await?),
                per_signal: Default::default(),
                dirs: None,
            }),
            (None, Some(ext)) => {
                let (dirs, old) = self.extension_disks(ext)?;
                // A name ending in a signal may be another exporter's per-signal queue
                // (`otlp/x`'s `exporter_otlp_x_logs` is also the old name of `otlp/x_logs`).
                let ambiguous = SIGNALS
                    .iter()
                    .any(|s| old.to_string_lossy().ends_with(&format!("_{}", s.as_str())));
                if old.is_dir() && ambiguous {
                    tracing::warn!(exporter = %self.core.exporter, directory = %old.display(), "a disk queue of an earlier version may be in this directory; its name is also that of a per-signal queue, so it is left alone (move its records by hand if it is this exporter's)");
                }
                if old.is_dir() && !ambiguous {
                    ignore_sigxfsz();
                    let (old2, dirs2) = (old.clone(), dirs.clone());
                    let moved =
                        tokio::task::spawn_blocking(move || migrate_shared_queue(&old2, &dirs2))
                            .await
                            .map_err(|e| {
                                StartError::new(&self.id, "cannot move the disk queue", e)
                            })?
                            .map_err(|e| {
                                StartError::new(
                                    &self.id,
                                    format!(
                                        "cannot move the disk queue {} into per-signal queues",
                                        old.display()
                                    ),
                                    e,
                                )
                            })?;
                    tracing::info!(exporter = %self.core.exporter, batches = moved, from = %old.display(), "moved the disk queue of an earlier version into one queue per signal");
                }
                let w = Wals {
                    shared: None,
                    per_signal: Default::default(),
                    dirs: Some(dirs.clone()),
                };
                for (i, d) in dirs.iter().enumerate() {
                    if d.directory.is_dir() {
                        let wal = self.open_disk_queue(queue, d).await?;
                        let _ = w.per_signal[i].set(wal);
                    }
                }
                Some(w)
            }
            (None, None) => None,
        };
        let fsync_batch = match (&self.disk, &wals) {
            (Some(d), _) => d.fsync == FsyncPolicy::Batch,
            (None, Some(w)) => w
                .dirs
                .as_ref()
                .is_some_and(|d| d[0].fsync == FsyncPolicy::Batch),
            _ => false,
        };
        let wals = wals.map(Arc::new);
        if let Some(w) = &wals {
            let _ = self.wals.set(w.clone());
            self.update_persisted();
        }
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..self.num_consumers {
            let (queue, core, wals) = (queue.clone(), self.core.clone(), wals.clone());
            let (mut stop, persisted) = (self.stop.subscribe(), self.persisted_bytes.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let job = tokio::select! {
                        job = queue.pop() => job,
                        _ = stop.wait_for(|s| *s) => None,
                    };
                    let Some(job) = job else { break };
                    let sent = tokio::select! {
                        sent = core.deliver(&job.batch) => sent,
                        // Shutting down: the batch stays in the disk queue for the next start.
                        _ = stop.wait_for(|s| *s) => break,
                    };
                    if let Err(e) = sent {
                        core.report_failure(&job.batch, &e, true);
                    }
                    let wal = wals.as_ref().and_then(|w| w.get(job.batch.signal()));
                    if let (Some(wal), Some(seq)) = (wal, job.seq) {
                        if let Err(e) = blocking(wal, move |w| w.ack(seq)).await {
                            tracing::error!(exporter = %core.exporter, error = %e, "cannot acknowledge a sent batch in the disk queue; it will be sent again after a restart");
                        }
                    }
                    if let Some(w) = &wals {
                        persisted.set(w.persisted_bytes());
                    }
                    // Dropping the job frees its room in the queue.
                }
            }));
        }
        if let Some(wals) = wals.filter(|_| fsync_batch) {
            let mut stop = self.stop.subscribe();
            let exporter = self.core.exporter.clone();
            workers.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(FSYNC_BATCH_INTERVAL);
                loop {
                    let stopping = tokio::select! {
                        _ = tick.tick() => false,
                        _ = stop.wait_for(|s| *s) => true,
                    };
                    let open: Vec<Arc<Wal>> = wals.open().cloned().collect();
                    for wal in open {
                        if let Err(e) = blocking(&wal, |w| w.sync()).await {
                            tracing::warn!(exporter = %exporter, error = %e, "disk queue fsync failed");
                        }
                    }
                    if stopping {
                        break;
                    }
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
        if let Some(wal) = self.wals.get() {
            // Unacknowledged records, replayed ones included (they hold no room in the
            // in-memory queue's count).
            let deadline = tokio::time::Instant::now() + DISK_QUEUE_DRAIN;
            while wal.pending() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if wal.pending() > 0 {
                tracing::info!(
                    exporter = %self.core.exporter, batches = wal.pending(),
                    "leaving the rest of the sending queue on disk for the next start"
                );
            }
            self.stop.send_replace(true);
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in workers {
            let _ = w.await;
        }
    }
}

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
