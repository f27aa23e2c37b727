//! The `memory_limiter` processor: refuses data while the process uses too much memory.
//!
//! ```yaml
//! processors:
//!   memory_limiter:
//!     check_interval: 1s          # required, like the collector
//!     limit_mib: 4000             # or limit_percentage: 80 (of the cgroup limit or RAM)
//!     spike_limit_mib: 800        # default 20% of the limit
//! ```
//!
//! The process's resident memory is read (Linux: /proc/self/status) every `check_interval`,
//! and also while data flows, at most every 10 ms, when a batch arrives: a fast sender cannot
//! push a whole `check_interval` of data past a stale reading, and acceptance resumes as
//! soon as memory is back under the soft limit rather than at the next tick. While memory is
//! above the soft limit (limit minus spike limit), every batch is refused with a retryable
//! error and a retry hint, so receivers answer 429/503 or RESOURCE_EXHAUSTED and the senders
//! keep their data. Put it first in each pipeline. One instance is shared by every pipeline
//! that lists the same id.
//!
//! The limit is on resident memory, the figure the OOM killer and cgroup limits act on (the
//! collector reads the Go heap in use instead). Resident memory includes pages the allocator
//! keeps after the data in them was freed; left alone, mimalloc holds them until the threads
//! that own them allocate again, which kept data refused for seconds after the queue had
//! drained. So when a reading is above the soft limit, the limiter asks the allocator to hand
//! freed memory back to the OS ([`set_memory_release`]; the weir binary installs mimalloc's)
//! and reads again; only memory still in use after that keeps data refused.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors, ConsumeError,
    Consumer, Counter, Gauge, ProcessorConfig, ProcessorFactory, Signal, SignalSet, Stage,
    StartError,
};

const MIB: u64 = 1024 * 1024;

/// `processors.memory_limiter` as written.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    /// How often memory is measured. Default: none (required, must be above 0).
    #[serde(default, with = "humantime_serde")]
    pub check_interval: Option<Duration>,
    /// Hard limit in MiB. Default: 0 (use limit_percentage).
    #[serde(default)]
    pub limit_mib: u64,
    /// Headroom below the limit in MiB; data is refused above limit - spike. Default: 20%
    /// of the limit.
    #[serde(default)]
    pub spike_limit_mib: u64,
    /// Hard limit as a percentage of total memory (cgroup limit, else RAM). Default: 0.
    #[serde(default)]
    pub limit_percentage: u64,
    /// Headroom as a percentage of total memory. Default: 0 (20% of the limit).
    #[serde(default)]
    pub spike_limit_percentage: u64,
    /// Collector GC pacing. Default: unset. Accepted, ignored (Rust has no GC; freed memory
    /// is handed back to the OS at most every 100 ms while above the soft limit).
    #[serde(default, with = "humantime_serde")]
    pub min_gc_interval_when_soft_limited: Option<Duration>,
    /// Collector GC pacing. Default: unset. Accepted, ignored.
    #[serde(default, with = "humantime_serde")]
    pub min_gc_interval_when_hard_limited: Option<Duration>,
    #[serde(skip)]
    guard: Arc<OnceLock<Arc<Guard>>>,
}

/// Reads the memory in use, in bytes.
pub type MemoryProbe = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Asks the allocator to return freed memory to the operating system.
pub type MemoryRelease = Arc<dyn Fn() + Send + Sync>;

/// The process's way of returning freed memory to the OS, installed once by the binary that
/// chose the global allocator.
static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Installs the function that makes the global allocator return freed memory to the OS. The
/// weir binary installs mimalloc's `mi_collect(true)`; without one (tests, other embedders)
/// the limiter only reads memory. Returns false if one was already installed.
pub fn set_memory_release(release: fn()) -> bool {
    RELEASE.set(release).is_ok()
}

/// The least time between two requests to the allocator to return memory, so a flood of
/// refused batches (each re-reading memory at most every [`FRESH`]) does not make the
/// allocator walk its pages a hundred times a second.
const RELEASE_GAP: Duration = Duration::from_millis(100);

/// Factory of the `memory_limiter` processor.
pub struct MemoryLimiterFactory;

