//! `hostmetrics`: metrics of the host this binary runs on, read from Linux's `/proc` through the
//! `procfs` crate, with the Collector's metric names, units, types and attributes.
//!
//! ```yaml
//! receivers:
//!   hostmetrics:
//!     collection_interval: 30s   # default 1m
//!     initial_delay: 1s          # default 1s
//!     root_path: /hostfs         # where the host's / is mounted (default: /)
//!     scrapers:
//!       cpu:
//!       memory:
//!       load:
//!       disk:
//!       filesystem:
//!       network:
//!       paging:
//!       processes:
//!       process:
//!     # per scraper: `metrics: {<name>: {enabled: false}}` turns a metric off (or on)
//! ```
//!
//! Scrapers: `cpu`, `memory`, `load`, `disk`, `filesystem`, `network`, `paging`, `processes`,
//! `process` (one resource per process). Disk, network, process and filesystem take the
//! Collector's include/exclude filters. The Collector's `system` scraper is not supported yet;
//! naming it is a config error.

mod catalog;
mod config;
mod devices;
mod process;
mod system;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use procfs::FromReadSI;
use tokio::task::JoinHandle;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    Consumer, Payload, ReceiverConfig, ReceiverFactory, Signal, SignalConsumers, SignalSet,
    StartError,
};

use catalog::UNSUPPORTED_SCRAPERS;
pub use catalog::{Kind, MetricDef, SCRAPERS};
use config::{compile_filters, RawSettings, ScraperSettings};
pub use config::{Filter, Filters, HostMetricsConfig};
use devices::{disk, filesystem, network};
use process::process;
use system::{cpu, load, memory, paging, processes};

/// The Collector's scope name prefix; each scraper's scope is this plus `/internal/scraper/<name>scraper`.
pub const SCOPE_PREFIX: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver";

/// Factory of the `hostmetrics` receiver.
pub struct HostMetricsReceiverFactory;

impl ReceiverFactory for HostMetricsReceiverFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Metrics])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
        let raw: RawSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if raw.collection_interval.is_zero() {
            errors.push(
                format!("{path}.collection_interval"),
                "must be greater than 0",
            );
        }
        if raw.scrapers.is_empty() {
            errors.push(
                format!("{path}.scrapers"),
                "must specify at least one scraper",
            );
        }
        let root = match raw.root_path.as_deref() {
            None | Some("") => PathBuf::from("/"),
            Some(p) => {
                let p = PathBuf::from(p);
                if !p.join("proc").is_dir() {
                    errors.push(
                        format!("{path}.root_path"),
                        format!("{} has no proc directory", p.display()),
                    );
                }
                p
            }
        };
        let mut scrapers = Vec::new();
        for (name, settings) in &raw.scrapers {
            let spath = format!("{path}.scrapers.{name}");
            let Some((sname, defs)) = SCRAPERS.iter().find(|(n, _)| n == name) else {
                if UNSUPPORTED_SCRAPERS.contains(&name.as_str()) {
                    errors.push(spath, format!("the `{name}` scraper is not supported by weir yet (supported: cpu, memory, load, disk, filesystem, network, paging, processes, process)"));
                } else {
                    errors.push(spath, format!("unknown scraper `{name}`"));
                }
                continue;
            };
            let settings: ScraperSettings = if settings.is_null() {
                ScraperSettings::default()
            } else {
                match parse_component_config(settings, &spath) {
                    Ok(s) => s,
                    Err(e) => {
                        errors.0.extend(e.0);
                        continue;
                    }
                }
            };
            let mut enabled: BTreeSet<&'static str> = defs
                .iter()
                .filter(|d| d.default_enabled)
                .map(|d| d.name)
                .collect();
            for (metric, toggle) in &settings.metrics {
                match defs.iter().find(|d| d.name == metric) {
                    Some(d) if toggle.enabled => {
                        enabled.insert(d.name);
                    }
                    Some(d) => {
                        enabled.remove(d.name);
                    }
                    None => errors.push(
                        format!("{spath}.metrics.{metric}"),
                        format!(
                            "the `{name}` scraper has no metric `{metric}` (weir's has: {})",
                            defs.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
                        ),
                    ),
                }
            }
            let filters = compile_filters(name, &settings, &spath, &mut errors);
            scrapers.push((*sname, enabled, filters));
        }
        errors.into_result(Box::new(HostMetricsConfig {
            collection_interval: raw.collection_interval,
            initial_delay: raw.initial_delay,
            root,
            scrapers,
        }) as Box<dyn ReceiverConfig>)
    }
}

