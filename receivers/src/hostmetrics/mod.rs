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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use procfs::{FromRead, FromReadSI};
use serde::Deserialize;
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

/// The Collector's scope name prefix; each scraper's scope is this plus `/internal/scraper/<name>scraper`.
pub const SCOPE_PREFIX: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver";

/// How a metric is typed, as in the Collector's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cumulative monotonic sum.
    Counter,
    /// A cumulative non-monotonic sum.
    UpDown,
    /// A gauge.
    Gauge,
}

/// One metric a scraper can produce: name, unit, type, and whether the Collector enables it by default.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The metric name.
    pub name: &'static str,
    /// The unit.
    pub unit: &'static str,
    /// Sum (monotonic or not) or gauge.
    pub kind: Kind,
    /// Integer (true) or double points.
    pub int: bool,
    /// Whether the metric is produced when the config does not say.
    pub default_enabled: bool,
}

const fn def(name: &'static str, unit: &'static str, kind: Kind, int: bool) -> MetricDef {
    MetricDef {
        name,
        unit,
        kind,
        int,
        default_enabled: true,
    }
}

const CPU: &[MetricDef] = &[
    def("system.cpu.time", "s", Kind::Counter, false),
    MetricDef {
        default_enabled: false,
        ..def("system.cpu.logical.count", "{cpu}", Kind::UpDown, true)
    },
    MetricDef {
        default_enabled: false,
        ..def("system.cpu.physical.count", "{cpu}", Kind::UpDown, true)
    },
];
const MEMORY: &[MetricDef] = &[
    def("system.memory.usage", "By", Kind::UpDown, true),
    MetricDef {
        default_enabled: false,
        ..def("system.memory.utilization", "1", Kind::Gauge, false)
    },
];
const LOAD: &[MetricDef] = &[
    def("system.cpu.load_average.1m", "{thread}", Kind::Gauge, false),
    def("system.cpu.load_average.5m", "{thread}", Kind::Gauge, false),
    def(
        "system.cpu.load_average.15m",
        "{thread}",
        Kind::Gauge,
        false,
    ),
];
const DISK: &[MetricDef] = &[
    def("system.disk.io", "By", Kind::Counter, true),
    def(
        "system.disk.operations",
        "{operations}",
        Kind::Counter,
        true,
    ),
    def("system.disk.io_time", "s", Kind::Counter, false),
    def("system.disk.operation_time", "s", Kind::Counter, false),
    def("system.disk.weighted_io_time", "s", Kind::Counter, false),
    def(
        "system.disk.pending_operations",
        "{operations}",
        Kind::UpDown,
        true,
    ),
    def("system.disk.merged", "{operations}", Kind::Counter, true),
];
const NETWORK: &[MetricDef] = &[
    def("system.network.packets", "{packets}", Kind::Counter, true),
    def("system.network.dropped", "{packets}", Kind::Counter, true),
    def("system.network.errors", "{errors}", Kind::Counter, true),
    def("system.network.io", "By", Kind::Counter, true),
    def(
        "system.network.connections",
        "{connections}",
        Kind::UpDown,
        true,
    ),
];
const PROCESSES: &[MetricDef] = &[
    def(
        "system.processes.created",
        "{processes}",
        Kind::Counter,
        true,
    ),
    def("system.processes.count", "{processes}", Kind::UpDown, true),
];

const PAGING: &[MetricDef] = &[
    def("system.paging.usage", "By", Kind::UpDown, true),
    def(
        "system.paging.operations",
        "{operations}",
        Kind::Counter,
        true,
    ),
    def("system.paging.faults", "{faults}", Kind::Counter, true),
    MetricDef {
        default_enabled: false,
        ..def("system.paging.utilization", "1", Kind::Gauge, false)
    },
];

const FILESYSTEM: &[MetricDef] = &[
    def("system.filesystem.usage", "By", Kind::UpDown, true),
    def(
        "system.filesystem.inodes.usage",
        "{inodes}",
        Kind::UpDown,
        true,
    ),
    MetricDef {
        default_enabled: false,
        ..def("system.filesystem.utilization", "1", Kind::Gauge, false)
    },
];

