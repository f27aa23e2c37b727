//! The `batch` processor: groups batches into larger ones by size or time.
//!
//! ```yaml
//! processors:
//!   batch:
//!     send_batch_size: 8192      # flush when this many items are pending (0: only on timeout)
//!     send_batch_max_size: 0     # cut flushed batches to at most this many items (0: no limit)
//!     timeout: 200ms             # flush pending items this long after the first arrived
//! ```
//!
//! Items are log records, spans or metric data points. Batches are merged by concatenating
//! their resource lists.
//!
//! Acknowledgements pass through: `consume` returns only once every flush holding some of
//! the caller's items was accepted by the next stage (with a disk queue: written to it), and
//! returns the next stage's refusal or rejection if one of them was not. So the processor
//! never answers OK for data that a crash could lose, and a refused flush is refused to
//! the senders of its items (who retry) rather than kept and retried here. The cost is
//! latency. A flush happens when `send_batch_size` items are pending, when the oldest has
//! waited `timeout`, or once no new item arrived for 5 ms (as waiting senders send nothing
//! more, waiting longer only delays them): a sender waits at most `timeout` plus the next
//! stage's time, and about 5 ms when traffic is sparse. Unlike the collector's processor,
//! nothing is lost on a refusal or a crash. The processor refuses new data once ten times
//! `send_batch_size` items are pending or being flushed, which bounds what waiting senders
//! hold. Shutdown flushes everything once.

mod split;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage, StartError,
};

pub use split::{merge, split_front};

/// `processors.batch` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Items that trigger a flush; 0 flushes only on timeout. Default: 8192.
    #[serde(default = "default_send_batch_size")]
    pub send_batch_size: usize,
    /// Upper bound of items in one flushed batch; 0 means no limit. Default: 0.
    #[serde(default)]
    pub send_batch_max_size: usize,
    /// Longest time an item waits before a flush; 0 sends every batch at once. Default: 200ms.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Batch per client metadata value. Default: none. Not supported yet: must stay empty.
    #[serde(default)]
    pub metadata_keys: Vec<String>,
    /// Limit of distinct metadata combinations. Default: 1000. Only meaningful with
    /// metadata_keys.
    #[serde(default = "default_cardinality")]
    pub metadata_cardinality_limit: u32,
}

fn default_send_batch_size() -> usize {
    8192
}
fn default_timeout() -> Duration {
    Duration::from_millis(200)
}
fn default_cardinality() -> u32 {
    1000
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: default_send_batch_size(),
            send_batch_max_size: 0,
            timeout: default_timeout(),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: default_cardinality(),
        }
    }
}

/// Factory of the `batch` processor.
pub struct BatchFactory;

impl ProcessorFactory for BatchFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }
    fn parse(&self, config: &Value, path: &str) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let cfg: BatchConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.send_batch_max_size > 0 && cfg.send_batch_max_size < cfg.send_batch_size {
            errors.push(
                format!("{path}.send_batch_max_size"),
                format!(
                    "send_batch_max_size ({}) must be 0 or at least send_batch_size ({})",
                    cfg.send_batch_max_size, cfg.send_batch_size
                ),
            );
        }
        if !cfg.metadata_keys.is_empty() {
            errors.push(
                format!("{path}.metadata_keys"),
                "batching by metadata_keys is not supported yet",
            );
        }
        errors.into_result(Box::new(cfg) as Box<dyn ProcessorConfig>)
    }
}

impl ProcessorConfig for BatchConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let labels = [
            ("processor", ctx.id.to_string()),
            ("pipeline", ctx.pipeline.clone().unwrap_or_default()),
        ];
        let base = if self.send_batch_size > 0 {
            self.send_batch_size
        } else {
            default_send_batch_size()
        };
        Ok(Arc::new(BatchStage {
            shared: Arc::new(Shared {
                component: ctx.id.to_string(),
                config: self.clone(),
                signal,
                next,
                pending: Mutex::new(Pending::default()),
                hold_limit: base.saturating_mul(10).max(self.send_batch_max_size),
                in_flight: AtomicUsize::new(0),
                wake: Notify::new(),
                stop: Notify::new(),
                stopping: AtomicBool::new(false),
                ready: ctx.ready.clone(),
                was_ready: AtomicBool::new(false),
                failed: ctx.telemetry.counter(
                    "weir_batch_send_refused_items",
                    "Items of flushes the next stage refused; their senders were told to retry",
                    &labels,
                ),
                refused: ctx.telemetry.counter(
                    "weir_batch_refused_items",
                    "Items refused because ten times send_batch_size items were pending",
                    &labels,
                ),
                rejected: ctx.telemetry.counter(
                    "weir_batch_rejected_items",
                    "Items the next stage rejected as invalid (not retryable)",
                    &labels,
                ),
            }),
            timer: Mutex::new(None),
        }))
    }
}

/// A flush also happens once no new item arrived for this long (or `timeout`, if shorter).
const IDLE_FLUSH: Duration = Duration::from_millis(5);

