//! `prometheus`: serves the latest value of every metric series on a pull endpoint
//! (`GET /metrics`) for a Prometheus server to scrape, with the Collector's config fields,
//! defaults and naming (see [`crate::prom_naming`]).
//!
//! ```yaml
//! exporters:
//!   prometheus:
//!     endpoint: 0.0.0.0:8889           # required; served path /metrics
//!     namespace: shop                  # prefix of every name; default none
//!     const_labels: { region: eu }     # added to every series; default none
//!     send_timestamps: false           # write each point's timestamp; default false
//!     metric_expiration: 5m            # series not updated for this long go; default 5m
//!     resource_to_telemetry_conversion: { enabled: false }  # resource attributes as labels
//!     enable_open_metrics: false       # answer OpenMetrics when the scraper asks; default false
//!     add_metric_suffixes: true        # unit, _total and _ratio suffixes; default true
//!     translation_strategy: UnderscoreEscapingWithSuffixes  # or ...WithoutSuffixes
//! ```
//!
//! As in the Collector: monotonic sums are counters (delta sums are added up into a
//! cumulative value when each point starts where the last ended), non-monotonic
//! cumulative sums and gauges are gauges, non-monotonic delta sums and sums of unspecified
//! temporality are dropped; histograms (delta ones added up the same way) and summaries are
//! served with their `_bucket`/`_sum`/`_count` and `quantile` series. Every series carries its
//! point's attributes, `otel_scope_name`, `otel_scope_version`, `job`
//! (`service.namespace/service.name`) and `instance` (`service.instance.id`); a resource
//! with both a job and an instance also gets a `target_info` series (value 1) labelled with
//! its other attributes. A point older than the one held is ignored; a point flagged "no
//! recorded value" removes its series. A name reused with another type is dropped, with a
//! warning. Exponential histograms are not served (dropped with a warning).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::task::JoinHandle;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ComponentId, ConfigErrors,
    ConsumeError, Consumer, Counter, ExporterConfig, ExporterFactory, Payload, Signal, SignalSet,
    Stage, StartError,
};

use crate::prom_naming::{
    attrs_to_labels, format_float, instance, job, metric_name, push_label, NameKind,
};

fn default_expiration() -> Duration {
    Duration::from_secs(300)
}

fn default_true() -> bool {
    true
}

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceToTelemetry {
    /// Copy every resource attribute onto each series as a label (a point attribute of the
    /// same name wins). Default `false`.
    #[serde(default)]
    pub enabled: bool,
}

/// The `prometheus` exporter's config (the Collector's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    /// `host:port` to serve `/metrics` on (`:8889` is every interface). Required.
    #[serde(default)]
    pub endpoint: String,
    /// Prefix of every metric name. Default none.
    #[serde(default)]
    pub namespace: String,
    /// Labels added to every series. Default none.
    #[serde(default)]
    pub const_labels: BTreeMap<String, String>,
    /// Write each point's own timestamp. Default `false` (the scraper stamps the scrape).
    #[serde(default)]
    pub send_timestamps: bool,
    /// Series not updated for this long are no longer served. Default `5m`.
    #[serde(default = "default_expiration", with = "humantime_serde")]
    pub metric_expiration: Duration,
    /// Resource attributes as labels. Default off.
    #[serde(default)]
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Answer in OpenMetrics when the scraper's `Accept` asks for it. Default `false`.
    #[serde(default)]
    pub enable_open_metrics: bool,
    /// Unit, `_total` and `_ratio` suffixes. Default `true`.
    #[serde(default = "default_true")]
    pub add_metric_suffixes: bool,
    /// `UnderscoreEscapingWithSuffixes` or `UnderscoreEscapingWithoutSuffixes`; when set it
    /// takes precedence over `add_metric_suffixes`. The UTF-8 strategies are refused.
    #[serde(default)]
    pub translation_strategy: Option<String>,
}

/// Factory of the `prometheus` exporter.
pub struct PrometheusFactory;

/// A validated `prometheus` config.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    settings: PrometheusSettings,
    add_suffixes: bool,
    const_labels: Vec<(String, String)>,
}

fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ExporterFactory for PrometheusFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::of(&[Signal::Metrics])
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ExporterConfig>, ConfigErrors> {
        let s: PrometheusSettings = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if s.endpoint.trim().is_empty() {
            errors.push(
                format!("{path}.endpoint"),
                "is required (host:port to serve /metrics on, for example 0.0.0.0:8889)",
            );
        } else if listen_address(&s.endpoint).is_none() {
            errors.push(
                format!("{path}.endpoint"),
                format!("{:?} is not host:port", s.endpoint),
            );
        }
        if s.metric_expiration.is_zero() {
            errors.push(
                format!("{path}.metric_expiration"),
                "must be greater than 0",
            );
        }
        for name in s.const_labels.keys() {
            if !is_valid_label_name(name) {
                errors.push(
                    format!("{path}.const_labels.{name}"),
                    "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                );
            }
        }
        let add_suffixes = match s.translation_strategy.as_deref() {
            None | Some("") => s.add_metric_suffixes,
            Some("UnderscoreEscapingWithSuffixes") => true,
            Some("UnderscoreEscapingWithoutSuffixes") => false,
            Some(other @ ("NoUTF8EscapingWithSuffixes" | "NoTranslation")) => {
                errors.push(
                    format!("{path}.translation_strategy"),
                    format!("{other} (UTF-8 names) is not supported by weir; use UnderscoreEscapingWithSuffixes or UnderscoreEscapingWithoutSuffixes"),
                );
                true
            }
            Some(other) => {
                errors.push(
                    format!("{path}.translation_strategy"),
                    format!("invalid translation_strategy: {other}"),
                );
                true
            }
        };
        errors.into_result(())?;
        let const_labels = s
            .const_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Box::new(PrometheusConfig {
            settings: s,
            add_suffixes,
            const_labels,
        }))
    }
}

/// `host:port` (or `:port`, every interface) as a socket address string.
fn listen_address(endpoint: &str) -> Option<String> {
    let e = endpoint.trim();
    let addr = if let Some(port) = e.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        e.to_string()
    };
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    (!host.is_empty()).then_some(addr)
}

impl ExporterConfig for PrometheusConfig {
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Stage>, BuildError> {
        let labels = [
            ("exporter", ctx.id.to_string()),
            ("signal", "metrics".to_string()),
        ];
        Ok(Arc::new(PrometheusExporter {
            id: ctx.id.clone(),
            address: listen_address(&self.settings.endpoint).unwrap_or_default(),
            state: Arc::new(State {
                options: Options {
                    namespace: self.settings.namespace.clone(),
                    add_suffixes: self.add_suffixes,
                    const_labels: self.const_labels.clone(),
                    resource_labels: self.settings.resource_to_telemetry_conversion.enabled,
                    send_timestamps: self.settings.send_timestamps,
                    expiration: self.settings.metric_expiration,
                    open_metrics: self.settings.enable_open_metrics,
                },
                inner: Mutex::new(Inner::default()),
            }),
            server: Mutex::new(None),
            accepted: ctx.telemetry.counter(
                "weir_exporter_sent_items",
                "Items (log records, spans, data points) an exporter delivered upstream",
                &labels,
            ),
            dropped: ctx.telemetry.counter(
                "weir_exporter_send_failed_items",
                "Items an exporter dropped after a permanent error, exhausted retries or a partial success",
                &labels,
            ),
        }))
    }
}

struct Options {
    namespace: String,
    add_suffixes: bool,
    const_labels: Vec<(String, String)>,
    resource_labels: bool,
    send_timestamps: bool,
    expiration: Duration,
    open_metrics: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Histogram {
        count: u64,
        sum: f64,
        /// Upper bounds, as sent.
        bounds: Vec<f64>,
        /// Per-bucket (not cumulative) counts; one more than `bounds`.
        counts: Vec<u64>,
    },
    Summary {
        count: u64,
        sum: f64,
        quantiles: Vec<(f64, f64)>,
    },
}

/// Label pairs.
type Labels = Vec<(String, String)>;

struct Series {
    family: String,
    /// Sorted by name, empty values left out.
    labels: Vec<(String, String)>,
    value: Value,
    start_ns: u64,
    time_ns: u64,
    updated: Instant,
    /// `target_info` labels of the series' resource (it has a job and an instance).
    target: Option<Arc<Vec<(String, String)>>>,
}

struct Family {
    kind: Kind,
    help: String,
    seen: Instant,
}

#[derive(Default)]
struct Inner {
    series: HashMap<String, Series>,
    families: HashMap<String, Family>,
    /// Metric names already warned about (bounded), so a steady stream of one bad metric
    /// logs once.
    warned: HashSet<String>,
}

struct State {
    options: Options,
    inner: Mutex<Inner>,
}

/// Why a point was not taken.
enum Skip {
    /// Older than the point held, or no change: not an error.
    Stale,
    /// Dropped, with the reason.
    Dropped(String),
}

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

const NO_RECORDED_VALUE: u32 = 1;