impl ReceiverConfig for HostMetricsConfig {
    fn build(
        &self,
        ctx: &BuildContext,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, BuildError> {
        let consumer = consumers
            .metrics
            .clone()
            .ok_or_else(|| BuildError::UnsupportedSignal {
                id: ctx.id.clone(),
                signal: Signal::Logs,
            })?;
        Ok(Arc::new(HostMetricsReceiver {
            id: ctx.id.clone(),
            config: self.clone(),
            consumer,
            task: Mutex::new(None),
        }))
    }
}

/// The running receiver: one task scraping every `collection_interval`.
pub struct HostMetricsReceiver {
    id: ComponentId,
    config: HostMetricsConfig,
    consumer: Arc<dyn Consumer>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl Component for HostMetricsReceiver {
    async fn start(&self) -> Result<(), StartError> {
        let id = self.id.clone();
        let config = self.config.clone();
        let consumer = self.consumer.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(config.initial_delay).await;
            let mut ticker = tokio::time::interval(config.collection_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Sums start at boot, as the Collector's scrapers say.
            let start = boot_time_ns(&config.root).unwrap_or_else(now_ns);
            loop {
                ticker.tick().await;
                let root = config.root.clone();
                let scrapers = config.scrapers.clone();
                let scoped = match tokio::task::spawn_blocking(move || {
                    scrape_all(&root, &scrapers, start, now_ns())
                })
                .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(receiver = %id, error = %e, "scrape task failed");
                        continue;
                    }
                };
                let mut scope_metrics = Vec::new();
                let mut own = Vec::new();
                let scope = |scraper: &str, metrics: Vec<Metric>| ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: format!("{SCOPE_PREFIX}/internal/scraper/{scraper}scraper"),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                };
                for (scraper, result) in scoped {
                    match result {
                        Ok((metrics, resources)) => {
                            if !metrics.is_empty() {
                                scope_metrics.push(scope(scraper, metrics));
                            }
                            for (attributes, metrics) in resources {
                                own.push(ResourceMetrics {
                                    resource: Some(Resource {
                                        attributes,
                                        ..Default::default()
                                    }),
                                    scope_metrics: vec![scope(scraper, metrics)],
                                    ..Default::default()
                                });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(receiver = %id, scraper, error = %e, "scrape failed")
                        }
                    }
                }
                let mut resource_metrics = Vec::new();
                if !scope_metrics.is_empty() {
                    resource_metrics.push(ResourceMetrics {
                        resource: Some(Default::default()),
                        scope_metrics,
                        ..Default::default()
                    });
                }
                resource_metrics.extend(own);
                if resource_metrics.is_empty() {
                    continue;
                }
                let batch = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
                    resource_metrics,
                }));
                if let Err(e) = consumer.consume(batch).await {
                    tracing::warn!(receiver = %id, error = %e, "the pipeline did not take a scrape; it is dropped");
                }
            }
        });
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// When the host booted (`btime` of /proc/stat), in nanoseconds.
fn boot_time_ns(root: &Path) -> Option<u64> {
    let ks = procfs::KernelStats::from_file(root.join("proc/stat"), &system_info()).ok()?;
    Some(ks.btime * 1_000_000_000)
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

/// Points of one metric being built: attributes and value.
struct Builder<'a> {
    enabled: &'a BTreeSet<&'static str>,
    filters: &'a Filters,
    defs: &'static [MetricDef],
    start: u64,
    time: u64,
    out: Vec<Metric>,
}

enum Val {
    I(i64),
    D(f64),
}