const PROCESS: &[MetricDef] = &[
    def("process.cpu.time", "s", Kind::Counter, false),
    def("process.memory.usage", "By", Kind::UpDown, true),
    def("process.memory.virtual", "By", Kind::UpDown, true),
    def("process.disk.io", "By", Kind::Counter, true),
];

/// The scrapers this receiver has, with their metrics.
pub const SCRAPERS: &[(&str, &[MetricDef])] = &[
    ("cpu", CPU),
    ("memory", MEMORY),
    ("load", LOAD),
    ("disk", DISK),
    ("network", NETWORK),
    ("paging", PAGING),
    ("processes", PROCESSES),
    ("filesystem", FILESYSTEM),
    ("process", PROCESS),
];

/// The Collector's scrapers this receiver does not have yet.
const UNSUPPORTED_SCRAPERS: &[&str] = &["system"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default = "default_interval", with = "humantime_serde")]
    collection_interval: Duration,
    #[serde(default = "default_delay", with = "humantime_serde")]
    initial_delay: Duration,
    #[serde(default)]
    root_path: Option<String>,
    #[serde(default)]
    scrapers: BTreeMap<String, serde_json::Value>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_delay() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScraperSettings {
    #[serde(default)]
    metrics: BTreeMap<String, MetricToggle>,
    include: Option<MatchSet>,
    exclude: Option<MatchSet>,
    include_devices: Option<MatchSet>,
    exclude_devices: Option<MatchSet>,
    include_fs_types: Option<MatchSet>,
    exclude_fs_types: Option<MatchSet>,
    include_mount_points: Option<MatchSet>,
    exclude_mount_points: Option<MatchSet>,
    include_virtual_filesystems: Option<bool>,
}

/// A filter as the Collector writes it: one list (which one depends on the scraper and the
/// field) and `match_type` `strict` (equal) or `regexp` (Go's unanchored match).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchSet {
    names: Option<Vec<String>>,
    devices: Option<Vec<String>>,
    interfaces: Option<Vec<String>>,
    fs_types: Option<Vec<String>>,
    mount_points: Option<Vec<String>>,
    match_type: Option<String>,
}

/// A compiled list: exact names or regular expressions.
#[derive(Debug, Clone)]
enum Matcher {
    Strict(BTreeSet<String>),
    Regexp(Vec<regex::Regex>),
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match self {
            Matcher::Strict(set) => set.contains(v),
            Matcher::Regexp(res) => res.iter().any(|r| r.is_match(v)),
        }
    }
}

/// Include and exclude lists of one thing a scraper filters on (device, interface, process
/// name, fs type, mount point): kept when included (or no include list) and not excluded.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl Filter {
    fn keeps(&self, v: &str) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(v))
            && !self.exclude.as_ref().is_some_and(|m| m.matches(v))
    }
}

/// The filters of one scraper by what they filter on.
pub type Filters = BTreeMap<&'static str, Filter>;

/// Which fields a scraper takes: (field, list key, what it filters on).
fn filter_fields(scraper: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match scraper {
        "disk" => &[
            ("include", "devices", "device"),
            ("exclude", "devices", "device"),
        ],
        "network" => &[
            ("include", "interfaces", "interface"),
            ("exclude", "interfaces", "interface"),
        ],
        "process" => &[("include", "names", "name"), ("exclude", "names", "name")],
        "filesystem" => &[
            ("include_devices", "devices", "device"),
            ("exclude_devices", "devices", "device"),
            ("include_fs_types", "fs_types", "fs_type"),
            ("exclude_fs_types", "fs_types", "fs_type"),
            ("include_mount_points", "mount_points", "mount_point"),
            ("exclude_mount_points", "mount_points", "mount_point"),
        ],
        _ => &[],
    }
}