impl State {
    /// Takes every point of a batch; returns (taken, dropped).
    fn accumulate(&self, resource_metrics: &[ResourceMetrics]) -> (u64, u64) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (mut taken, mut dropped) = (0u64, 0u64);
        for rm in resource_metrics {
            let resource: &[KeyValue] = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let job = job(resource);
            let instance = instance(resource);
            let target = match (&job, &instance) {
                (Some(j), Some(i)) => {
                    let rest: Vec<KeyValue> = resource
                        .iter()
                        .filter(|kv| {
                            !matches!(
                                kv.key.as_str(),
                                "service.name" | "service.namespace" | "service.instance.id"
                            )
                        })
                        .cloned()
                        .collect();
                    let mut labels = Vec::new();
                    attrs_to_labels(&rest, &mut labels);
                    set_label(&mut labels, "job", j.clone());
                    set_label(&mut labels, "instance", i.clone());
                    Some(Arc::new(finish_labels(labels)))
                }
                _ => None,
            };
            let mut resource_labels = Vec::new();
            if self.options.resource_labels {
                attrs_to_labels(resource, &mut resource_labels);
            }
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let ctx = PointContext {
                        resource_labels: &resource_labels,
                        scope: sm,
                        job: job.as_deref(),
                        instance: instance.as_deref(),
                        target: &target,
                        now,
                    };
                    let (t, d, why) = self.metric(&mut inner, m, &ctx);
                    taken += t;
                    dropped += d;
                    if let Some(why) = why {
                        if inner.warned.len() < 1000 && inner.warned.insert(m.name.clone()) {
                            tracing::warn!(metric = %m.name, "prometheus exporter: {why}; its points are dropped (logged once per metric)");
                        }
                    }
                }
            }
        }
        (taken, dropped)
    }

    fn metric(
        &self,
        inner: &mut Inner,
        m: &Metric,
        ctx: &PointContext<'_>,
    ) -> (u64, u64, Option<String>) {
        let o = &self.options;
        let name = |kind| metric_name(&m.name, &m.unit, kind, &o.namespace, o.add_suffixes);
        let (kind, family, points): (Kind, String, Vec<Point<'_>>) = match &m.data {
            None => return (0, 0, None),
            Some(Data::Gauge(g)) => (
                Kind::Gauge,
                name(NameKind::Gauge),
                g.data_points.iter().map(Point::Number).collect(),
            ),
            Some(Data::Sum(s)) => {
                let n = s.data_points.len() as u64;
                match (s.aggregation_temporality, s.is_monotonic) {
                    (0, _) => {
                        return (0, n, Some("sum of unspecified temporality".into()));
                    }
                    (1, false) => {
                        return (0, n, Some("non-monotonic delta sum".into()));
                    }
                    (t, true) => (
                        Kind::Counter,
                        name(NameKind::Counter),
                        s.data_points
                            .iter()
                            .map(|p| Point::Sum(p, t == 1))
                            .collect(),
                    ),
                    (_, false) => (
                        Kind::Gauge,
                        name(NameKind::UpDown),
                        s.data_points.iter().map(Point::Number).collect(),
                    ),
                }
            }
            Some(Data::Histogram(h)) => {
                if h.aggregation_temporality == 0 {
                    return (
                        0,
                        h.data_points.len() as u64,
                        Some("histogram of unspecified temporality".into()),
                    );
                }
                let delta = h.aggregation_temporality == 1;
                (
                    Kind::Histogram,
                    name(NameKind::Histogram),
                    h.data_points
                        .iter()
                        .map(|p| Point::Histogram(p, delta))
                        .collect(),
                )
            }
            Some(Data::Summary(s)) => (
                Kind::Summary,
                name(NameKind::Summary),
                s.data_points.iter().map(Point::Summary).collect(),
            ),
            Some(Data::ExponentialHistogram(e)) => {
                return (
                    0,
                    e.data_points.len() as u64,
                    Some("exponential histograms are not supported".into()),
                );
            }
        };
        if family.is_empty() {
            return (
                0,
                points.len() as u64,
                Some("the name is empty after translation".into()),
            );
        }
        match inner.families.get_mut(&family) {
            Some(f) if f.kind != kind => {
                return (
                    0,
                    points.len() as u64,
                    Some(format!(
                        "{family} is already a {} here, not a {}",
                        f.kind.as_str(),
                        kind.as_str()
                    )),
                );
            }
            Some(f) => f.seen = ctx.now,
            None => {
                inner.families.insert(
                    family.clone(),
                    Family {
                        kind,
                        help: m.description.clone(),
                        seen: ctx.now,
                    },
                );
            }
        }
        let (mut taken, mut dropped, mut why) = (0, 0, None);
        for p in points {
            let labels = self.labels(p.attributes(), ctx);
            let key = series_key(&family, &labels);
            if p.flags() & NO_RECORDED_VALUE != 0 {
                inner.series.remove(&key);
                taken += 1;
                continue;
            }
            match p.merge(inner.series.get(&key)) {
                Ok((value, start_ns)) => {
                    taken += 1;
                    inner.series.insert(
                        key,
                        Series {
                            family: family.clone(),
                            labels,
                            value,
                            start_ns,
                            time_ns: p.time(),
                            updated: ctx.now,
                            target: ctx.target.clone(),
                        },
                    );
                }
                Err(Skip::Stale) => taken += 1,
                Err(Skip::Dropped(reason)) => {
                    dropped += 1;
                    why = Some(reason);
                }
            }
        }
        (taken, dropped, why)
    }

    fn labels(&self, attrs: &[KeyValue], ctx: &PointContext<'_>) -> Vec<(String, String)> {
        let mut labels = Vec::with_capacity(attrs.len() + ctx.resource_labels.len() + 4);
        attrs_to_labels(attrs, &mut labels);
        for (k, v) in ctx.resource_labels {
            if !labels.iter().any(|(n, _)| n == k) {
                labels.push((k.clone(), v.clone()));
            }
        }
        if let Some(scope) = &ctx.scope.scope {
            let mut scope_attrs = Vec::new();
            attrs_to_labels(&scope.attributes, &mut scope_attrs);
            for (k, v) in scope_attrs {
                push_label(&mut labels, format!("otel_scope_{k}"), v);
            }
            set_label(&mut labels, "otel_scope_name", scope.name.clone());
            set_label(&mut labels, "otel_scope_version", scope.version.clone());
        }
        set_label(
            &mut labels,
            "otel_scope_schema_url",
            ctx.scope.schema_url.clone(),
        );
        if let Some(j) = ctx.job {
            set_label(&mut labels, "job", j.to_string());
        }
        if let Some(i) = ctx.instance {
            set_label(&mut labels, "instance", i.to_string());
        }
        for (k, v) in &self.options.const_labels {
            set_label(&mut labels, k, v.clone());
        }
        finish_labels(labels)
    }

    /// The exposition, expiring what is too old first.
    fn render(&self, open_metrics: bool) -> String {
        let now = Instant::now();
        let o = &self.options;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let expiration = o.expiration;
        inner
            .series
            .retain(|_, s| now.duration_since(s.updated) < expiration);
        inner
            .families
            .retain(|_, f| now.duration_since(f.seen) < expiration);
        let mut by_family: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
        let mut targets: BTreeMap<(String, String), &Labels> = BTreeMap::new();
        for s in inner.series.values() {
            by_family.entry(&s.family).or_default().push(s);
            if let Some(t) = &s.target {
                let get = |n: &str| {
                    t.iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                targets.entry((get("job"), get("instance"))).or_insert(t);
            }
        }
        let mut out = String::with_capacity(4096);
        if !targets.is_empty() {
            let name = if o.namespace.is_empty() {
                "target_info".to_string()
            } else {
                format!("{}_target_info", o.namespace)
            };
            let _ = writeln!(out, "# HELP {name} Target metadata");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for labels in targets.values() {
                write_sample(&mut out, &name, labels, None, "1", None);
            }
        }
        for (family, mut series) in by_family {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            let Some(f) = inner.families.get(family) else {
                continue;
            };
            let meta_name = if open_metrics && f.kind == Kind::Counter {
                family.strip_suffix("_total").unwrap_or(family)
            } else {
                family
            };
            if !f.help.is_empty() {
                let _ = writeln!(out, "# HELP {meta_name} {}", escape_help(&f.help));
            }
            let _ = writeln!(out, "# TYPE {meta_name} {}", f.kind.as_str());
            for s in series {
                let ts = o.send_timestamps.then_some(s.time_ns);
                let ts = ts.map(|ns| timestamp(ns, open_metrics));
                let ts = ts.as_deref();
                let created = (open_metrics && s.start_ns > 0).then(|| seconds(s.start_ns));
                match &s.value {
                    Value::Number(v) => {
                        let name = if open_metrics && f.kind == Kind::Counter {
                            format!("{meta_name}_total")
                        } else {
                            family.to_string()
                        };
                        write_sample(&mut out, &name, &s.labels, None, &format_float(*v), ts);
                        if f.kind == Kind::Counter {
                            if let Some(c) = &created {
                                let n = format!("{meta_name}_created");
                                write_sample(&mut out, &n, &s.labels, None, c, ts);
                            }
                        }
                    }
                    Value::Histogram {
                        count,
                        sum,
                        bounds,
                        counts,
                    } => {
                        let bucket = format!("{family}_bucket");
                        let mut order: Vec<usize> = (0..bounds.len()).collect();
                        order.sort_by(|&a, &b| bounds[a].total_cmp(&bounds[b]));
                        order.dedup_by(|a, b| bounds[*a] == bounds[*b]);
                        let mut cumulative = 0u64;
                        for i in order {
                            if bounds[i].is_infinite() && bounds[i] > 0.0 {
                                continue;
                            }
                            cumulative += counts.get(i).copied().unwrap_or(0);
                            let le = format_float(bounds[i]);
                            write_sample(
                                &mut out,
                                &bucket,
                                &s.labels,
                                Some(("le", &le)),
                                &cumulative.to_string(),
                                ts,
                            );
                        }
                        write_sample(
                            &mut out,
                            &bucket,
                            &s.labels,
                            Some(("le", "+Inf")),
                            &count.to_string(),
                            ts,
                        );
                        let n = format!("{family}_sum");
                        write_sample(&mut out, &n, &s.labels, None, &format_float(*sum), ts);
                        let n = format!("{family}_count");
                        write_sample(&mut out, &n, &s.labels, None, &count.to_string(), ts);
                        if let Some(c) = &created {
                            let n = format!("{family}_created");
                            write_sample(&mut out, &n, &s.labels, None, c, ts);
                        }
                    }
                    Value::Summary {
                        count,
                        sum,
                        quantiles,
                    } => {
                        for (q, v) in quantiles {
                            let qs = format_float(*q);
                            write_sample(
                                &mut out,
                                family,
                                &s.labels,
                                Some(("quantile", &qs)),
                                &format_float(*v),
                                ts,
                            );
                        }
                        let n = format!("{family}_sum");
                        write_sample(&mut out, &n, &s.labels, None, &format_float(*sum), ts);
                        let n = format!("{family}_count");
                        write_sample(&mut out, &n, &s.labels, None, &count.to_string(), ts);
                        if let Some(c) = &created {
                            let n = format!("{family}_created");
                            write_sample(&mut out, &n, &s.labels, None, c, ts);
                        }
                    }
                }
            }
        }
        if open_metrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

fn timestamp(ns: u64, open_metrics: bool) -> String {
    if open_metrics {
        seconds(ns / 1_000_000 * 1_000_000)
    } else {
        (ns / 1_000_000).to_string()
    }
}

/// Nanoseconds as exact decimal seconds (`1700000000.25`), as OpenMetrics writes times; a
/// float conversion would round.
fn seconds(ns: u64) -> String {
    let (secs, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return secs.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{secs}.{}", digits.trim_end_matches('0'))
}

/// Replaces (or adds) a label.
fn set_label(labels: &mut Vec<(String, String)>, name: &str, value: String) {
    match labels.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value,
        None => labels.push((name.to_string(), value)),
    }
}

/// Sorted by name, empty values left out (Prometheus treats an empty label as absent).
fn finish_labels(mut labels: Vec<(String, String)>) -> Vec<(String, String)> {
    labels.retain(|(k, v)| !k.is_empty() && !v.is_empty());
    labels.sort();
    labels
}

fn series_key(family: &str, labels: &[(String, String)]) -> String {
    let mut key = String::with_capacity(family.len() + labels.len() * 16);
    key.push_str(family);
    for (k, v) in labels {
        key.push('\u{ff}');
        key.push_str(k);
        key.push('\u{fe}');
        key.push_str(v);
    }
    key
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, &str)>,
    value: &str,
    ts: Option<&str>,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra)
        {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(v, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    if let Some(ts) = ts {
        out.push(' ');
        out.push_str(ts);
    }
    out.push('\n');
}

struct PointContext<'a> {
    resource_labels: &'a [(String, String)],
    scope: &'a ScopeMetrics,
    job: Option<&'a str>,
    instance: Option<&'a str>,
    target: &'a Option<Arc<Vec<(String, String)>>>,
    now: Instant,
}

enum Point<'a> {
    Number(&'a NumberDataPoint),
    /// A monotonic sum point; `true` when delta.
    Sum(&'a NumberDataPoint, bool),
    Histogram(&'a weir_api::otlp::metrics::v1::HistogramDataPoint, bool),
    Summary(&'a weir_api::otlp::metrics::v1::SummaryDataPoint),
}

impl Point<'_> {
    fn attributes(&self) -> &[KeyValue] {
        match self {
            Point::Number(p) | Point::Sum(p, _) => &p.attributes,
            Point::Histogram(p, _) => &p.attributes,
            Point::Summary(p) => &p.attributes,
        }
    }

    fn flags(&self) -> u32 {
        match self {
            Point::Number(p) | Point::Sum(p, _) => p.flags,
            Point::Histogram(p, _) => p.flags,
            Point::Summary(p) => p.flags,
        }
    }

    fn time(&self) -> u64 {
        match self {
            Point::Number(p) | Point::Sum(p, _) => p.time_unix_nano,
            Point::Histogram(p, _) => p.time_unix_nano,
            Point::Summary(p) => p.time_unix_nano,
        }
    }

    /// The value to hold given the one held (`prev`), and its start time.
    fn merge(&self, prev: Option<&Series>) -> Result<(Value, u64), Skip> {
        if let Some(prev) = prev {
            if self.time() < prev.time_ns {
                return Err(Skip::Stale);
            }
        }
        match *self {
            Point::Number(p) => Ok((Value::Number(number(p)), p.start_time_unix_nano)),
            Point::Sum(p, delta) => {
                let v = number(p);
                if delta {
                    if let Some(Series {
                        value: Value::Number(old),
                        time_ns,
                        start_ns,
                        ..
                    }) = prev
                    {
                        if p.start_time_unix_nano == *time_ns {
                            return Ok((Value::Number(old + v), *start_ns));
                        }
                    }
                }
                Ok((Value::Number(v), p.start_time_unix_nano))
            }
            Point::Histogram(p, delta) => {
                if p.bucket_counts.len() != p.explicit_bounds.len() + 1
                    && !p.bucket_counts.is_empty()
                {
                    return Err(Skip::Dropped(format!(
                        "histogram point has {} bucket counts for {} bounds",
                        p.bucket_counts.len(),
                        p.explicit_bounds.len()
                    )));
                }
                let value = Value::Histogram {
                    count: p.count,
                    sum: p.sum.unwrap_or(0.0),
                    bounds: p.explicit_bounds.clone(),
                    counts: p.bucket_counts.clone(),
                };
                if !delta {
                    return Ok((value, p.start_time_unix_nano));
                }
                let Some(prev) = prev else {
                    return Ok((value, p.start_time_unix_nano));
                };
                if p.start_time_unix_nano != prev.time_ns {
                    if p.start_time_unix_nano > prev.time_ns {
                        // A gap: the source restarted; start again from this point.
                        return Ok((value, p.start_time_unix_nano));
                    }
                    return Err(Skip::Dropped(
                        "delta histogram point overlaps the one held (misaligned start time)"
                            .into(),
                    ));
                }
                match &prev.value {
                    Value::Histogram {
                        count,
                        sum,
                        bounds,
                        counts,
                    } if *bounds == p.explicit_bounds && counts.len() == p.bucket_counts.len() => {
                        Ok((
                            Value::Histogram {
                                count: count + p.count,
                                sum: sum + p.sum.unwrap_or(0.0),
                                bounds: bounds.clone(),
                                counts: counts
                                    .iter()
                                    .zip(&p.bucket_counts)
                                    .map(|(a, b)| a + b)
                                    .collect(),
                            },
                            prev.start_ns,
                        ))
                    }
                    _ => Ok((value, p.start_time_unix_nano)),
                }
            }
            Point::Summary(p) => Ok((
                Value::Summary {
                    count: p.count,
                    sum: p.sum,
                    quantiles: p
                        .quantile_values
                        .iter()
                        .map(|q| (q.quantile, q.value))
                        .collect(),
                },
                p.start_time_unix_nano,
            )),
        }
    }
}

/// The running `prometheus` exporter.
pub struct PrometheusExporter {
    id: ComponentId,
    address: String,
    state: Arc<State>,
    server: Mutex<Option<JoinHandle<()>>>,
    accepted: Counter,
    dropped: Counter,
}

impl PrometheusExporter {
    /// The exposition as a scrape would get it (text format 0.0.4).
    pub fn render_text(&self) -> String {
        self.state.render(false)
    }
}

#[async_trait]
impl Consumer for PrometheusExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let Payload::Metrics(req) = batch.payload() else {
            return Ok(());
        };
        let (taken, dropped) = self.state.accumulate(&req.resource_metrics);
        self.accepted.inc_by(taken);
        self.dropped.inc_by(dropped);
        Ok(())
    }
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPEN_METRICS_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn respond(state: &State, req: &http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let plain = |status: http::StatusCode, text: &str| {
        let mut r = http::Response::new(Full::new(Bytes::from(text.to_string())));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return plain(http::StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return plain(http::StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let open_metrics = state.options.open_metrics
        && header(http::header::ACCEPT).contains("application/openmetrics-text");
    let body = state.render(open_metrics);
    let gzip = header(http::header::ACCEPT_ENCODING)
        .split(',')
        .any(|e| e.split(';').next().map(str::trim) == Some("gzip"));
    let (body, encoding) = if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match enc.write_all(body.as_bytes()).and_then(|_| enc.finish()) {
            Ok(z) => (Bytes::from(z), Some("gzip")),
            Err(_) => (Bytes::from(body), None),
        }
    } else {
        (Bytes::from(body), None)
    };
    let mut r = http::Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(if open_metrics {
            OPEN_METRICS_FORMAT
        } else {
            TEXT_FORMAT
        }),
    );
    if let Some(e) = encoding {
        h.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static(e),
        );
    }
    r
}

#[async_trait]
impl Component for PrometheusExporter {
    async fn start(&self) -> Result<(), StartError> {
        let listener = tokio::net::TcpListener::bind(&self.address)
            .await
            .map_err(|e| {
                StartError::new(&self.id, format!("cannot listen on {}", self.address), e)
            })?;
        let state = self.state.clone();
        let id = self.id.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(exporter = %id, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let r = respond(&state, &req);
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .header_read_timeout(Duration::from_secs(10))
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        tracing::info!(exporter = %self.id, address = %self.address, "serving /metrics");
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope};
    use weir_api::otlp::metrics::v1::{
        metric, summary_data_point::ValueAtQuantile, Gauge, Histogram, HistogramDataPoint, Sum,
        Summary, SummaryDataPoint,
    };
    use weir_api::otlp::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn exporter(config: serde_json::Value) -> Arc<dyn Stage> {
        let cfg = PrometheusFactory
            .parse(&config, "exporters.prometheus")
            .unwrap();
        cfg.build(&BuildContext::for_component(
            ComponentId::parse("prometheus").unwrap(),
        ))
        .unwrap()
    }

    fn state_of(config: serde_json::Value) -> State {
        let s: PrometheusSettings = serde_json::from_value(config).unwrap();
        State {
            options: Options {
                namespace: s.namespace,
                add_suffixes: s.add_metric_suffixes,
                const_labels: s.const_labels.into_iter().collect(),
                resource_labels: s.resource_to_telemetry_conversion.enabled,
                send_timestamps: s.send_timestamps,
                expiration: s.metric_expiration,
                open_metrics: s.enable_open_metrics,
            },
            inner: Mutex::new(Inner::default()),
        }
    }

    fn number_point(v: f64, start: u64, time: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn rm(metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
        vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "shop"),
                    kv("service.namespace", "eu"),
                    kv("service.instance.id", "i-1"),
                    kv("host.name", "h1"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    fn sum(name: &str, unit: &str, delta: bool, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            description: "a \\ help\nline".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: if delta { 1 } else { 2 },
                is_monotonic: true,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn text_exposition_of_every_type() {
        let st = state_of(serde_json::json!({"endpoint": ":1", "const_labels": {"region": "x"}}));
        let hist = Metric {
            name: "rpc.duration".into(),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 6,
                    sum: Some(42.5),
                    explicit_bounds: vec![10.0, 1e6],
                    bucket_counts: vec![1, 2, 3],
                    time_unix_nano: 5,
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        };
        let summary = Metric {
            name: "q".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 3,
                    sum: 9.0,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.5,
                        value: 2.0,
                    }],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let gauge = Metric {
            name: "load".into(),
            unit: "1".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![number_point(0.5, 0, 1, vec![kv("cpu", "a\"b")])],
            })),
            ..Default::default()
        };
        let (taken, dropped) = st.accumulate(&rm(vec![
            sum(
                "http.requests",
                "{request}",
                false,
                vec![number_point(7.0, 1, 2, vec![])],
            ),
            hist,
            summary,
            gauge,
        ]));
        assert_eq!((taken, dropped), (4, 0));
        let common = "instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\",region=\"x\"";
        let want = format!(
            "# HELP target_info Target metadata
# TYPE target_info gauge
target_info{{host_name=\"h1\",instance=\"i-1\",job=\"eu/shop\"}} 1
# HELP http_requests_total a \\\\ help\\nline
# TYPE http_requests_total counter
http_requests_total{{{common}}} 7
# TYPE load_ratio gauge
load_ratio{{cpu=\"a\\\"b\",{common}}} 0.5
# TYPE q summary
q{{{common},quantile=\"0.5\"}} 2
q_sum{{{common}}} 9
q_count{{{common}}} 3
# TYPE rpc_duration_milliseconds histogram
rpc_duration_milliseconds_bucket{{{common},le=\"10\"}} 1
rpc_duration_milliseconds_bucket{{{common},le=\"1e+06\"}} 3
rpc_duration_milliseconds_bucket{{{common},le=\"+Inf\"}} 6
rpc_duration_milliseconds_sum{{{common}}} 42.5
rpc_duration_milliseconds_count{{{common}}} 6
"
        );
        assert_eq!(st.render(false), want);
    }

    #[test]
    fn deltas_add_up_and_stale_points_are_ignored() {
        let st = state_of(serde_json::json!({"endpoint": ":1", "send_timestamps": true}));
        st.accumulate(&rm(vec![sum(
            "c",
            "",
            true,
            vec![number_point(2.0, 10, 20_000_000, vec![])],
        )]));
        st.accumulate(&rm(vec![sum(
            "c",
            "",
            true,
            vec![number_point(3.0, 20_000_000, 30_000_000, vec![])],
        )]));
        // Older than the one held: ignored.
        st.accumulate(&rm(vec![sum(
            "c",
            "",
            true,
            vec![number_point(100.0, 0, 25_000_000, vec![])],
        )]));
        let text = st.render(false);
        assert!(
            text.contains("c_total{instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\"} 5 30\n"),
            "{text}"
        );
        // A type conflict is dropped; no recorded value removes the series.
        let gauge = Metric {
            name: "c_total".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![number_point(1.0, 0, 1, vec![])],
            })),
            ..Default::default()
        };
        assert_eq!(st.accumulate(&rm(vec![gauge])), (0, 1));
        let mut gone = number_point(0.0, 0, 40_000_000, vec![]);
        gone.flags = NO_RECORDED_VALUE;
        st.accumulate(&rm(vec![sum("c", "", true, vec![gone])]));
        assert!(
            !st.render(false).contains("c_total{"),
            "{}",
            st.render(false)
        );
    }

    #[test]
    fn resource_attributes_namespace_and_open_metrics() {
        let st = state_of(serde_json::json!({
            "endpoint": ":1", "namespace": "ns", "enable_open_metrics": true,
            "resource_to_telemetry_conversion": {"enabled": true}, "add_metric_suffixes": false,
        }));
        st.accumulate(&rm(vec![sum(
            "bytes.out",
            "By",
            false,
            vec![number_point(
                4.0,
                1_500_000_000,
                2,
                vec![kv("host.name", "point")],
            )],
        )]));
        let text = st.render(true);
        let labels = "host_name=\"point\",instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\",service_instance_id=\"i-1\",service_name=\"shop\",service_namespace=\"eu\"";
        assert!(text.contains(&format!("# TYPE ns_bytes_out counter\nns_bytes_out_total{{{labels}}} 4\nns_bytes_out_created{{{labels}}} 1.5\n")), "{text}");
        assert!(
            text.contains("# TYPE ns_target_info gauge\nns_target_info{"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn open_metrics_times_are_exact_decimal_seconds() {
        assert_eq!(seconds(1_700_000_000_000_000_000), "1700000000");
        assert_eq!(seconds(1_700_000_000_250_000_000), "1700000000.25");
        assert_eq!(seconds(1_700_000_000_000_000_001), "1700000000.000000001");
        assert_eq!(timestamp(1_700_000_000_123_456_789, true), "1700000000.123");
        assert_eq!(timestamp(1_700_000_000_123_456_789, false), "1700000000123");
    }

    #[test]
    fn config_errors_name_their_field() {
        let err = PrometheusFactory
            .parse(
                &serde_json::json!({"metric_expiration": "0s", "const_labels": {"bad-name": "x"}, "translation_strategy": "NoTranslation"}),
                "exporters.prometheus",
            )
            .err()
            .unwrap()
            .to_string();
        for want in [
            "exporters.prometheus.endpoint: is required",
            "exporters.prometheus.metric_expiration: must be greater than 0",
            "exporters.prometheus.const_labels.bad-name: is not a Prometheus label name",
            "exporters.prometheus.translation_strategy: NoTranslation (UTF-8 names) is not supported",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
        let err = PrometheusFactory
            .parse(
                &serde_json::json!({"endpoint": ":1", "sending_queue": {}}),
                "exporters.prometheus",
            )
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("exporters.prometheus.sending_queue: unknown field"),
            "{err}"
        );
        let _ = exporter(serde_json::json!({"endpoint": "127.0.0.1:0"}));
    }
}
