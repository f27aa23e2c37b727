//! The running `wasm` processor: a pool of live instances in front of the next consumer.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use weir_api::{
    Batch, BuildContext, Component, ComponentId, ConsumeError, Consumer, Counter, Signal,
};

use crate::config::OnError;
use crate::guest::{Failure, FailureCause, GuestInstance};
use crate::live::LiveModule;
use crate::outcome::{apply, max_output};

/// Instances kept for reuse; more concurrent callers than this instantiate and discard.
const MAX_IDLE_INSTANCES: usize = 8;
/// At most one failure log line per module per this interval; the others are counted in it.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counts failures by cause and logs them, at most once per interval.
struct FailureLog {
    by_cause: HashMap<FailureCause, Counter>,
    gate: Mutex<(Option<Instant>, u64)>,
}

impl FailureLog {
    fn record(&self, id: &ComponentId, module: &str, on_error: OnError, failure: &Failure) {
        if let Some(c) = self.by_cause.get(&failure.cause) {
            c.inc();
        }
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let (last, suppressed) = &mut *gate;
        if last.is_some_and(|t| t.elapsed() < FAILURE_LOG_INTERVAL) {
            *suppressed += 1;
            return;
        }
        let action = match on_error {
            OnError::Pass => "batch passed on unprocessed",
            OnError::Drop => "batch dropped (on_error: drop)",
        };
        tracing::warn!(
            processor = %id,
            module,
            cause = %failure.cause,
            detail = %failure.detail,
            failures_not_logged = *suppressed,
            "WASM guest failed; {action}; instance replaced"
        );
        *last = Some(Instant::now());
        *suppressed = 0;
    }
}

/// A `wasm` processor built for one pipeline.
pub struct WasmStage {
    id: ComponentId,
    runner: Arc<Runner>,
    on_error: OnError,
    next: Arc<dyn Consumer>,
    failures: FailureLog,
    processor_failures: Counter,
    dropped: Counter,
    /// Polls the module file for a new version while the stage runs.
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What runs a guest call, shared with the thread that runs it.
struct Runner {
    signal: Signal,
    module: Arc<LiveModule>,
    /// Idle instances with the module generation they were made from.
    idle: Mutex<Vec<(u64, GuestInstance)>>,
    instantiations: Counter,
}

/// Guest calls running at once in the process: one per core (at least two). Guests run on
/// tokio's blocking pool, never on the async workers, so a slow guest cannot delay the
/// health check or other receivers; this bound keeps them from taking every core.
fn guest_slots() -> &'static Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        Arc::new(tokio::sync::Semaphore::new(n))
    })
}

impl WasmStage {
    pub(crate) fn new(
        ctx: &BuildContext,
        signal: Signal,
        module: Arc<LiveModule>,
        on_error: OnError,
        next: Arc<dyn Consumer>,
    ) -> Self {
        let name = module.module_name().to_string();
        let by_cause = FailureCause::ALL
            .iter()
            .map(|cause| {
                let c = ctx.telemetry.counter(
                    "weir_wasm_failures",
                    "Batches a WASM guest failed on, by module and cause",
                    &[("module", name.clone()), ("cause", cause.to_string())],
                );
                (*cause, c)
            })
            .collect();
        let pipeline = ctx
            .pipeline
            .clone()
            .unwrap_or_else(|| signal.as_str().to_string());
        let labels = [("processor", ctx.id.to_string()), ("pipeline", pipeline)];
        let instantiations = ctx.telemetry.counter(
            "weir_wasm_instantiations",
            "WASM instances created (one per concurrent caller, plus one per failure)",
            &[("module", name)],
        );
        WasmStage {
            id: ctx.id.clone(),
            runner: Arc::new(Runner {
                signal,
                module,
                idle: Mutex::new(Vec::new()),
                instantiations,
            }),
            on_error,
            next,
            failures: FailureLog {
                by_cause,
                gate: Mutex::new((None, 0)),
            },
            processor_failures: ctx.telemetry.counter(
                "weir_processor_failures",
                "Batches a processor failed on and passed on unprocessed (fail open)",
                &labels,
            ),
            dropped: ctx.telemetry.counter(
                "weir_processor_dropped_items",
                "Items (log records, spans, data points) a processor dropped on purpose",
                &labels,
            ),
            watcher: Mutex::new(None),
        }
    }