fn compile_filters(
    scraper: &str,
    settings: &ScraperSettings,
    spath: &str,
    errors: &mut ConfigErrors,
) -> Filters {
    let given = [
        ("include", &settings.include),
        ("exclude", &settings.exclude),
        ("include_devices", &settings.include_devices),
        ("exclude_devices", &settings.exclude_devices),
        ("include_fs_types", &settings.include_fs_types),
        ("exclude_fs_types", &settings.exclude_fs_types),
        ("include_mount_points", &settings.include_mount_points),
        ("exclude_mount_points", &settings.exclude_mount_points),
    ];
    let allowed = filter_fields(scraper);
    let mut out = Filters::new();
    if let Some(v) = settings.include_virtual_filesystems {
        if scraper != "filesystem" {
            errors.push(
                format!("{spath}.include_virtual_filesystems"),
                format!("the `{scraper}` scraper has no `include_virtual_filesystems`"),
            );
        } else if v {
            out.insert("virtual", Filter::default());
        }
    }
    for (field, set) in given {
        let Some(set) = set else { continue };
        let fpath = format!("{spath}.{field}");
        let Some((_, key, what)) = allowed.iter().find(|(f, _, _)| *f == field) else {
            errors.push(
                fpath,
                format!("the `{scraper}` scraper has no `{field}` filter"),
            );
            continue;
        };
        let lists = [
            ("names", &set.names),
            ("devices", &set.devices),
            ("interfaces", &set.interfaces),
            ("fs_types", &set.fs_types),
            ("mount_points", &set.mount_points),
        ];
        let mut items = Vec::new();
        for (k, list) in lists {
            match list {
                Some(l) if k == *key => items = l.clone(),
                Some(_) => errors.push(
                    format!("{fpath}.{k}"),
                    format!("`{field}` of the `{scraper}` scraper takes `{key}`, not `{k}`"),
                ),
                None => {}
            }
        }
        let matcher = match set.match_type.as_deref() {
            Some("strict") => Matcher::Strict(items.into_iter().collect()),
            Some("regexp") => {
                let mut res = Vec::new();
                for (i, r) in items.iter().enumerate() {
                    match regex::Regex::new(r) {
                        Ok(r) => res.push(r),
                        Err(e) => errors.push(
                            format!("{fpath}.{key}[{i}]"),
                            format!("invalid regexp: {e}"),
                        ),
                    }
                }
                Matcher::Regexp(res)
            }
            Some(other) => {
                errors.push(
                    format!("{fpath}.match_type"),
                    format!("unknown match_type `{other}` (strict or regexp)"),
                );
                continue;
            }
            None => {
                errors.push(
                    format!("{fpath}.match_type"),
                    "match_type must be specified (strict or regexp)",
                );
                continue;
            }
        };
        let f = out.entry(*what).or_default();
        if field.starts_with("include") {
            f.include = Some(matcher);
        } else {
            f.exclude = Some(matcher);
        }
    }
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricToggle {
    enabled: bool,
}

/// The checked settings of a `hostmetrics` receiver.
#[derive(Debug, Clone)]
pub struct HostMetricsConfig {
    collection_interval: Duration,
    initial_delay: Duration,
    root: PathBuf,
    /// Scraper name and the names of its enabled metrics.
    scrapers: Vec<(&'static str, BTreeSet<&'static str>, Filters)>,
}

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

fn cpu(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("stat");
    let si = system_info();
    let ks = procfs::KernelStats::from_file(&f, &si).map_err(|e| err(&f, e))?;
    let tps = ticks_per_second() as f64;
    let mut points = Vec::new();
    for (i, c) in ks.cpu_time.iter().enumerate() {
        let cpu = format!("cpu{i}");
        for (state, ticks) in [
            ("user", c.user),
            ("system", c.system),
            ("idle", c.idle),
            ("interrupt", c.irq.unwrap_or(0)),
            ("nice", c.nice),
            ("softirq", c.softirq.unwrap_or(0)),
            ("steal", c.steal.unwrap_or(0)),
            ("wait", c.iowait.unwrap_or(0)),
        ] {
            points.push((
                vec![("cpu", cpu.clone()), ("state", state.to_string())],
                Val::D(ticks as f64 / tps),
            ));
        }
    }
    b.add("system.cpu.time", points);
    b.add(
        "system.cpu.logical.count",
        vec![(vec![], Val::I(ks.cpu_time.len() as i64))],
    );
    if b.on("system.cpu.physical.count") {
        // Cores: distinct (physical id, core id) pairs of /proc/cpuinfo.
        let f = proc.join("cpuinfo");
        let info = procfs::CpuInfo::from_file(&f).map_err(|e| err(&f, e))?;
        let cores: BTreeSet<(Option<&str>, Option<&str>)> = (0..info.num_cores())
            .map(|i| {
                (
                    info.get_field(i, "physical id"),
                    info.get_field(i, "core id"),
                )
            })
            .collect();
        b.add(
            "system.cpu.physical.count",
            vec![(vec![], Val::I(cores.len() as i64))],
        );
    }
    Ok(())
}

fn memory(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("meminfo");
    let m = procfs::Meminfo::from_file(&f).map_err(|e| err(&f, e))?;
    let sreclaimable = m.s_reclaimable.unwrap_or(0);
    let sunreclaim = m.s_unreclaim.unwrap_or(0);
    // As the Collector (through gopsutil) counts: cached includes reclaimable slab, and used is
    // what is neither free, buffers nor cached, so used + free + buffered + cached = total.
    let cached = m.cached + sreclaimable;
    let used = m
        .mem_total
        .saturating_sub(m.mem_free)
        .saturating_sub(m.buffers)
        .saturating_sub(cached);
    let states = [
        ("used", used),
        ("free", m.mem_free),
        ("buffered", m.buffers),
        ("cached", cached),
        ("slab_reclaimable", sreclaimable),
        ("slab_unreclaimable", sunreclaim),
    ];
    b.add(
        "system.memory.usage",
        states
            .iter()
            .map(|(s, v)| (vec![("state", s.to_string())], Val::I(*v as i64)))
            .collect(),
    );
    let total = m.mem_total.max(1) as f64;
    b.add(
        "system.memory.utilization",
        states
            .iter()
            .map(|(s, v)| (vec![("state", s.to_string())], Val::D(*v as f64 / total)))
            .collect(),
    );
    Ok(())
}

fn load(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("loadavg");
    let l = procfs::LoadAverage::from_file(&f).map_err(|e| err(&f, e))?;
    // The Collector's values are the kernel's two-decimal figures as float64.
    let exact = |v: f32| format!("{v:.2}").parse::<f64>().unwrap_or(v as f64);
    b.add(
        "system.cpu.load_average.1m",
        vec![(vec![], Val::D(exact(l.one)))],
    );
    b.add(
        "system.cpu.load_average.5m",
        vec![(vec![], Val::D(exact(l.five)))],
    );
    b.add(
        "system.cpu.load_average.15m",
        vec![(vec![], Val::D(exact(l.fifteen)))],
    );
    Ok(())
}

fn disk(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("diskstats");
    let mut stats = procfs::DiskStats::from_file(&f).map_err(|e| err(&f, e))?.0;
    stats.retain(|d| b.keeps("device", &d.name));
    let dev = |d: &procfs::DiskStat| ("device", d.name.clone());
    let rw = |d: &procfs::DiskStat, r: u64, w: u64| {
        vec![
            (
                vec![dev(d), ("direction", "read".to_string())],
                Val::I(r as i64),
            ),
            (
                vec![dev(d), ("direction", "write".to_string())],
                Val::I(w as i64),
            ),
        ]
    };
    let secs = |ms: u64| Val::D(ms as f64 / 1000.0);
    b.add(
        "system.disk.io",
        stats
            .iter()
            .flat_map(|d| rw(d, d.sectors_read * 512, d.sectors_written * 512))
            .collect(),
    );
    b.add(
        "system.disk.operations",
        stats
            .iter()
            .flat_map(|d| rw(d, d.reads, d.writes))
            .collect(),
    );
    b.add(
        "system.disk.io_time",
        stats
            .iter()
            .map(|d| (vec![dev(d)], secs(d.time_in_progress)))
            .collect(),
    );
    b.add(
        "system.disk.operation_time",
        stats
            .iter()
            .flat_map(|d| {
                [
                    (
                        vec![dev(d), ("direction", "read".to_string())],
                        secs(d.time_reading),
                    ),
                    (
                        vec![dev(d), ("direction", "write".to_string())],
                        secs(d.time_writing),
                    ),
                ]
            })
            .collect(),
    );
    b.add(
        "system.disk.weighted_io_time",
        stats
            .iter()
            .map(|d| (vec![dev(d)], secs(d.weighted_time_in_progress)))
            .collect(),
    );
    b.add(
        "system.disk.pending_operations",
        stats
            .iter()
            .map(|d| (vec![dev(d)], Val::I(d.in_progress as i64)))
            .collect(),
    );
    b.add(
        "system.disk.merged",
        stats
            .iter()
            .flat_map(|d| rw(d, d.merged, d.writes_merged))
            .collect(),
    );
    Ok(())
}

fn network(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("net/dev");
    let devs = procfs::net::InterfaceDeviceStatus::from_file(&f)
        .map_err(|e| err(&f, e))?
        .0;
    let mut devs: Vec<_> = devs.into_values().collect();
    devs.retain(|d| b.keeps("interface", &d.name));
    devs.sort_by(|a, b| a.name.cmp(&b.name));
    let pair = |name: &str, r: u64, t: u64| {
        vec![
            (
                vec![
                    ("device", name.to_string()),
                    ("direction", "receive".to_string()),
                ],
                Val::I(r as i64),
            ),
            (
                vec![
                    ("device", name.to_string()),
                    ("direction", "transmit".to_string()),
                ],
                Val::I(t as i64),
            ),
        ]
    };
    b.add(
        "system.network.packets",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_packets, d.sent_packets))
            .collect(),
    );
    b.add(
        "system.network.dropped",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_drop, d.sent_drop))
            .collect(),
    );
    b.add(
        "system.network.errors",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_errs, d.sent_errs))
            .collect(),
    );
    b.add(
        "system.network.io",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_bytes, d.sent_bytes))
            .collect(),
    );
    if b.on("system.network.connections") {
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        for file in ["net/tcp", "net/tcp6"] {
            let f = proc.join(file);
            if !f.exists() {
                continue;
            }
            let entries = procfs::net::TcpNetEntries::from_file(&f, &system_info())
                .map_err(|e| err(&f, e))?
                .0;
            for e in entries {
                *counts.entry(tcp_state(&e.state)).or_default() += 1;
            }
        }
        b.add(
            "system.network.connections",
            counts
                .into_iter()
                .map(|(s, n)| {
                    (
                        vec![("protocol", "tcp".to_string()), ("state", s.to_string())],
                        Val::I(n),
                    )
                })
                .collect(),
        );
    }
    Ok(())
}