impl Builder<'_> {
    /// Whether the scraper's filters on `what` keep `value`.
    fn keeps(&self, what: &str, value: &str) -> bool {
        self.filters.get(what).is_none_or(|f| f.keeps(value))
    }

    fn on(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }

    fn add(&mut self, name: &str, points: Vec<(Vec<(&str, String)>, Val)>) {
        // As in the Collector, a metric without points is not sent.
        if !self.on(name) || points.is_empty() {
            return;
        }
        let Some(d) = self.defs.iter().find(|d| d.name == name) else {
            return;
        };
        let start = if d.kind == Kind::Gauge { 0 } else { self.start };
        let data_points = points
            .into_iter()
            .map(|(attrs, v)| NumberDataPoint {
                attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                start_time_unix_nano: start,
                time_unix_nano: self.time,
                value: Some(match v {
                    Val::I(i) if d.int => number_data_point::Value::AsInt(i),
                    Val::I(i) => number_data_point::Value::AsDouble(i as f64),
                    Val::D(f) if d.int => number_data_point::Value::AsInt(f as i64),
                    Val::D(f) => number_data_point::Value::AsDouble(f),
                }),
                ..Default::default()
            })
            .collect();
        let data = match d.kind {
            Kind::Gauge => metric::Data::Gauge(Gauge { data_points }),
            k => metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: k == Kind::Counter,
            }),
        };
        self.out.push(Metric {
            name: d.name.into(),
            unit: d.unit.into(),
            data: Some(data),
            ..Default::default()
        });
    }
}

/// Per scraper: the host's metrics, and metrics of resources of their own (processes).
type Scoped = Vec<(
    &'static str,
    Result<(Vec<Metric>, Vec<(Vec<KeyValue>, Vec<Metric>)>), String>,
)>;

/// Runs every configured scraper once.
pub fn scrape_all(
    root: &Path,
    scrapers: &[(&'static str, BTreeSet<&'static str>, Filters)],
    start: u64,
    time: u64,
) -> Scoped {
    let proc = root.join("proc");
    scrapers
        .iter()
        .map(|(name, enabled, filters)| {
            let defs = SCRAPERS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| *d)
                .unwrap_or(&[]);
            let mut b = Builder {
                enabled,
                filters,
                defs,
                start,
                time,
                out: Vec::new(),
            };
            let mut resources = Vec::new();
            let r = match *name {
                "process" => process(&proc, &mut b, &mut resources),
                "cpu" => cpu(&proc, &mut b),
                "memory" => memory(&proc, &mut b),
                "load" => load(&proc, &mut b),
                "disk" => disk(&proc, &mut b),
                "network" => network(&proc, &mut b),
                "processes" => processes(&proc, &mut b),
                "paging" => paging(&proc, &mut b),
                "filesystem" => filesystem(root, &proc, &mut b),
                _ => Ok(()),
            };
            (*name, r.map(|()| (b.out, resources)))
        })
        .collect()
}

fn err(file: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", file.display())
}

fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

/// What the parsers need to know of this system (boot time is not used by what we read).
fn system_info() -> procfs::ExplicitSystemInfo {
    procfs::ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: ticks_per_second(),
        page_size: procfs::page_size(),
        is_little_endian: cfg!(target_endian = "little"),
    }
}

#[cfg(test)]
mod tests {
    use super::system::swaps;

    #[test]
    fn swap_areas_are_read_and_a_bad_row_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("swaps");
        std::fs::write(
            &f,
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img   file   2097148   1024   -2\n/dev/sda2 partition 1000 0 -3\n",
        )
        .unwrap();
        assert_eq!(
            swaps(&f).unwrap(),
            vec![
                ("/swap.img".to_string(), 2097148 * 1024, 1024 * 1024),
                ("/dev/sda2".to_string(), 1000 * 1024, 0)
            ]
        );
        std::fs::write(
            &f,
            "Filename Type Size Used Priority\n/swap.img file lots 0 -2\n",
        )
        .unwrap();
        let e = swaps(&f).unwrap_err();
        assert!(
            e.ends_with("line 2: no Size in \"/swap.img file lots 0 -2\""),
            "{e}"
        );
        std::fs::write(&f, "Name Type Size Used\n").unwrap();
        assert!(swaps(&f).unwrap_err().contains("unexpected header"));
    }
}