impl ProcessorFactory for MemoryLimiterFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }
    fn parse(&self, config: &Value, path: &str) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let cfg: MemoryLimiterConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if cfg.check_interval.is_none_or(|d| d.is_zero()) {
            errors.push(
                format!("{path}.check_interval"),
                "check_interval must be greater than zero",
            );
        }
        if cfg.limit_mib == 0 && cfg.limit_percentage == 0 {
            errors.push(
                path,
                "one of limit_mib or limit_percentage must be greater than zero",
            );
        }
        if cfg.limit_mib > 0 && cfg.spike_limit_mib >= cfg.limit_mib {
            errors.push(
                format!("{path}.spike_limit_mib"),
                "spike_limit_mib must be smaller than limit_mib",
            );
        }
        if cfg.limit_mib == 0 && cfg.limit_percentage > 0 {
            if cfg.limit_percentage > 100 || cfg.spike_limit_percentage > 100 {
                errors.push(
                    path,
                    "limit_percentage and spike_limit_percentage must be at most 100",
                );
            } else if cfg.spike_limit_percentage >= cfg.limit_percentage {
                errors.push(
                    format!("{path}.spike_limit_percentage"),
                    "spike_limit_percentage must be smaller than limit_percentage",
                );
            }
        }
        errors.into_result(Box::new(cfg) as Box<dyn ProcessorConfig>)
    }
}

/// Resident memory of this process (Linux), in bytes.
pub fn process_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Memory available to this process: the cgroup limit when one is set, else physical RAM.
pub fn total_memory() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        // cgroup v1 reports "no limit" as a huge number.
        .filter(|v| *v < (1 << 60));
    if cgroup.is_some() {
        return cgroup;
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Limits in bytes: (hard limit, soft limit).
fn limits(cfg: &MemoryLimiterConfig, total: Option<u64>) -> Result<(u64, u64), String> {
    let (limit, spike) = if cfg.limit_mib > 0 {
        (cfg.limit_mib * MIB, cfg.spike_limit_mib * MIB)
    } else {
        let total = total.ok_or(
            "limit_percentage needs the total memory, which cannot be read on this system",
        )?;
        (
            total / 100 * cfg.limit_percentage,
            total / 100 * cfg.spike_limit_percentage,
        )
    };
    let spike = if spike == 0 { limit / 5 } else { spike };
    Ok((limit, limit.saturating_sub(spike)))
}

/// How old a reading may be when a batch arrives before memory is read again.
const FRESH: Duration = Duration::from_millis(10);

/// The measurement shared by every pipeline's stage of one memory_limiter id.
struct Guard {
    /// When the guard was made; `last_check_ms` counts from it.
    born: std::time::Instant,
    last_check_ms: AtomicU64,
    /// When memory was last released, in ms since `born` (plus one; 0: never).
    last_release_ms: AtomicU64,
    release: Option<MemoryRelease>,
    releases: Counter,
    component: String,
    soft_limit: u64,
    interval: Duration,
    probe: MemoryProbe,
    usage: AtomicU64,
    over: AtomicBool,
    running_stages: AtomicUsize,
    stop: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    usage_gauge: Gauge,
}

impl Guard {
    /// Reads memory again if the last reading is older than [`FRESH`] (one caller does).
    fn refresh(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_check_ms.load(Ordering::SeqCst);
        if now.saturating_sub(last) >= FRESH.as_millis() as u64
            && self
                .last_check_ms
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.check();
        }
    }

    fn check(&self) {
        self.last_check_ms
            .store(self.born.elapsed().as_millis() as u64, Ordering::SeqCst);
        let Some(mut used) = (self.probe)() else {
            return;
        };
        if used > self.soft_limit {
            if let Some(after) = self.release_and_read() {
                tracing::debug!(processor = %self.component, before_mib = used / MIB, after_mib = after / MIB, "asked the allocator to return freed memory");
                used = after;
            }
        }
        self.usage.store(used, Ordering::SeqCst);
        self.usage_gauge.set(used.min(i64::MAX as u64) as i64);
        let over = used > self.soft_limit;
        let was = self.over.swap(over, Ordering::SeqCst);
        if over && !was {
            tracing::warn!(processor = %self.component, used_mib = used / MIB, soft_limit_mib = self.soft_limit / MIB, "memory above the soft limit; refusing data");
        } else if !over && was {
            tracing::info!(processor = %self.component, used_mib = used / MIB, "memory back below the soft limit; accepting data");
        }
    }
}

