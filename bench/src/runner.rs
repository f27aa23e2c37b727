//! Starts a system under test pinned to given cores, drives one scenario at it, and
//! measures throughput, latency, CPU, memory and loss.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use weir_api::Signal;

use crate::generate::{Generator, Mix};
use crate::load::{drive, LoadPlan, LoadStats};
use crate::sink::Sink;

/// A pipeline scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Receive and forward, no processing.
    Forward,
    /// A policy drops the noise (~50%: DEBUG logs / health-check spans / points of
    /// `debug.*` metrics).
    Drop,
    /// A WASM module drops the noise.
    Wasm,
    /// The metadata extractor summarises everything; all data forwarded.
    Metadata,
    /// `memory_limiter` in front of a large in-memory queue; run it with `--sink-delay` (a
    /// slow upstream) to measure peak RSS against the limit in the config.
    Limiter,
    /// The `batch` processor, whose senders wait for the flush holding their items.
    Batch,
    /// `batch` and the exporter's disk queue (`sending_queue.storage`, fsync: batch).
    BatchDisk,
    /// The edge as shipped (configs/edge.yaml): memory_limiter, policies (the noise is
    /// dropped), batch, and the catalog pipeline summarising everything received.
    Edge,
}

impl Scenario {
    /// Whether the scenario removes the generator's noise items.
    pub fn drops_noise(self) -> bool {
        matches!(self, Scenario::Drop | Scenario::Wasm | Scenario::Edge)
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Label in the report (`weir`, `rotel`).
    pub target: String,
    /// Command template; `{config}`, `{receiver}` (host:port), `{sink}` (host:port),
    /// `{scenarios}` (the scenarios directory) are substituted.
    pub command: String,
    /// Config template file (weir) to fill and pass as `{config}`, if any.
    pub config_template: Option<PathBuf>,
    /// Scenario (for the report and expected drops).
    pub scenario: Scenario,
    /// Logs, traces or metrics.
    pub signal: Signal,
    /// Items per request (log records, spans or metric data points).
    pub batch: usize,
    /// Measured time.
    pub duration: Duration,
    /// Connections.
    pub connections: usize,
    /// Items/s, 0 = as fast as accepted.
    pub rate: u64,
    /// `taskset -c` list for the target, if any.
    pub cores: Option<String>,
    /// `taskset -c` list the harness itself was pinned to (informative only).
    pub scenarios_dir: PathBuf,
    /// Seed of the generator.
    pub seed: u64,
    /// How long the sink holds each request during the measured time (a slow upstream);
    /// it answers at once while the target drains afterwards.
    pub sink_delay: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Target label.
    pub target: String,
    /// Scenario.
    pub scenario: Scenario,
    /// Signal.
    pub signal: String,
    /// Items per request.
    pub batch: usize,
    /// Items accepted by the target per second.
    pub items_in_per_s: f64,
    /// Items received by the sink per second.
    pub items_out_per_s: f64,
    /// Latency percentiles in microseconds (end to end, generator stamp to sink).
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// CPU seconds the target used per million items accepted.
    pub cpu_s_per_million: f64,
    /// Target's resident memory after start, before load (MiB).
    pub idle_rss_mib: f64,
    /// Target's peak resident memory (MiB).
    pub peak_rss_mib: f64,
    /// Peak private (anonymous) memory, MiB, sampled every 20 ms: the peak RSS without the
    /// mapped pages of the executable.
    pub peak_anon_mib: f64,
    /// Items accepted.
    pub sent: u64,
    /// Items received by the sink.
    pub received: u64,
    /// Items the scenario's policy was expected to drop.
    pub dropped_by_policy: u64,
    /// sent - received - dropped_by_policy (must be 0).
    pub loss: i64,
    /// Requests refused (retryable) and retried.
    pub refused: u64,
    /// Of the items the target's `catalog` exporters took, the share their summariser read
    /// (the rest was counted unread: `weir_catalog_unsummarised_items`); `None` without a
    /// catalog exporter or metrics endpoint.
    pub summarised_share: Option<f64>,
}

/// The sums of Weir's `weir_catalog_summarised_items_total` and
/// `weir_catalog_unsummarised_items_total` at `127.0.0.1:port/metrics`.
fn catalog_counts(port: u16) -> Option<(f64, f64)> {
    use std::io::{Read, Write};
    let mut c = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    let (mut read, mut unread, mut seen) = (0.0, 0.0, false);
    for line in text.lines() {
        let value = || line.rsplit(' ').next()?.parse::<f64>().ok();
        if line.starts_with("weir_catalog_summarised_items_total") {
            read += value()?;
            seen = true;
        } else if line.starts_with("weir_catalog_unsummarised_items_total") {
            unread += value()?;
            seen = true;
        }
    }
    seen.then_some((read, unread))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    if pid == 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) of a process and its threads.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    if pid == 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes the command name; utime and stime are 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / ticks)
}

