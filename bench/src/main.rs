//! `weir-bench`: drives realistic OTLP load at Weir and at peer collectors, side by side,
//! and reports throughput, latency, CPU, memory and loss. See BENCHMARKS.md.

mod fleet;
mod generate;
mod load;
mod prom;
mod raw;
mod runner;
mod scan;
mod sink;
mod summary;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use weir_api::Signal;

use runner::{RunReport, RunSpec, Scenario};

#[derive(Parser)]
#[command(
    name = "weir-bench",
    about = "Load harness for Weir and peer collectors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against one or more targets and print a side-by-side report.
    Run(Box<RunArgs>),
    /// A control plane (the `weir` binary on loopback) under N simulated edges shipping
    /// catalog summaries and syncing policies, plus a viewer polling pages (see BENCHMARKS.md).
    Fleet(Box<FleetArgs>),
    /// The prometheus receiver's scrape + convert path on one thread, against a scaled
    /// node_exporter payload served from loopback (see BENCHMARKS.md).
    PromScrape {
        /// A recorded /metrics payload.
        #[arg(long, default_value = "bench/data/node_exporter.txt")]
        payload: PathBuf,
        /// Each series is repeated this many times (extra label `replica`).
        #[arg(long, default_value_t = 200)]
        scale: usize,
        /// Measured time per run.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Runs (the last line is the median).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// The catalog summariser alone, on one thread, on exactly the load of the `edge`
    /// scenario (see BENCHMARKS.md); prints items per CPU-second of that thread.
    Summarise {
        /// `logs` or `traces`.
        #[arg(long, default_value = "logs")]
        signal: String,
        /// Passes over the pool of 64 requests per run.
        #[arg(long, default_value_t = 20)]
        passes: usize,
        /// Items per request (the scenarios' `--batch`).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Generator seed (the runner's default is 42).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Runs (the last line is the median).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Run only the counting sink, printing counts every second.
    Sink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4327")]
        listen: String,
        /// Stop after this long.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
}

#[derive(Parser)]
struct FleetArgs {
    /// The weir binary.
    #[arg(long, default_value = "target/release/weir")]
    weir: PathBuf,
    /// Simulated edges, one run each (e.g. `10,100,1000`).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    edges: Vec<usize>,
    /// Services in the fleet's catalog.
    #[arg(long, default_value_t = 200)]
    services: usize,
    /// Services each edge reports.
    #[arg(long, default_value_t = 3)]
    services_per_edge: usize,
    /// An edge's catalog flush interval (the exporter's default).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    flush: Duration,
    /// An edge's policy sync interval (the control plane's default).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    sync: Duration,
    /// Time compression: intervals are divided by this (N edges at 10x offer the request
    /// rate of 10N edges, with N tokens and edge rows).
    #[arg(long, default_value_t = 1.0)]
    compress: f64,
    /// Measured time per run.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The viewer loads the overview, services and findings pages, then waits this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    viewer_interval: Duration,
    /// An edge's request timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Log records, spans and points per service and flush put through the summariser.
    #[arg(long, default_value_t = 200)]
    items: usize,
    /// Work directory (the store, the config, the control plane's log); emptied first.
    #[arg(long, default_value = "/tmp/weir-fleet")]
    workdir: PathBuf,
    /// `--set KEY=VALUE` passed to the control plane; repeatable.
    #[arg(long)]
    set: Vec<String>,
    /// Write the runs as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit non-zero when a run's volumes are not exactly what was acknowledged.
    #[arg(long)]
    fail_on_mismatch: bool,
}

#[derive(Parser)]
struct RunArgs {
    /// Targets to compare, in order: `weir`, `rotel`, and `direct` (no target: the generator
    /// sends straight to the sink; its latency is the harness's own, and the report prints
    /// each target's latency minus it as the target's added latency).
    #[arg(long, value_delimiter = ',', default_value = "weir")]
    targets: Vec<String>,
    /// Scenarios to run.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "forward")]
    scenarios: Vec<Scenario>,
    /// Signals: logs, traces, metrics.
    #[arg(long, value_delimiter = ',', default_value = "logs")]
    signals: Vec<String>,
    /// Items per request (log records, spans or metric data points).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    batch: Vec<usize>,
    /// Measured time per run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Items per second; 0 = as fast as the target accepts.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Cores to pin the target to (taskset -c); empty = no pinning.
    #[arg(long, default_value = "0")]
    cores: String,
    /// Runs per target and scenario (the report shows medians).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// The weir binary.
    #[arg(long, default_value = "target/release/weir")]
    weir: PathBuf,
    /// The rotel-agent binary (from the PyPI package `rotel`).
    #[arg(long, default_value = "rotel-agent")]
    rotel: String,
    /// Directory of weir scenario configs (`<signal>-<scenario>.yaml`).
    #[arg(long, default_value = "bench/scenarios")]
    scenarios_dir: PathBuf,
    /// How long the sink holds each request during the measured time: a slow upstream
    /// (e.g. 300ms with `--scenarios limiter`). It answers at once while the target drains.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    sink_delay: Duration,
    /// Write all runs as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit non-zero when any run lost data (sent - received - dropped by policy != 0).
    #[arg(long)]
    fail_on_loss: bool,
}

fn spec_for(
    a: &RunArgs,
    target: &str,
    scenario: Scenario,
    signal: Signal,
    batch: usize,
) -> anyhow::Result<Option<RunSpec>> {
    let (command, template) = match target {
        "weir" => {
            let t = a.scenarios_dir.join(format!(
                "{}-{}.yaml",
                signal,
                format!("{scenario:?}").to_lowercase()
            ));
            if !t.exists() {
                eprintln!(
                    "skipped: no weir config for this scenario ({})",
                    t.display()
                );
                return Ok(None);
            }
            (format!("{} --config {{config}}", a.weir.display()), Some(t))
        }
        "rotel" => {
            if scenario != Scenario::Forward {
                // rotel has no built-in policy, WASM or metadata processor to compare with.
                return Ok(None);
            }
            (
                format!(
                    "{} start --otlp-grpc-endpoint {{receiver}} --otlp-http-endpoint 127.0.0.1:{{metrics_port}} --exporter otlp --otlp-exporter-endpoint http://{{sink}}",
                    a.rotel
                ),
                None,
            )
        }
        "direct" => {
            if scenario != Scenario::Forward {
                // The baseline processes nothing; it only pairs with forward runs.
                return Ok(None);
            }
            (String::new(), None)
        }
        other => bail!("unknown target {other:?} (weir, rotel, direct)"),
    };
    Ok(Some(RunSpec {
        target: target.to_string(),
        command,
        config_template: template,
        scenario,
        signal,
        batch,
        duration: a.duration,
        connections: a.connections,
        rate: a.rate,
        cores: (!a.cores.is_empty()).then(|| a.cores.clone()),
        scenarios_dir: a.scenarios_dir.clone(),
        seed: 42,
        sink_delay: a.sink_delay,
    }))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn print_group(runs: &[RunReport], baseline_items: Option<f64>) -> f64 {
    let m = |f: fn(&RunReport) -> f64| median(runs.iter().map(f).collect());
    let items_in = m(|r| r.items_in_per_s);
    let ratio = baseline_items
        .filter(|b| *b > 0.0)
        .map(|b| format!("{:.2}x", b / items_in.max(1.0)))
        .unwrap_or_else(|| "-".into());
    let r0 = &runs[0];
    println!(
        "{:<6} {:<9} {:<7} {:>6} {:>12.0} {:>12.0} {:>8.0} {:>8.0} {:>8.0} {:>9.2} {:>8.1} {:>8.1} {:>6} {:>7} {:>8.0} {:>6} {:>8.1}",
        r0.target,
        format!("{:?}", r0.scenario).to_lowercase(),
        r0.signal,
        r0.batch,
        items_in,
        m(|r| r.items_out_per_s),
        m(|r| r.p50_us as f64),
        m(|r| r.p99_us as f64),
        m(|r| r.p999_us as f64),
        m(|r| r.cpu_s_per_million),
        m(|r| r.idle_rss_mib),
        m(|r| r.peak_rss_mib),
        runs.iter().map(|r| r.loss).max().unwrap_or(0),
        ratio,
        m(|r| r.refused as f64),
        {
            let shares: Vec<f64> = runs.iter().filter_map(|r| r.summarised_share).collect();
            if shares.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * median(shares))
            }
        },
        m(|r| r.peak_anon_mib),
    );
    items_in
}