impl Guard {
    /// Asks the allocator to return freed memory (at most every [`RELEASE_GAP`]) and reads
    /// memory again; None when there is no release function or it ran too recently.
    fn release_and_read(&self) -> Option<u64> {
        let release = self.release.as_ref()?;
        let now = self.born.elapsed().as_millis() as u64 + 1;
        let last = self.last_release_ms.load(Ordering::SeqCst);
        if last != 0 && now.saturating_sub(last) < RELEASE_GAP.as_millis() as u64 {
            return None;
        }
        self.last_release_ms
            .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        release();
        self.releases.inc();
        (self.probe)()
    }
}

impl MemoryLimiterConfig {
    fn guard(
        &self,
        ctx: &BuildContext,
        probe: MemoryProbe,
        release: Option<MemoryRelease>,
    ) -> Result<Arc<Guard>, BuildError> {
        if let Some(g) = self.guard.get() {
            return Ok(g.clone());
        }
        let (_, soft) = limits(self, total_memory())
            .map_err(|message| BuildError::message(&ctx.id, message))?;
        let guard = Arc::new(Guard {
            born: std::time::Instant::now(),
            last_check_ms: AtomicU64::new(0),
            last_release_ms: AtomicU64::new(0),
            release,
            releases: ctx.telemetry.counter(
                "weir_memory_limiter_releases",
                "Times the allocator was asked to return freed memory to the OS because memory was above the soft limit",
                &[("processor", ctx.id.to_string())],
            ),
            component: ctx.id.to_string(),
            soft_limit: soft,
            interval: self.check_interval.unwrap_or(Duration::from_secs(1)),
            probe,
            usage: AtomicU64::new(0),
            over: AtomicBool::new(false),
            running_stages: AtomicUsize::new(0),
            stop: Notify::new(),
            task: Mutex::new(None),
            usage_gauge: ctx.telemetry.gauge(
                "weir_memory_limiter_usage_bytes",
                "Resident memory of the process at the last check",
                &[("processor", ctx.id.to_string())],
            ),
        });
        Ok(self.guard.get_or_init(|| guard).clone())
    }

    /// Builds a stage that measures memory with `probe` (tests pass a fake) and never asks
    /// the allocator to return memory.
    pub fn build_with_probe(
        &self,
        ctx: &BuildContext,
        next: Arc<dyn Consumer>,
        probe: MemoryProbe,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        self.build_with(ctx, next, probe, None)
    }

    /// Builds a stage that measures memory with `probe` and, when a reading is above the
    /// soft limit, calls `release` and reads again.
    pub fn build_with(
        &self,
        ctx: &BuildContext,
        next: Arc<dyn Consumer>,
        probe: MemoryProbe,
        release: Option<MemoryRelease>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let guard = self.guard(ctx, probe, release)?;
        let labels = [
            ("processor", ctx.id.to_string()),
            ("pipeline", ctx.pipeline.clone().unwrap_or_default()),
        ];
        Ok(Arc::new(MemoryLimiterStage {
            guard,
            next,
            refused: ctx.telemetry.counter(
                "weir_memory_limiter_refused_items",
                "Items refused because memory was above the soft limit",
                &labels,
            ),
        }))
    }
}

impl ProcessorConfig for MemoryLimiterConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let release = RELEASE.get().map(|f| -> MemoryRelease { Arc::new(*f) });
        self.build_with(ctx, next, Arc::new(process_rss), release)
    }
}

/// The running processor for one pipeline.
pub struct MemoryLimiterStage {
    guard: Arc<Guard>,
    next: Arc<dyn Consumer>,
    refused: Counter,
}

#[async_trait]
impl Consumer for MemoryLimiterStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let g = &self.guard;
        g.refresh();
        if g.over.load(Ordering::SeqCst) {
            self.refused.inc_by(batch.item_count() as u64);
            return Err(ConsumeError::Refused {
                component: g.component.clone(),
                reason: format!(
                    "memory usage {} MiB is above the soft limit of {} MiB",
                    g.usage.load(Ordering::SeqCst) / MIB,
                    g.soft_limit / MIB
                ),
                retry_after: Some(g.interval.max(Duration::from_secs(1))),
            });
        }
        self.next.consume(batch).await
    }
}