fn wait_port(addr: SocketAddr, child: &mut Child, within: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(status) = child.try_wait()? {
            bail!("target exited before listening ({status})");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("target did not listen on {addr} within {within:?}")
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(template.to_string(), |t, (k, v)| {
        t.replace(&format!("{{{k}}}"), v)
    })
}

/// Runs one scenario against one target.
pub async fn run(spec: &RunSpec, workdir: &Path) -> anyhow::Result<RunReport> {
    let sink = Sink::start("127.0.0.1:0".parse()?).await?;
    sink.stats
        .delay_ms
        .store(spec.sink_delay.as_millis() as u64, Ordering::Relaxed);
    if spec.command.is_empty() {
        // The `direct` baseline: the generator sends straight to the sink, so its latency is
        // the harness's own share, to subtract from a target's.
        return measure(spec, &sink, sink.addr, None).await;
    }
    let receiver: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let vars = vec![
        ("receiver", receiver.to_string()),
        ("sink", sink.addr.to_string()),
        (
            "scenarios",
            std::fs::canonicalize(&spec.scenarios_dir)
                .unwrap_or_else(|_| spec.scenarios_dir.clone())
                .display()
                .to_string(),
        ),
        (
            "root",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        ("metrics_port", free_port()?.to_string()),
        // A fresh directory per run for a disk queue, so no run replays another's data.
        ("queue_dir", {
            let d = workdir.join(format!("queue-{}-{}", spec.target, crate::sink::now_ns()));
            std::fs::create_dir_all(&d)?;
            d.display().to_string()
        }),
    ];
    let mut vars_all = vars.clone();
    if let Some(t) = &spec.config_template {
        let text =
            std::fs::read_to_string(t).with_context(|| format!("reading {}", t.display()))?;
        let path = workdir.join(format!("{}-{:?}.yaml", spec.target, spec.scenario));
        std::fs::write(&path, fill(&text, &vars))?;
        vars_all.push(("config", path.display().to_string()));
    }
    let cmdline = fill(&spec.command, &vars_all);
    let mut argv: Vec<String> = cmdline.split_whitespace().map(str::to_string).collect();
    if let Some(cores) = &spec.cores {
        argv.splice(
            0..0,
            ["taskset".to_string(), "-c".to_string(), cores.clone()],
        );
    }
    let (prog, args) = argv.split_first().context("empty target command")?;
    let log = std::fs::File::create(workdir.join(format!("{}.log", spec.target)))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {cmdline}"))?;
    let pid = child.id();
    let metrics_port = vars
        .iter()
        .find(|(k, _)| *k == "metrics_port")
        .and_then(|(_, v)| v.parse().ok());
    let mut result = measure(spec, &sink, receiver, Some((pid, &mut child))).await;
    if let (Ok(r), Some(port)) = (&mut result, metrics_port) {
        // The summariser catches up with its queue (at most 16 batches) once the load stops.
        tokio::time::sleep(Duration::from_millis(500)).await;
        r.summarised_share = catalog_counts(port)
            .filter(|(read, unread)| read + unread > 0.0)
            .map(|(read, unread)| read / (read + unread));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn measure(
    spec: &RunSpec,
    sink: &Sink,
    receiver: SocketAddr,
    target: Option<(u32, &mut Child)>,
) -> anyhow::Result<RunReport> {
    // Without a target process (the direct baseline) there is no CPU or memory to read.
    let pid = match target {
        Some((pid, child)) => {
            wait_port(receiver, child, Duration::from_secs(20))?;
            pid
        }
        None => 0,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    let pool =
        Arc::new(Generator::new(spec.seed, Mix::default()).pool(spec.signal, 64, spec.batch));
    let stats = Arc::new(LoadStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let plan = LoadPlan {
        endpoint: format!("http://{receiver}"),
        signal: spec.signal,
        connections: spec.connections,
        rate: spec.rate,
    };
    let ticks = clock_ticks();
    let cpu0 = cpu_seconds(pid, ticks).unwrap_or(0.0);
    // VmHWM (peak RSS) counts the pages of the target's own executable it has mapped
    // (file-backed, shared with the page cache: 18-26 MiB for Weir's binary in the runs of
    // BENCHMARKS.md); its private memory is sampled apart (RssAnon, every 20 ms, until the
    // drain is over).
    let anon_peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (anon_peak, sampling) = (anon_peak.clone(), sampling.clone());
        async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = proc_status_kib(pid, "RssAnon:") {
                    anon_peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let driver = tokio::spawn(drive(plan, pool, stats.clone(), stop.clone()));
    // Latency is taken after a short warm-up.
    let warm = spec.duration / 10;
    tokio::time::sleep(warm).await;
    sink.stats.reset_latency();
    let started = Instant::now();
    let sent0 = stats.items.load(Ordering::Relaxed);
    let recv0 = sink.stats.items.load(Ordering::Relaxed);
    tokio::time::sleep(spec.duration).await;
    let elapsed = started.elapsed().as_secs_f64();
    let sent1 = stats.items.load(Ordering::Relaxed);
    let recv1 = sink.stats.items.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    driver.await??;
    let cpu1 = cpu_seconds(pid, ticks).unwrap_or(0.0);
    let sent = stats.items.load(Ordering::Relaxed);
    let noise = stats.noise.load(Ordering::Relaxed);
    let dropped = if spec.scenario.drops_noise() {
        noise
    } else {
        0
    };
    let expect = sent - dropped;
    // The upstream catches up: whatever the target queued is answered at once from here.
    sink.stats.delay_ms.store(0, Ordering::Relaxed);
    // Drain: wait for everything accepted to come out (bounded).
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until && sink.stats.items.load(Ordering::Relaxed) < expect {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer, to catch duplicates.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = sink.stats.items.load(Ordering::Relaxed);
    let peak_rss = proc_status_kib(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let peak_anon = anon_peak.load(Ordering::Relaxed) as f64 / 1024.0;
    let (p50, p99, p999) = {
        let h = sink
            .stats
            .latency_us
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match h.as_ref() {
            Some(h) if !h.is_empty() => (
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
            ),
            _ => (0, 0, 0),
        }
    };
    Ok(RunReport {
        target: spec.target.clone(),
        scenario: spec.scenario,
        signal: spec.signal.to_string(),
        batch: spec.batch,
        items_in_per_s: (sent1 - sent0) as f64 / elapsed,
        items_out_per_s: (recv1 - recv0) as f64 / elapsed,
        p50_us: p50,
        p99_us: p99,
        p999_us: p999,
        cpu_s_per_million: if sent > 0 {
            (cpu1 - cpu0) / (sent as f64 / 1e6)
        } else {
            0.0
        },
        idle_rss_mib: idle_rss,
        peak_rss_mib: peak_rss,
        peak_anon_mib: peak_anon,
        sent,
        received,
        dropped_by_policy: dropped,
        loss: sent as i64 - received as i64 - dropped as i64,
        refused: stats.refused.load(Ordering::Relaxed),
        summarised_share: None,
    })
}