/// Median latency percentiles (p50, p99, p999) of a group of runs, in microseconds.
fn latency_medians(runs: &[RunReport]) -> [f64; 3] {
    let m = |f: fn(&RunReport) -> u64| median(runs.iter().map(|r| f(r) as f64).collect());
    [m(|r| r.p50_us), m(|r| r.p99_us), m(|r| r.p999_us)]
}

/// With a `direct` baseline among the groups: each target's latency minus the baseline's,
/// percentile by percentile (what the target adds over the harness's own send and receive).
fn print_added_latency(groups: &[Vec<RunReport>]) {
    let Some(direct) = groups
        .iter()
        .find(|g| g.first().is_some_and(|r| r.target == "direct"))
    else {
        return;
    };
    let base = latency_medians(direct);
    for g in groups
        .iter()
        .filter(|g| g.first().is_some_and(|r| r.target != "direct"))
    {
        let t = latency_medians(g);
        println!(
            "  added latency {} over direct: p50 {:.0} us, p99 {:.0} us, p999 {:.0} us",
            g[0].target,
            t[0] - base[0],
            t[1] - base[1],
            t[2] - base[2],
        );
    }
}

async fn run_all(a: RunArgs) -> anyhow::Result<bool> {
    // Checked before any run, so a typo does not surface after minutes of measuring.
    let signals = a
        .signals
        .iter()
        .map(|name| {
            Signal::parse(name).with_context(|| {
                format!("--signals: unknown signal {name:?} (logs, traces, metrics)")
            })
        })
        .collect::<anyhow::Result<Vec<Signal>>>()?;
    let workdir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let mut all = Vec::new();
    let mut lossless = true;
    println!(
        "{:<6} {:<9} {:<7} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>6} {:>7} {:>8} {:>6} {:>8}",
        "target",
        "scenario",
        "signal",
        "batch",
        "items_in/s",
        "items_out/s",
        "p50_us",
        "p99_us",
        "p999_us",
        "cpu_s/M",
        "idle_MiB",
        "peak_MiB",
        "loss",
        "weir/x",
        "refused",
        "read%",
        "anon_MiB"
    );
    for signal in signals {
        for &scenario in &a.scenarios {
            for &batch in &a.batch {
                let mut groups: Vec<Vec<RunReport>> = vec![Vec::new(); a.targets.len()];
                // Alternate targets within each repetition so drift hits both alike.
                for _ in 0..a.repeat {
                    for (i, t) in a.targets.iter().enumerate() {
                        let Some(spec) = spec_for(&a, t, scenario, signal, batch)? else {
                            continue;
                        };
                        let r = runner::run(&spec, &workdir)
                            .await
                            .with_context(|| format!("{t} {scenario:?} {signal} batch {batch}"))?;
                        if r.loss != 0 {
                            lossless = false;
                            eprintln!(
                                "LOSS: {t} {scenario:?} {signal} batch {batch}: sent {} received {} dropped-by-policy {}",
                                r.sent, r.received, r.dropped_by_policy
                            );
                        }
                        groups[i].push(r);
                    }
                }
                let mut weir_items = None;
                for g in groups.iter().filter(|g| !g.is_empty()) {
                    let items = print_group(g, weir_items.filter(|_| g[0].target != "weir"));
                    if g[0].target == "weir" {
                        weir_items = Some(items);
                    }
                    all.extend(g.iter().cloned());
                }
                print_added_latency(&groups);
            }
        }
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&all)?)?;
    }
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(lossless)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(a) => {
            let fail = a.fail_on_loss;
            let lossless = run_all(*a).await?;
            if fail && !lossless {
                bail!("data was lost in at least one run");
            }
        }
        Command::Fleet(a) => {
            let mut reports = Vec::new();
            println!("| edges | compress | ingest/s | ingest p50/p99/max ms | shed | failed | sync p50/p99/max ms | sync shed/failed | overview p50/p99 | services p50/p99 | findings p50/p99 ms | pages shed | CPU cores | bench CPU | load | max RSS MiB | DB MiB start/end | volumes |");
            println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            for &n in &a.edges {
                let plan = fleet::FleetPlan {
                    weir: a.weir.clone(),
                    edges: n,
                    services: a.services,
                    services_per_edge: a.services_per_edge,
                    flush: a.flush,
                    sync: a.sync,
                    compress: a.compress,
                    duration: a.duration,
                    viewer_interval: a.viewer_interval,
                    timeout: a.timeout,
                    workdir: a.workdir.clone(),
                    items: a.items,
                    set: a.set.clone(),
                };
                let r = fleet::run(plan).await?;
                let page = |p: &str| {
                    r.pages_ms
                        .get(p)
                        .map_or("-".to_string(), |v| format!("{:.0} / {:.0}", v[0], v[1]))
                };
                println!(
                    "| {} | {} | {:.0} | {:.0} / {:.0} / {:.0} | {} | {} | {:.1} / {:.1} / {:.0} | {} / {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.0} | {:.1} / {:.1} | {} |",
                    r.edges,
                    r.compress,
                    r.ingest_rate,
                    r.ingest_ms[0],
                    r.ingest_ms[1],
                    r.ingest_ms[2],
                    r.ingest_shed,
                    r.ingest_failed,
                    r.sync_ms[0],
                    r.sync_ms[1],
                    r.sync_ms[2],
                    r.sync_shed,
                    r.sync_failed,
                    page("overview"),
                    page("services"),
                    page("findings"),
                    r.pages_shed,
                    r.cpu_cores,
                    r.bench_cpu_cores,
                    r.load_avg,
                    r.max_rss_mib,
                    r.db_mib[0],
                    r.db_mib[1],
                    if r.services_off == 0 {
                        format!("exact ({} items)", r.volumes_expected)
                    } else {
                        format!(
                            "{} services off: {} stored, {} acknowledged",
                            r.services_off, r.volumes_stored, r.volumes_expected
                        )
                    },
                );
                reports.push(r);
            }
            if let Some(p) = &a.json {
                std::fs::write(p, serde_json::to_vec_pretty(&reports)?)?;
            }
            if a.fail_on_mismatch && reports.iter().any(|r| r.services_off > 0) {
                bail!("volumes differ from what was acknowledged");
            }
        }
        Command::PromScrape {
            payload,
            scale,
            duration,
            repeat,
        } => {
            let mut rates = Vec::new();
            let mut cpu_rates = Vec::new();
            for i in 0..repeat.max(1) {
                let payload = payload.clone();
                let r = std::thread::spawn(move || prom::run(&payload, scale, duration))
                    .join()
                    .map_err(|_| anyhow::anyhow!("the scrape thread panicked"))??;
                let total = (r.samples_per_scrape * r.scrapes) as f64;
                let rate = total / r.elapsed.as_secs_f64();
                let cpu_rate = total / r.cpu.as_secs_f64().max(1e-9);
                println!(
                    "run {}: {} samples/scrape ({} bytes), {} scrapes in {:.2?}, {:.1} ms/scrape, {} OTLP points/scrape, {:.0} samples/s wall, {:.0} samples/s per CPU-second of the scrape thread",
                    i + 1,
                    r.samples_per_scrape,
                    r.body_bytes,
                    r.scrapes,
                    r.elapsed,
                    r.elapsed.as_secs_f64() * 1000.0 / r.scrapes.max(1) as f64,
                    r.points / r.scrapes.max(1),
                    rate,
                    cpu_rate,
                );
                rates.push(rate);
                cpu_rates.push(cpu_rate);
            }
            println!(
                "median: {:.0} samples/s wall, {:.0} samples/s per CPU-second (one thread)",
                median(rates),
                median(cpu_rates)
            );
        }
        Command::Summarise {
            signal,
            passes,
            batch,
            seed,
            repeat,
        } => {
            let signal = Signal::parse(&signal)
                .ok_or_else(|| anyhow::anyhow!("--signal: unknown signal `{signal}`"))?;
            let mut rates = Vec::new();
            for i in 0..repeat.max(1) {
                let r = std::thread::spawn(move || summary::run(signal, seed, batch, passes))
                    .join()
                    .map_err(|_| anyhow::anyhow!("the summarising thread panicked"))??;
                let rate = r.items as f64 / r.cpu.as_secs_f64().max(1e-9);
                println!(
                    "run {}: {} {} in {:.2} s CPU ({:.2} s wall): {:.3} M/s per CPU-second",
                    i + 1,
                    r.items,
                    signal.item_name(),
                    r.cpu.as_secs_f64(),
                    r.wall.as_secs_f64(),
                    rate / 1e6
                );
                rates.push(rate);
            }
            println!("median: {:.3} M/s per CPU-second", median(rates) / 1e6);
        }
        Command::Sink { listen, duration } => {
            let s = sink::Sink::start(listen.parse()?).await?;
            println!("sink listening on {}", s.addr);
            let until = tokio::time::Instant::now() + duration;
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(1)).await;
                println!(
                    "requests {} items {} bytes {}",
                    s.stats.requests.load(Ordering::Relaxed),
                    s.stats.items.load(Ordering::Relaxed),
                    s.stats.bytes.load(Ordering::Relaxed)
                );
            }
        }
    }
    Ok(())
}
