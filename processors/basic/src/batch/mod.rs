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
//! their resource lists. Unlike the collector's processor, a flush that the next stage
//! refuses is not lost: the items stay pending and are retried on the next timeout, and once
//! ten times `send_batch_size` items are held this way new data is refused with a retryable
//! error, so receivers tell senders to retry. Shutdown flushes everything.

mod split;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
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
                wake: Notify::new(),
                stop: Notify::new(),
                stopping: AtomicBool::new(false),
                deferred: ctx.telemetry.counter(
                    "weir_batch_deferred_flushes",
                    "Flushes the next stage refused; the items stayed pending for a retry",
                    &labels,
                ),
                refused: ctx.telemetry.counter(
                    "weir_batch_refused_items",
                    "Items refused because too much was held while the next stage refused",
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

#[derive(Default)]
struct Pending {
    batches: Vec<Batch>,
    items: usize,
    /// When the oldest pending item arrived.
    since: Option<Instant>,
}

struct Shared {
    component: String,
    config: BatchConfig,
    signal: Signal,
    next: Arc<dyn Consumer>,
    pending: Mutex<Pending>,
    hold_limit: usize,
    wake: Notify,
    stop: Notify,
    stopping: AtomicBool,
    deferred: Counter,
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

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the batches to send now, each cut to send_batch_max_size.
    fn take(&self, how: Take) -> Vec<Batch> {
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
        let Some(mut merged) = merge(std::mem::take(&mut p.batches)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut left = p.items;
        loop {
            let by_size_done = matches!(how, Take::BySize) && left < size;
            if left == 0 || by_size_done {
                break;
            }
            let n = if max > 0 { max.min(left) } else { left };
            out.push(split_front(&mut merged, n));
            left -= n;
        }
        p.items = left;
        if left > 0 {
            p.batches.push(merged);
        } else {
            p.since = None;
        }
        out
    }

    /// Puts batches the next stage refused back in front of the pending ones.
    fn put_back(&self, batches: Vec<Batch>) {
        let mut p = self.lock();
        let items: usize = batches.iter().map(Batch::item_count).sum();
        let rest = std::mem::take(&mut p.batches);
        p.batches = batches;
        p.batches.extend(rest);
        p.items += items;
        p.since = Some(Instant::now());
        drop(p);
        self.wake.notify_one();
    }

    /// Sends batches in order; on a retryable refusal keeps that one and the rest pending.
    async fn send(&self, batches: Vec<Batch>) -> Result<(), ConsumeError> {
        let mut iter = batches.into_iter();
        while let Some(b) = iter.next() {
            let items = b.item_count() as u64;
            let kept = b.clone();
            match self.next.consume(b).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {
                    self.deferred.inc();
                    tracing::warn!(processor = %self.component, error = %e, "next stage refused a batch; keeping it pending for a retry");
                    let mut back = vec![kept];
                    back.extend(iter);
                    self.put_back(back);
                    return Err(e);
                }
                Err(e) => {
                    self.rejected.inc_by(items);
                    tracing::error!(processor = %self.component, error = %e, items, "next stage rejected a batch as invalid");
                }
            }
        }
        Ok(())
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
                    tokio::select! {
                        _ = tokio::time::sleep_until(t + timeout) => {
                            let due = self.lock().since.is_some_and(|s| s + timeout <= Instant::now());
                            if due {
                                let batches = self.take(Take::All);
                                let _ = self.send(batches).await;
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
        if batch.signal() != s.signal || s.stopping.load(Ordering::SeqCst) {
            // Not batchable here (after shutdown began, or a foreign signal): pass it on
            // rather than hold it where nothing will flush it.
            return s.next.consume(batch).await;
        }
        {
            let mut p = s.lock();
            if p.items >= s.hold_limit {
                s.refused.inc_by(items as u64);
                return Err(ConsumeError::Refused {
                    component: s.component.clone(),
                    reason: format!(
                        "{} items are pending while the next stage refuses data",
                        p.items
                    ),
                    retry_after: Some(s.config.timeout.max(Duration::from_secs(1))),
                });
            }
            p.items += items;
            p.batches.push(batch);
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
            // The items are held here now; a refusal downstream keeps them pending and is
            // retried on the timer, so the sender is not asked to send them again.
            let _ = s.send(ready).await;
        }
        Ok(())
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
        s.stopping.store(true, Ordering::SeqCst);
        s.stop.notify_one();
        let task = self.timer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        // Flush everything; while the next stage refuses, retry with backoff. The engine
        // bounds the whole shutdown by its deadline.
        let mut backoff = Duration::from_millis(50);
        loop {
            let batches = s.take(Take::All);
            if batches.is_empty() {
                return;
            }
            if s.send(batches).await.is_ok() && s.lock().items == 0 {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