fn tcp_state(s: &procfs::net::TcpState) -> &'static str {
    use procfs::net::TcpState as T;
    match s {
        T::Established => "ESTABLISHED",
        T::SynSent => "SYN_SENT",
        T::SynRecv | T::NewSynRecv => "SYN_RECV",
        T::FinWait1 => "FIN_WAIT1",
        T::FinWait2 => "FIN_WAIT2",
        T::TimeWait => "TIME_WAIT",
        T::Close => "CLOSE",
        T::CloseWait => "CLOSE_WAIT",
        T::LastAck => "LAST_ACK",
        T::Listen => "LISTEN",
        T::Closing => "CLOSING",
    }
}

fn processes(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("stat");
    let si = system_info();
    let ks = procfs::KernelStats::from_file(&f, &si).map_err(|e| err(&f, e))?;
    b.add(
        "system.processes.created",
        vec![(vec![], Val::I(ks.processes as i64))],
    );
    b.add(
        "system.processes.count",
        vec![
            (
                vec![("status", "running".to_string())],
                Val::I(ks.procs_running.unwrap_or(0) as i64),
            ),
            (
                vec![("status", "blocked".to_string())],
                Val::I(ks.procs_blocked.unwrap_or(0) as i64),
            ),
        ],
    );
    Ok(())
}