#[async_trait]
impl Component for MemoryLimiterStage {
    async fn start(&self) -> Result<(), StartError> {
        let g = self.guard.clone();
        if g.running_stages.fetch_add(1, Ordering::SeqCst) == 0 {
            g.check();
            let ticker = g.clone();
            let task = tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(ticker.interval) => ticker.check(),
                        _ = ticker.stop.notified() => return,
                    }
                }
            });
            *g.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let g = &self.guard;
        if g.running_stages.fetch_sub(1, Ordering::SeqCst) == 1 {
            g.stop.notify_one();
            let task = g.task.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::{ComponentId, Payload};

    #[derive(Default)]
    struct Sink(Mutex<usize>);
    #[async_trait]
    impl Consumer for Sink {
        async fn consume(&self, b: Batch) -> Result<(), ConsumeError> {
            *self.0.lock().unwrap() += b.item_count();
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

    fn parse(v: Value) -> Result<Box<dyn ProcessorConfig>, String> {
        MemoryLimiterFactory
            .parse(&v, "processors.memory_limiter")
            .map_err(|e| e.to_string())
    }

    #[test]
    fn config_errors_are_exact() {
        assert_eq!(
            parse(json!({})).err().unwrap(),
            "processors.memory_limiter.check_interval: check_interval must be greater than zero\n\
             processors.memory_limiter: one of limit_mib or limit_percentage must be greater than zero"
        );
        assert_eq!(
            parse(json!({"check_interval": "1s", "limit_mib": 100, "spike_limit_mib": 100})).err().unwrap(),
            "processors.memory_limiter.spike_limit_mib: spike_limit_mib must be smaller than limit_mib"
        );
        assert_eq!(
            parse(json!({"check_interval": "1s", "limit_percentage": 50, "spike_limit_percentage": 60})).err().unwrap(),
            "processors.memory_limiter.spike_limit_percentage: spike_limit_percentage must be smaller than limit_percentage"
        );
        assert_eq!(
            parse(json!({"check_interval": "1s", "limit_percentage": 150})).err().unwrap(),
            "processors.memory_limiter: limit_percentage and spike_limit_percentage must be at most 100"
        );
        assert!(parse(
            json!({"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20})
        )
        .is_ok());
    }

    #[test]
    fn limits_and_default_spike() {
        let cfg: MemoryLimiterConfig =
            parse_component_config(&json!({"check_interval": "1s", "limit_mib": 1000}), "p")
                .unwrap();
        assert_eq!(limits(&cfg, None).unwrap(), (1000 * MIB, 800 * MIB));
        let cfg: MemoryLimiterConfig = parse_component_config(
            &json!({"check_interval": "1s", "limit_percentage": 50, "spike_limit_percentage": 10}),
            "p",
        )
        .unwrap();
        assert_eq!(
            limits(&cfg, Some(1000 * MIB)).unwrap(),
            (500 * MIB, 400 * MIB)
        );
    }

    #[test]
    fn reads_real_process_memory() {
        let rss = process_rss().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(total_memory().unwrap() > rss);
    }

    #[tokio::test]
    async fn refuses_above_soft_limit_and_recovers() {
        let used = Arc::new(AtomicU64::new(100 * MIB));
        let probe_value = used.clone();
        let probe: MemoryProbe = Arc::new(move || Some(probe_value.load(Ordering::SeqCst)));
        let cfg: MemoryLimiterConfig = parse_component_config(
            &json!({"check_interval": "10ms", "limit_mib": 1000, "spike_limit_mib": 200}),
            "p",
        )
        .unwrap();
        let mut ctx = BuildContext::for_component(ComponentId::parse("memory_limiter").unwrap());
        ctx.pipeline = Some("logs".into());
        let sink = Arc::new(Sink::default());
        let stage = cfg
            .build_with_probe(&ctx, sink.clone(), probe.clone())
            .unwrap();
        // A second pipeline's stage shares the measurement.
        let other = cfg.build_with_probe(&ctx, sink.clone(), probe).unwrap();
        stage.start().await.unwrap();
        other.start().await.unwrap();
        stage.consume(logs(3)).await.unwrap();
        assert_eq!(*sink.0.lock().unwrap(), 3);

        used.store(801 * MIB, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let err = stage.consume(logs(4)).await.unwrap_err();
        assert_eq!(err.to_string(), "memory_limiter: cannot accept data now: memory usage 801 MiB is above the soft limit of 800 MiB");
        let ConsumeError::Refused { retry_after, .. } = &err else {
            unreachable!()
        };
        assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        assert!(other.consume(logs(1)).await.is_err());
        assert_eq!(*sink.0.lock().unwrap(), 3);
        assert!(ctx
            .telemetry
            .encode()
            .contains("weir_memory_limiter_refused_items_total{processor=\"memory_limiter\",pipeline=\"logs\"} 5"));

        used.store(700 * MIB, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        stage.consume(logs(2)).await.unwrap();
        assert_eq!(*sink.0.lock().unwrap(), 5);
        stage.shutdown().await;
        other.shutdown().await;
        assert!(cfg.guard.get().unwrap().task.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stale_reading_neither_admits_a_flood_nor_delays_recovery() {
        let used = Arc::new(AtomicU64::new(100 * MIB));
        let probe_value = used.clone();
        let probe: MemoryProbe = Arc::new(move || Some(probe_value.load(Ordering::SeqCst)));
        // A long interval: between ticks, arriving batches read memory (every 10 ms at most).
        let cfg: MemoryLimiterConfig = parse_component_config(
            &json!({"check_interval": "1h", "limit_mib": 1000, "spike_limit_mib": 200}),
            "p",
        )
        .unwrap();
        let ctx = BuildContext::for_component(ComponentId::parse("memory_limiter").unwrap());
        let sink = Arc::new(Sink::default());
        let stage = cfg.build_with_probe(&ctx, sink.clone(), probe).unwrap();
        stage.start().await.unwrap();
        stage.consume(logs(1)).await.unwrap();
        used.store(900 * MIB, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
        assert!(
            stage.consume(logs(1)).await.is_err(),
            "admitted past a stale reading"
        );
        used.store(300 * MIB, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
        stage.consume(logs(1)).await.unwrap();
        assert_eq!(*sink.0.lock().unwrap(), 2);
        stage.shutdown().await;
    }

    #[tokio::test]
    async fn above_the_soft_limit_freed_memory_is_released_and_read_again() {
        // Resident memory 900 MiB of which 300 MiB is live: the allocator keeps the rest
        // until asked to return it.
        let live = Arc::new(AtomicU64::new(300 * MIB));
        let retained = Arc::new(AtomicU64::new(600 * MIB));
        let (l, r) = (live.clone(), retained.clone());
        let probe: MemoryProbe =
            Arc::new(move || Some(l.load(Ordering::SeqCst) + r.load(Ordering::SeqCst)));
        let releases = Arc::new(AtomicUsize::new(0));
        let (r, n) = (retained.clone(), releases.clone());
        let release: MemoryRelease = Arc::new(move || {
            r.store(0, Ordering::SeqCst);
            n.fetch_add(1, Ordering::SeqCst);
        });
        let cfg: MemoryLimiterConfig = parse_component_config(
            &json!({"check_interval": "1h", "limit_mib": 1000, "spike_limit_mib": 200}),
            "p",
        )
        .unwrap();
        let ctx = BuildContext::for_component(ComponentId::parse("memory_limiter").unwrap());
        let sink = Arc::new(Sink::default());
        let stage = cfg
            .build_with(&ctx, sink.clone(), probe, Some(release))
            .unwrap();
        // The first reading (at start) is above the soft limit only until the release.
        stage.start().await.unwrap();
        assert_eq!(releases.load(Ordering::SeqCst), 1);
        stage.consume(logs(1)).await.unwrap();

        // Live memory above the soft limit: a release does not help, data is refused, and
        // further readings within RELEASE_GAP do not call the allocator again.
        live.store(850 * MIB, Ordering::SeqCst);
        retained.store(100 * MIB, Ordering::SeqCst);
        tokio::time::sleep(RELEASE_GAP).await;
        assert!(stage.consume(logs(1)).await.is_err());
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(15)).await;
            assert!(stage.consume(logs(1)).await.is_err());
        }
        assert_eq!(releases.load(Ordering::SeqCst), 2);

        // The data is gone but its pages are retained: the next reading after RELEASE_GAP
        // releases them and accepts at once.
        live.store(300 * MIB, Ordering::SeqCst);
        retained.store(600 * MIB, Ordering::SeqCst);
        tokio::time::sleep(RELEASE_GAP).await;
        stage.consume(logs(1)).await.unwrap();
        assert_eq!(releases.load(Ordering::SeqCst), 3);
        assert_eq!(*sink.0.lock().unwrap(), 2);
        assert!(ctx
            .telemetry
            .encode()
            .contains("weir_memory_limiter_releases_total{processor=\"memory_limiter\"} 3"));
        stage.shutdown().await;
    }
}