/// Counts items of a flush as in flight until it is done with.
struct InFlight<'a>(&'a AtomicUsize, usize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::SeqCst);
    }
}

/// How often the timer looks for the start of a shutdown while items are pending.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// A sender waiting for the fate of its items: told once every flush holding some of them
/// is done, by the drop of the last reference (each flush and pending remainder holds one).
struct Waiter {
    tx: Mutex<Option<oneshot::Sender<Result<(), ConsumeError>>>>,
    error: Mutex<Option<ConsumeError>>,
}

impl Waiter {
    fn new() -> (Arc<Waiter>, oneshot::Receiver<Result<(), ConsumeError>>) {
        let (tx, rx) = oneshot::channel();
        let w = Waiter {
            tx: Mutex::new(Some(tx)),
            error: Mutex::new(None),
        };
        (Arc::new(w), rx)
    }

    /// Records that a flush with some of this sender's items failed (the first error wins).
    fn fail(&self, e: &ConsumeError) {
        let mut error = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if error.is_none() {
            *error = Some(copy_error(e));
        }
    }
}

impl Waiter {
    fn has_failed(&self) -> bool {
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let error = self
            .error
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let tx = self.tx.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            // The sender may have gone (its request cancelled); nothing to tell then.
            let _ = tx.send(error.map_or(Ok(()), Err));
        }
    }
}

fn copy_error(e: &ConsumeError) -> ConsumeError {
    match e {
        ConsumeError::Refused {
            component,
            reason,
            retry_after,
        } => ConsumeError::Refused {
            component: component.clone(),
            reason: reason.clone(),
            retry_after: *retry_after,
        },
        ConsumeError::Rejected { component, reason } => ConsumeError::Rejected {
            component: component.clone(),
            reason: reason.clone(),
        },
        ConsumeError::ShuttingDown => ConsumeError::ShuttingDown,
    }
}

/// Pending items: a batch and the senders waiting for it.
type Entry = (Batch, Vec<Arc<Waiter>>);

#[derive(Default)]
struct Pending {
    entries: Vec<Entry>,
    items: usize,
    /// When the oldest pending item arrived.
    since: Option<Instant>,
    /// When the newest pending item arrived.
    last: Option<Instant>,
}

struct Shared {
    component: String,
    config: BatchConfig,
    signal: Signal,
    next: Arc<dyn Consumer>,
    pending: Mutex<Pending>,
    hold_limit: usize,
    /// Items taken for a flush whose senders are not answered yet.
    in_flight: AtomicUsize,
    wake: Notify,
    stop: Notify,
    stopping: AtomicBool,
    /// The service's readiness; false again once shutdown begins.
    ready: Arc<AtomicBool>,
    was_ready: AtomicBool,
    failed: Counter,
    refused: Counter,
    rejected: Counter,
}

/// The running processor for one pipeline.
pub struct BatchStage {
    shared: Arc<Shared>,
    timer: Mutex<Option<JoinHandle<()>>>,
}

/// What to take out of the pending items.
enum Take {
    /// Full batches while at least send_batch_size items are pending.
    BySize,
    /// Everything.
    All,
}