/// One swap area of /proc/swaps: name, size and used bytes.
fn swaps(file: &Path) -> Result<Vec<(String, u64, u64)>, String> {
    // No crate reads /proc/swaps; its layout is a header, then one whitespace-separated row
    // per area: Filename Type Size Used Priority (sizes in KiB).
    let text = std::fs::read_to_string(file).map_err(|e| err(file, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if header.first() != Some(&"Filename")
        || header.get(2) != Some(&"Size")
        || header.get(3) != Some(&"Used")
    {
        return Err(err(file, format!("unexpected header {header:?}")));
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize, what: &str| -> Result<u64, String> {
            f.get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| err(file, format!("line {}: no {what} in {line:?}", n + 2)))
        };
        let size = num(2, "Size")?;
        let used = num(3, "Used")?;
        out.push((f[0].to_string(), size * 1024, used * 1024));
    }
    Ok(out)
}

fn paging(proc: &Path, b: &mut Builder) -> Result<(), String> {
    if b.on("system.paging.usage") || b.on("system.paging.utilization") {
        let areas = swaps(&proc.join("swaps"))?;
        let states = |a: &(String, u64, u64)| {
            [("used", a.2), ("free", a.1.saturating_sub(a.2))]
                .map(|(s, v)| (a.0.clone(), s, v, a.1))
        };
        b.add(
            "system.paging.usage",
            areas
                .iter()
                .flat_map(states)
                .map(|(d, s, v, _)| {
                    (
                        vec![("device", d), ("state", s.to_string())],
                        Val::I(v as i64),
                    )
                })
                .collect(),
        );
        b.add(
            "system.paging.utilization",
            areas
                .iter()
                .flat_map(states)
                .map(|(d, s, v, t)| {
                    (
                        vec![("device", d), ("state", s.to_string())],
                        Val::D(v as f64 / t.max(1) as f64),
                    )
                })
                .collect(),
        );
    }
    let f = proc.join("vmstat");
    let vm = procfs::VmStat::from_file(&f).map_err(|e| err(&f, e))?.0;
    let get = |k: &str| vm.get(k).copied().unwrap_or(0);
    let op = |dir: &str, ty: &str, v: i64| {
        (
            vec![("direction", dir.to_string()), ("type", ty.to_string())],
            Val::I(v),
        )
    };
    b.add(
        "system.paging.operations",
        vec![
            op("page_in", "major", get("pswpin")),
            op("page_out", "major", get("pswpout")),
            op("page_in", "minor", get("pgpgin")),
            op("page_out", "minor", get("pgpgout")),
        ],
    );
    b.add(
        "system.paging.faults",
        vec![
            (
                vec![("type", "major".to_string())],
                Val::I(get("pgmajfault")),
            ),
            (
                vec![("type", "minor".to_string())],
                Val::I(get("pgfault") - get("pgmajfault")),
            ),
        ],
    );
    Ok(())
}

/// The filesystems of block devices: the types /proc/filesystems does not mark `nodev`
/// (which the Collector keeps unless `include_virtual_filesystems`), and zfs.
fn physical_types(proc: &Path) -> Result<BTreeSet<String>, String> {
    // No crate reads /proc/filesystems: one type a line, after an optional `nodev`.
    let f = proc.join("filesystems");
    let text = std::fs::read_to_string(&f).map_err(|e| err(&f, e))?;
    let mut out: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    out.insert("zfs".into());
    Ok(out)
}

fn filesystem(root: &Path, proc: &Path, b: &mut Builder) -> Result<(), String> {
    let physical = physical_types(proc)?;
    // `include_virtual_filesystems: true` keeps every mount (proc, tmpfs, cgroup, ...).
    let virtual_too = b.filters.contains_key("virtual");
    let mut f = proc.join("1/mountinfo");
    if !f.exists() {
        f = proc.join("self/mountinfo");
    }
    let mounts = procfs::process::MountInfos::from_file(&f)
        .map_err(|e| err(&f, e))?
        .0;
    let mut usage = Vec::new();
    let mut inodes = Vec::new();
    let mut utilization = Vec::new();
    for m in mounts.iter().filter(|m| {
        (virtual_too || physical.contains(&m.fs_type))
            && b.keeps("device", m.mount_source.as_deref().unwrap_or(""))
            && b.keeps("fs_type", &m.fs_type)
            && b.keeps("mount_point", &m.mount_point.display().to_string())
    }) {
        let at = root.join(m.mount_point.strip_prefix("/").unwrap_or(&m.mount_point));
        let v = match rustix::fs::statvfs(&at) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(mountpoint = %at.display(), error = %e, "statvfs failed; skipped");
                continue;
            }
        };
        let mode = if m.mount_options.contains_key("ro") {
            "ro"
        } else {
            "rw"
        };
        let attrs = |state: Option<&str>| {
            let mut a = vec![
                ("device", m.mount_source.clone().unwrap_or_default()),
                ("mode", mode.to_string()),
                ("mountpoint", m.mount_point.display().to_string()),
                ("type", m.fs_type.clone()),
            ];
            if let Some(s) = state {
                a.push(("state", s.to_string()));
            }
            a
        };
        let fr = v.f_frsize;
        let used = v.f_blocks.saturating_sub(v.f_bfree) * fr;
        let free = v.f_bavail * fr;
        let reserved = v.f_bfree.saturating_sub(v.f_bavail) * fr;
        for (s, n) in [("used", used), ("free", free), ("reserved", reserved)] {
            usage.push((attrs(Some(s)), Val::I(n as i64)));
        }
        let iused = v.f_files.saturating_sub(v.f_ffree);
        for (s, n) in [("used", iused), ("free", v.f_ffree)] {
            inodes.push((attrs(Some(s)), Val::I(n as i64)));
        }
        if used + free > 0 {
            utilization.push((attrs(None), Val::D(used as f64 / (used + free) as f64)));
        }
    }
    b.add("system.filesystem.usage", usage);
    b.add("system.filesystem.inodes.usage", inodes);
    b.add("system.filesystem.utilization", utilization);
    Ok(())
}