    /// Runs the guest on `batch` on this thread. On `Err` the batch is unchanged and the
    /// instance used is gone; on `Ok` the instance returns to the pool.
    pub fn process(&self, batch: &mut Batch) -> Result<(), (FailureCause, String)> {
        self.runner
            .process_inner(batch)
            .map_err(|f| (f.cause, f.detail))
    }
}

impl WasmStage {
    fn refused(&self, reason: &str) -> ConsumeError {
        ConsumeError::Refused {
            component: self.id.to_string(),
            reason: reason.to_string(),
            retry_after: Some(Duration::from_secs(1)),
        }
    }
}

impl Runner {
    fn process_inner(&self, batch: &mut Batch) -> Result<(), Failure> {
        let generation = self.module.generation();
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Instances of a module since replaced are dropped here.
            idle.retain(|(g, _)| *g == generation);
            idle.pop()
        };
        let (generation, mut guest) = match idle {
            Some(g) => g,
            None => {
                self.instantiations.inc();
                let (generation, module) = self.module.current();
                (
                    generation,
                    GuestInstance::new(&module.template, self.signal)?,
                )
            }
        };
        if !guest.has_entry_point() {
            // Not the instance's fault: keep it.
            self.give_back(generation, guest);
            return Err(Failure::new(
                FailureCause::MissingExport,
                format!(
                    "the module does not export weir_process_{}",
                    self.signal.as_str()
                ),
            ));
        }
        let encoded;
        let input: &[u8] = match batch.original_bytes() {
            Some(b) => b,
            None => {
                encoded = batch.payload().encode_to_vec();
                &encoded
            }
        };
        let answer = guest.process(input, max_output(input.len()))?;
        apply(batch, answer)?;
        self.give_back(generation, guest);
        Ok(())
    }

    fn give_back(&self, generation: u64, guest: GuestInstance) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_INSTANCES && generation == self.module.generation() {
            idle.push((generation, guest));
        }
    }
}

#[async_trait]
impl Consumer for WasmStage {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let before = batch.item_count();
        // The guest runs on this thread: calls are bounded by `timeout`, like any other
        // synchronous processor's work. A panic here would be a host bug; it fails open too.
        let permit = guest_slots()
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.refused("the guest pool is closed"))?;
        let runner = self.runner.clone();
        let (batch_back, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| runner.process_inner(&mut batch)))
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        FailureCause::Trap,
                        "the host panicked while running the guest",
                    ))
                });
            drop(permit);
            (batch, outcome)
        })
        .await
        .map_err(|_| self.refused("the guest thread was stopped"))?;
        let batch = batch_back;
        if let Err(failure) = outcome {
            self.processor_failures.inc();
            self.failures.record(
                &self.id,
                self.runner.module.module_name(),
                self.on_error,
                &failure,
            );
            if self.on_error == OnError::Drop {
                self.dropped.inc_by(before as u64);
                return Ok(());
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

#[async_trait]
impl Component for WasmStage {
    async fn start(&self) -> Result<(), weir_api::StartError> {
        let interval = self.runner.module.poll_interval();
        if interval.is_zero() {
            return Ok(());
        }
        let module = self.runner.module.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let m = module.clone();
                // File IO and compiling off the async workers; the outcome is logged.
                let _ = tokio::task::spawn_blocking(move || {
                    use weir_api::reload::Reloadable;
                    m.reload()
                })
                .await;
            }
        });
        if let Some(old) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(task)
        {
            old.abort();
        }
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(task) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}