/// The waiters of entries (with their item ranges) that overlap items `from..to`.
fn waiters_in(
    ranges: &[(usize, usize, Vec<Arc<Waiter>>)],
    from: usize,
    to: usize,
) -> Vec<Arc<Waiter>> {
    let mut out: Vec<Arc<Waiter>> = Vec::new();
    for (start, end, ws) in ranges {
        if *start < to && from < *end {
            for w in ws {
                if !out.iter().any(|o| Arc::ptr_eq(o, w)) {
                    out.push(w.clone());
                }
            }
        }
    }
    out
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the batches to send now, each cut to send_batch_max_size, with the senders
    /// whose items each holds.
    fn take(&self, how: Take) -> Vec<Entry> {
        let mut p = self.lock();
        let size = self.config.send_batch_size;
        let max = self.config.send_batch_max_size;
        let ready = match how {
            Take::All => p.items > 0,
            Take::BySize => size > 0 && p.items >= size,
        };
        if !ready {
            return Vec::new();
        }
        let entries = std::mem::take(&mut p.entries);
        let mut ranges = Vec::with_capacity(entries.len());
        let mut batches = Vec::with_capacity(entries.len());
        let mut at = 0;
        for (batch, waiters) in entries {
            let n = batch.item_count();
            ranges.push((at, at + n, waiters));
            at += n;
            batches.push(batch);
        }
        let Some(mut merged) = merge(batches) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut left = p.items;
        let mut done = 0;
        loop {
            let by_size_done = matches!(how, Take::BySize) && left < size;
            if left == 0 || by_size_done {
                break;
            }
            let n = if max > 0 { max.min(left) } else { left };
            out.push((
                split_front(&mut merged, n),
                waiters_in(&ranges, done, done + n),
            ));
            left -= n;
            done += n;
        }
        self.in_flight.fetch_add(p.items - left, Ordering::SeqCst);
        p.items = left;
        if left > 0 {
            p.entries
                .push((merged, waiters_in(&ranges, done, done + left)));
        } else {
            p.since = None;
            p.last = None;
        }
        out
    }

    /// Sends batches in order and tells their senders how it went. After a retryable
    /// refusal the rest are refused too without being tried: their senders retry.
    async fn send(&self, batches: Vec<Entry>) {
        let mut refusal: Option<ConsumeError> = None;
        for (b, waiters) in batches {
            let items = b.item_count() as u64;
            let _done = InFlight(&self.in_flight, b.item_count());
            if let Some(e) = &refusal {
                self.failed.inc_by(items);
                waiters.iter().for_each(|w| w.fail(e));
                continue;
            }
            if !waiters.is_empty() && waiters.iter().all(|w| w.has_failed()) {
                // Every sender of these items was already refused and sends them again.
                self.failed.inc_by(items);
                continue;
            }
            match self.next.consume(b).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {
                    self.failed.inc_by(items);
                    tracing::warn!(processor = %self.component, error = %e, items, "next stage refused a batch; its senders are told to retry");
                    waiters.iter().for_each(|w| w.fail(&e));
                    refusal = Some(e);
                }
                Err(e) => {
                    self.rejected.inc_by(items);
                    tracing::error!(processor = %self.component, error = %e, items, "next stage rejected a batch as invalid");
                    waiters.iter().for_each(|w| w.fail(&e));
                }
            }
            // Dropping `waiters` here tells senders whose items were all in this batch.
        }
    }

    /// Whether the service was up and is now shutting down (its receivers stop first and
    /// wait for the calls in flight, which wait for their flush here).
    fn draining(&self) -> bool {
        let ready = self.ready.load(Ordering::SeqCst);
        if ready {
            self.was_ready.store(true, Ordering::SeqCst);
        }
        !ready && self.was_ready.load(Ordering::SeqCst)
    }

    async fn run_timer(self: Arc<Self>) {
        let timeout = self.config.timeout;
        loop {
            let since = self.lock().since;
            match since {
                None => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = self.stop.notified() => return,
                    }
                }
                Some(t) => {
                    // Flush on the timeout, or once nothing arrived for a moment: the
                    // senders are waiting for their answer, so they send nothing more.
                    // Wake at least every 50 ms to see whether the service began to shut
                    // down: senders wait for their flush, so it must not wait either.
                    let idle = timeout.min(IDLE_FLUSH);
                    let last = self.lock().last.unwrap_or(t);
                    let wake_at = (t + timeout)
                        .min(last + idle)
                        .min(Instant::now() + DRAIN_POLL);
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake_at) => {
                            let draining = self.draining();
                            let now = Instant::now();
                            let due = {
                                let p = self.lock();
                                p.since.is_some_and(|s| s + timeout <= now)
                                    || p.last.is_some_and(|l| l + idle <= now)
                            };
                            if due || draining {
                                let batches = self.take(Take::All);
                                self.send(batches).await;
                            }
                        }
                        _ = self.stop.notified() => return,
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for BatchStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let s = &self.shared;
        let items = batch.item_count();
        if items == 0 {
            return Ok(());
        }
        if batch.signal() != s.signal {
            // Not batchable here: pass it on.
            return s.next.consume(batch).await;
        }
        let (waiter, told) = Waiter::new();
        {
            let mut p = s.lock();
            if s.stopping.load(Ordering::SeqCst) {
                // Shutdown has taken (or is taking) the last flush: pass it on rather
                // than hold it where nothing will flush it.
                drop(p);
                return s.next.consume(batch).await;
            }
            let held = p.items + s.in_flight.load(Ordering::SeqCst);
            if held >= s.hold_limit {
                s.refused.inc_by(items as u64);
                return Err(ConsumeError::Refused {
                    component: s.component.clone(),
                    reason: format!(
                        "{held} items are pending or being flushed while the next stage is slow"
                    ),
                    retry_after: Some(s.config.timeout.max(Duration::from_secs(1))),
                });
            }
            p.items += items;
            p.entries.push((batch, vec![waiter]));
            p.last = Some(Instant::now());
            if p.since.is_none() {
                p.since = Some(Instant::now());
                s.wake.notify_one();
            }
        }
        let how = if s.config.timeout.is_zero() {
            Take::All
        } else {
            Take::BySize
        };
        let ready = s.take(how);
        if !ready.is_empty() {
            s.send(ready).await;
        }
        // Answered once every flush holding some of these items is done.
        told.await.unwrap_or(Err(ConsumeError::ShuttingDown))
    }
}

#[async_trait]
impl Component for BatchStage {
    async fn start(&self) -> Result<(), StartError> {
        if !self.shared.config.timeout.is_zero() {
            let task = tokio::spawn(self.shared.clone().run_timer());
            *self.timer.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let s = &self.shared;
        {
            // Under the lock, so that no item is added after the last flush is taken.
            let _p = s.lock();
            s.stopping.store(true, Ordering::SeqCst);
        }
        s.stop.notify_one();
        let task = self.timer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        // Flush everything once; a refusal goes back to the waiting senders.
        let batches = s.take(Take::All);
        s.send(batches).await;
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