fn int_kv(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// User names by uid, from the host's /etc/passwd (name:password:uid:...).
fn users(root: &Path) -> BTreeMap<u32, String> {
    std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

/// One resource per process (pid, parent pid, executable name and path, command, command
/// line, owner), with its cpu time, memory and disk io. A process whose executable cannot be
/// read (kernel threads, or not ours to read) is skipped, as the Collector does.
fn process(
    proc: &Path,
    b: &mut Builder,
    resources: &mut Vec<(Vec<KeyValue>, Vec<Metric>)>,
) -> Result<(), String> {
    let users = users(proc.parent().unwrap_or(Path::new("/")));
    let tps = ticks_per_second() as f64;
    let page = procfs::page_size();
    let all = procfs::process::all_processes_with_root(proc).map_err(|e| err(proc, e))?;
    for p in all.flatten() {
        let (Ok(stat), Ok(exe)) = (p.stat(), p.exe()) else {
            continue;
        };
        // The Collector matches process filters against the executable's name.
        if !b.keeps("name", &stat.comm) {
            continue;
        }
        let cmdline = p.cmdline().unwrap_or_default();
        let owner = p
            .uid()
            .ok()
            .and_then(|u| users.get(&u).cloned())
            .unwrap_or_default();
        let attributes = vec![
            int_kv("process.pid", i64::from(stat.pid)),
            int_kv("process.parent_pid", i64::from(stat.ppid)),
            kv("process.executable.name", &stat.comm),
            kv("process.executable.path", &exe.display().to_string()),
            kv(
                "process.command",
                cmdline.first().map(String::as_str).unwrap_or(""),
            ),
            kv("process.command_line", &cmdline.join(" ")),
            kv("process.owner", &owner),
        ];
        // A process's sums start when it did (its start time is in ticks after boot).
        let started = b.start + (stat.starttime as f64 / tps * 1e9) as u64;
        let mut pb = Builder {
            enabled: b.enabled,
            filters: b.filters,
            defs: b.defs,
            start: started,
            time: b.time,
            out: Vec::new(),
        };
        let state =
            |s: &str, ticks: u64| (vec![("state", s.to_string())], Val::D(ticks as f64 / tps));
        pb.add(
            "process.cpu.time",
            vec![
                state("user", stat.utime),
                state("system", stat.stime),
                state("wait", stat.delayacct_blkio_ticks.unwrap_or(0)),
            ],
        );
        pb.add(
            "process.memory.usage",
            vec![(vec![], Val::I((stat.rss * page) as i64))],
        );
        pb.add(
            "process.memory.virtual",
            vec![(vec![], Val::I(stat.vsize as i64))],
        );
        if pb.on("process.disk.io") {
            if let Ok(io) = p.io() {
                pb.add(
                    "process.disk.io",
                    vec![
                        (
                            vec![("direction", "read".to_string())],
                            Val::I(io.read_bytes as i64),
                        ),
                        (
                            vec![("direction", "write".to_string())],
                            Val::I(io.write_bytes as i64),
                        ),
                    ],
                );
            }
        }
        if !pb.out.is_empty() {
            resources.push((attributes, pb.out));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
