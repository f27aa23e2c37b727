//! `spanmetrics`: aggregates request, error and duration (R.E.D.) metrics from spans and
//! emits them on a metrics pipeline, with the OpenTelemetry Collector's config and defaults.
//!
//! ```yaml
//! connectors:
//!   spanmetrics:
//!     histogram:
//!       explicit: {buckets: [100us, 1ms, 2ms, 6ms, 10ms, 100ms, 250ms]}
//!     dimensions:
//!       - {name: http.method, default: GET}
//!       - name: http.status_code
//!     exclude_dimensions: ['status.code']
//!     aggregation_temporality: AGGREGATION_TEMPORALITY_CUMULATIVE
//!     metrics_flush_interval: 15s
//! ```
//!
//! Every span of a resource that has `service.name` is counted in `<namespace>.calls` (a
//! monotonic sum) and observed in `<namespace>.duration` (an explicit or exponential
//! histogram in `ms` or `s`), per distinct set of dimensions: `service.name`, `span.name`,
//! `span.kind`, `status.code` (minus `exclude_dimensions`), then each configured dimension
//! found on the span, else on its resource, else its `default` (a dimension with neither is
//! left out). With `events.enabled`, span events are counted in `<namespace>.events`.
//! Series are kept per resource (keyed by all its attributes, or by
//! `resource_metrics_key_attributes`) and emitted every `metrics_flush_interval` (and once at
//! shutdown) in a scope named `spanmetricsconnector`. Cumulative series keep their start time
//! across flushes; delta series are cleared at each flush and the next one starts where the
//! last ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::Span;
use weir_api::{
    parse_component_config, Batch, BuildContext, BuildError, Component, ConfigErrors,
    ConnectorConfig, ConnectorFactory, ConsumeError, Consumer, FanOut, Payload, Signal, Stage,
    StartError,
};

/// The scope of the emitted metrics, as the collector's connector names it.
pub const SCOPE_NAME: &str = "spanmetricsconnector";
/// The default namespace (prefix) of the metric names.
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";
/// The default explicit bucket bounds, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];
/// The default largest number of buckets of an exponential histogram.
pub const DEFAULT_EXPONENTIAL_MAX_SIZE: i64 = 160;
/// The attribute of the series that takes what exceeds `aggregation_cardinality_limit`.
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";

const SERVICE_NAME: &str = "service.name";
const SPAN_NAME: &str = "span.name";
const SPAN_KIND: &str = "span.kind";
const STATUS_CODE: &str = "status.code";
const SCOPE_NAME_KEY: &str = "span.instrumentation.scope.name";
const SCOPE_VERSION_KEY: &str = "span.instrumentation.scope.version";
const RESERVED: [&str; 4] = [SERVICE_NAME, SPAN_KIND, STATUS_CODE, SPAN_NAME];
const DELTA: &str = "AGGREGATION_TEMPORALITY_DELTA";
const CUMULATIVE: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";
/// The largest scale an exponential histogram starts at (as the Collector's).
const MAX_SCALE: i32 = 20;

/// A duration as the Collector's config reads it: a Go duration string (`1m30s`, `100us`,
/// `1.5s`) or an integer count of nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::String(s) => parse_go_duration(s)
                .map(GoDuration)
                .map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(ns) => Ok(GoDuration(Duration::from_nanos(ns))),
                None => Err(serde::de::Error::custom(format!(
                    "a duration must be a non-negative number of nanoseconds or a string like \"15s\", found {n}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected a duration like \"15s\", found {other}"
            ))),
        }
    }
}

/// Parses a Go duration string (`300ms`, `1h15m`, `1.5s`, `0`); negative durations are
/// refused.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let bad = || format!("invalid duration {s:?} (expected e.g. \"15s\", \"500ms\", \"1m30s\")");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("invalid duration {s:?}: too large"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// A dimension: an attribute name and the value for spans without it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    /// The attribute looked up on the span, then its resource.
    #[serde(default)]
    pub name: String,
    /// The value when neither has it; without one the dimension is left out. A number or a
    /// boolean is taken as its text, as the Collector's loader does.
    #[serde(default, deserialize_with = "scalar_string")]
    pub default: Option<String>,
}

fn scalar_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {other}"
        ))),
    }
}

/// `histogram:` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    /// No duration histogram at all.
    pub disable: bool,
    /// `ms` (default) or `s`.
    pub unit: Option<String>,
    /// Exponential buckets.
    pub exponential: Option<ExponentialConfig>,
    /// Explicit buckets (the default, with [`DEFAULT_BUCKETS_MS`]).
    pub explicit: Option<ExplicitConfig>,
    /// Dimensions of the duration histogram only.
    pub dimensions: Vec<DimensionConfig>,
}

/// `histogram.exponential:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialConfig {
    /// The largest number of buckets (default 160).
    pub max_size: i64,
}

/// `histogram.explicit:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitConfig {
    /// Bucket bounds as durations.
    pub buckets: Option<Vec<GoDuration>>,
}

/// `exemplars:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Attach the spans (trace and span id, duration) as exemplars.
    pub enabled: bool,
    /// At most this many per data point and flush (default 5).
    pub max_per_data_point: Option<i64>,
}

/// `events:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Count span events in `<namespace>.events`.
    pub enabled: bool,
    /// Dimensions of the events metric (looked up on the span, then the event and resource).
    pub dimensions: Vec<DimensionConfig>,
}

fn default_cache_size() -> i64 {
    1000
}
fn default_temporality() -> String {
    CUMULATIVE.to_string()
}
fn default_flush() -> GoDuration {
    GoDuration(Duration::from_secs(60))
}
fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

/// The `spanmetrics` connector's settings, with the Collector's names and defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanMetricsSettings {
    /// Dimensions of every metric, after the four defaults.
    #[serde(default)]
    pub dimensions: Vec<DimensionConfig>,
    /// Dimensions of the calls metric only.
    #[serde(default)]
    pub calls_dimensions: Vec<DimensionConfig>,
    /// Default dimensions to leave out.
    #[serde(default, deserialize_with = "weir_api::config::string_list")]
    pub exclude_dimensions: Vec<String>,
    /// Deprecated in the Collector (a cache of attribute sets); must be positive when given.
    #[serde(default)]
    pub dimensions_cache_size: Option<i64>,
    /// How many resources are kept (least recently used dropped first); default 1000.
    #[serde(default = "default_cache_size")]
    pub resource_metrics_cache_size: i64,
    /// The resource attributes that identify a resource (default: all).
    #[serde(default, deserialize_with = "weir_api::config::string_list")]
    pub resource_metrics_key_attributes: Vec<String>,
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE` (default) or `AGGREGATION_TEMPORALITY_DELTA`.
    #[serde(default = "default_temporality")]
    pub aggregation_temporality: String,
    /// The duration histogram.
    #[serde(default)]
    pub histogram: HistogramConfig,
    /// How often metrics are emitted (default 60s).
    #[serde(default = "default_flush")]
    pub metrics_flush_interval: GoDuration,
    /// Cumulative series of a resource not seen for this long are dropped (0: never).
    #[serde(default)]
    pub metrics_expiration: Option<GoDuration>,
    /// How many delta series' last flush times are kept (default 1000).
    #[serde(default)]
    pub metric_timestamp_cache_size: Option<i64>,
    /// The prefix of the metric names (default `traces.span.metrics`; empty: none).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Exemplars.
    #[serde(default)]
    pub exemplars: ExemplarsConfig,
    /// The events metric.
    #[serde(default)]
    pub events: EventsConfig,
    /// Scopes whose name and version become dimensions.
    #[serde(default, deserialize_with = "weir_api::config::string_list")]
    pub include_instrumentation_scope: Vec<String>,
    /// At most this many series per metric and resource; more go to one overflow series
    /// (0: no limit).
    #[serde(default)]
    pub aggregation_cardinality_limit: i64,
    /// Accepted; Weir always copies the span resource's attributes to the metrics' resource
    /// (the Collector's default while its `excludeResourceMetrics` feature gate is off).
    #[serde(default)]
    pub add_resource_attributes: bool,
}

/// Factory of the `spanmetrics` connector.
pub struct SpanMetricsFactory;

impl ConnectorFactory for SpanMetricsFactory {
    fn pairs(&self) -> Vec<(Signal, Signal)> {
        vec![(Signal::Traces, Signal::Metrics)]
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ConnectorConfig>, ConfigErrors> {
        let settings: SpanMetricsSettings = parse_component_config(config, path)?;
        let plan = compile(&settings, path)?;
        Ok(Box::new(SpanMetrics {
            plan: Arc::new(plan),
        }))
    }
}

/// The histogram kind.
#[derive(Debug, Clone)]
enum HistKind {
    Explicit(Arc<[f64]>),
    Exponential(usize),
}

/// The validated settings.
#[derive(Debug, Clone)]
struct Plan {
    dims: Vec<DimensionConfig>,
    calls_dims: Vec<DimensionConfig>,
    hist_dims: Vec<DimensionConfig>,
    event_dims: Vec<DimensionConfig>,
    exclude: Vec<String>,
    key_attributes: Vec<String>,
    resource_cache: usize,
    timestamp_cache: usize,
    delta: bool,
    histogram: Option<HistKind>,
    /// Nanoseconds per unit of the histogram.
    unit_nanos: f64,
    unit: &'static str,
    flush: Duration,
    expiration: Duration,
    calls_name: String,
    duration_name: String,
    events_name: String,
    events: bool,
    exemplars: Option<usize>,
    scopes: Vec<String>,
    cardinality_limit: usize,
}

fn check_dims(
    errors: &mut ConfigErrors,
    path: &str,
    field: &str,
    dims: &[DimensionConfig],
    seen: &mut Vec<String>,
) {
    for (i, d) in dims.iter().enumerate() {
        if d.name.is_empty() {
            errors.push(
                format!("{path}.{field}[{i}].name"),
                "dimension name missing",
            );
        } else if seen.contains(&d.name) {
            errors.push(
                format!("{path}.{field}[{i}].name"),
                format!("duplicate dimension name {}", d.name),
            );
        } else {
            seen.push(d.name.clone());
        }
    }
}

fn positive(errors: &mut ConfigErrors, path: &str, field: &str, v: i64) -> usize {
    if v <= 0 {
        errors.push(
            format!("{path}.{field}"),
            format!("must be a positive number, found {v}"),
        );
        return 1;
    }
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn compile(s: &SpanMetricsSettings, path: &str) -> Result<Plan, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let reserved: Vec<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    let mut seen = reserved.clone();
    check_dims(&mut errors, path, "dimensions", &s.dimensions, &mut seen);
    let base = seen.clone();
    check_dims(
        &mut errors,
        path,
        "calls_dimensions",
        &s.calls_dimensions,
        &mut seen.clone(),
    );
    check_dims(
        &mut errors,
        path,
        "histogram.dimensions",
        &s.histogram.dimensions,
        &mut base.clone(),
    );
    if s.events.enabled {
        if s.events.dimensions.is_empty() {
            errors.push(
                format!("{path}.events.dimensions"),
                "no dimensions configured for events (required when events.enabled is true)",
            );
        }
        check_dims(
            &mut errors,
            path,
            "events.dimensions",
            &s.events.dimensions,
            &mut base.clone(),
        );
    }
    if let Some(n) = s.dimensions_cache_size {
        positive(&mut errors, path, "dimensions_cache_size", n);
    }
    let resource_cache = positive(
        &mut errors,
        path,
        "resource_metrics_cache_size",
        s.resource_metrics_cache_size,
    );
    let delta = match s.aggregation_temporality.as_str() {
        DELTA => true,
        CUMULATIVE => false,
        other => {
            errors.push(
                format!("{path}.aggregation_temporality"),
                format!("must be {CUMULATIVE} or {DELTA}, found {other:?}"),
            );
            false
        }
    };
    let timestamp_cache = match s.metric_timestamp_cache_size {
        Some(n) if delta => positive(&mut errors, path, "metric_timestamp_cache_size", n),
        _ => 1000,
    };
    let (unit, unit_nanos, seconds) = match s.histogram.unit.as_deref() {
        None | Some("ms") => ("ms", 1e6, false),
        Some("s") => ("s", 1e9, true),
        Some(other) => {
            errors.push(
                format!("{path}.histogram.unit"),
                format!("unknown unit {other:?}: must be ms or s"),
            );
            ("ms", 1e6, false)
        }
    };
    if s.histogram.explicit.is_some() && s.histogram.exponential.is_some() {
        errors.push(
            format!("{path}.histogram"),
            "use either `explicit` or `exponential` buckets histogram",
        );
    }
    let histogram = if s.histogram.disable {
        None
    } else if let Some(e) = &s.histogram.exponential {
        let max = if e.max_size == 0 {
            DEFAULT_EXPONENTIAL_MAX_SIZE
        } else {
            e.max_size
        };
        Some(HistKind::Exponential(positive(
            &mut errors,
            path,
            "histogram.exponential.max_size",
            max,
        )))
    } else {
        let bounds: Vec<f64> = match s
            .histogram
            .explicit
            .as_ref()
            .and_then(|e| e.buckets.as_ref())
        {
            Some(list) => list
                .iter()
                .map(|d| d.0.as_nanos() as f64 / unit_nanos)
                .collect(),
            None if seconds => DEFAULT_BUCKETS_MS.iter().map(|b| b / 1000.0).collect(),
            None => DEFAULT_BUCKETS_MS.to_vec(),
        };
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            errors.push(
                format!("{path}.histogram.explicit.buckets"),
                "bucket bounds must be in increasing order",
            );
        }
        Some(HistKind::Explicit(bounds.into()))
    };
    let flush = s.metrics_flush_interval.0;
    if flush.is_zero() {
        errors.push(
            format!("{path}.metrics_flush_interval"),
            "must be a positive duration",
        );
    }
    let exemplars = if s.exemplars.enabled {
        match s.exemplars.max_per_data_point {
            None => Some(5),
            Some(n) if n < 0 => {
                errors.push(
                    format!("{path}.exemplars.max_per_data_point"),
                    format!("must not be negative, found {n}"),
                );
                None
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    } else {
        None
    };
    if s.aggregation_cardinality_limit < 0 {
        errors.push(
            format!("{path}.aggregation_cardinality_limit"),
            format!(
                "invalid aggregation_cardinality_limit: {}, the limit should be positive",
                s.aggregation_cardinality_limit
            ),
        );
    }
    // Names other than the four default dimensions exclude nothing (as in the Collector).
    let name = |n: &str| {
        if s.namespace.is_empty() {
            n.to_string()
        } else {
            format!("{}.{n}", s.namespace)
        }
    };
    let plan = Plan {
        dims: s.dimensions.clone(),
        calls_dims: s.calls_dimensions.clone(),
        hist_dims: s.histogram.dimensions.clone(),
        event_dims: s.events.dimensions.clone(),
        exclude: s.exclude_dimensions.clone(),
        key_attributes: s.resource_metrics_key_attributes.clone(),
        resource_cache,
        timestamp_cache,
        delta,
        histogram,
        unit_nanos,
        unit,
        flush,
        expiration: s.metrics_expiration.map(|d| d.0).unwrap_or_default(),
        calls_name: name("calls"),
        duration_name: name("duration"),
        events_name: name("events"),
        events: s.events.enabled,
        exemplars,
        scopes: s.include_instrumentation_scope.clone(),
        cardinality_limit: usize::try_from(s.aggregation_cardinality_limit.max(0))
            .unwrap_or(usize::MAX),
    };
    errors.into_result(plan)
}

/// A validated `spanmetrics` connector.
pub struct SpanMetrics {
    plan: Arc<Plan>,
}

impl ConnectorConfig for SpanMetrics {
    fn build(
        &self,
        ctx: &BuildContext,
        _from: Signal,
        _to: Signal,
        outputs: Vec<(String, Arc<dyn Consumer>)>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        Ok(Arc::new(SpanMetricsStage {
            inner: Arc::new(Inner {
                id: ctx.id.to_string(),
                plan: self.plan.clone(),
                state: Mutex::new(State::default()),
                next: FanOut::of(outputs.into_iter().map(|(_, c)| c).collect()),
            }),
            ticker: Mutex::new(None),
        }))
    }
}

/// The running connector.
pub struct SpanMetricsStage {
    inner: Arc<Inner>,
    ticker: Mutex<Option<(tokio::task::JoinHandle<()>, Arc<tokio::sync::Notify>)>>,
}

struct Inner {
    id: String,
    plan: Arc<Plan>,
    state: Mutex<State>,
    next: Arc<dyn Consumer>,
}

/// An exponential histogram: positive buckets at a scale lowered as needed to stay within
/// `max_size` buckets.
#[derive(Debug, Clone)]
struct ExpoHist {
    max_size: usize,
    scale: i32,
    /// Index of `counts[0]`.
    offset: i64,
    counts: Vec<u64>,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl ExpoHist {
    fn new(max_size: usize) -> Self {
        ExpoHist {
            max_size,
            scale: MAX_SCALE,
            offset: 0,
            counts: Vec::new(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The bucket index of `v` (> 0) at `scale`: bucket `i` holds `(base^i, base^(i+1)]`.
    fn index(v: f64, scale: i32) -> i64 {
        let bits = v.to_bits();
        let raw_exp = ((bits >> 52) & 0x7ff) as i64;
        let mantissa = bits & ((1u64 << 52) - 1);
        // Exact powers of two sit at the top of a bucket.
        if mantissa == 0 && raw_exp != 0 {
            let exp = raw_exp - 1023;
            return if scale >= 0 {
                (exp << scale) - 1
            } else {
                (exp - 1) >> (-scale)
            };
        }
        if scale > 0 {
            let factor = f64::from(2u32.pow(scale as u32)) / std::f64::consts::LN_2;
            (v.ln() * factor).ceil() as i64 - 1
        } else {
            // log2 rounded up, minus one, shifted down.
            let exp = v.log2().ceil() as i64 - 1;
            exp >> (-scale)
        }
    }

    fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if v <= 0.0 {
            self.zero_count += 1;
            return;
        }
        let mut idx = Self::index(v, self.scale);
        if self.counts.is_empty() {
            self.offset = idx;
            self.counts.push(1);
            return;
        }
        // Downscale until the new index fits.
        loop {
            let lo = self.offset.min(idx);
            let hi = (self.offset + self.counts.len() as i64 - 1).max(idx);
            if (hi - lo + 1) as usize <= self.max_size {
                break;
            }
            self.downscale();
            idx = Self::index(v, self.scale);
        }
        if idx < self.offset {
            let grow = (self.offset - idx) as usize;
            let mut counts = vec![0; grow];
            counts.extend_from_slice(&self.counts);
            self.counts = counts;
            self.offset = idx;
        }
        let at = (idx - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += 1;
    }

    fn downscale(&mut self) {
        self.scale -= 1;
        let new_offset = self.offset >> 1;
        let mut counts: Vec<u64> = Vec::new();
        for (i, c) in self.counts.iter().enumerate() {
            let idx = ((self.offset + i as i64) >> 1) - new_offset;
            let idx = idx as usize;
            if idx >= counts.len() {
                counts.resize(idx + 1, 0);
            }
            counts[idx] += c;
        }
        self.offset = new_offset;
        self.counts = counts;
    }
}

#[derive(Debug, Clone)]
enum HistState {
    Explicit {
        bounds: Arc<[f64]>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
    Exponential(ExpoHist),
}

impl HistState {
    fn new(kind: &HistKind) -> Self {
        match kind {
            HistKind::Explicit(bounds) => HistState::Explicit {
                counts: vec![0; bounds.len() + 1],
                bounds: bounds.clone(),
                count: 0,
                sum: 0.0,
            },
            HistKind::Exponential(max) => HistState::Exponential(ExpoHist::new(*max)),
        }
    }

    fn observe(&mut self, v: f64) {
        match self {
            HistState::Explicit {
                bounds,
                counts,
                count,
                sum,
            } => {
                *count += 1;
                *sum += v;
                // The first bucket whose upper bound is >= v.
                let i = bounds.partition_point(|b| *b < v);
                counts[i] += 1;
            }
            HistState::Exponential(h) => h.observe(v),
        }
    }
}

/// One series: its attributes, start time, value and exemplars.
#[derive(Debug, Clone)]
struct Series<V> {
    attributes: Vec<KeyValue>,
    start: u64,
    value: V,
    exemplars: Vec<Exemplar>,
}

/// The series of one metric of one resource, in order of first sight.
#[derive(Debug, Clone)]
struct MetricSeries<V> {
    index: HashMap<Vec<u8>, usize>,
    series: Vec<(Vec<u8>, Series<V>)>,
    overflow: Option<usize>,
}

impl<V> Default for MetricSeries<V> {
    fn default() -> Self {
        MetricSeries {
            index: HashMap::new(),
            series: Vec::new(),
            overflow: None,
        }
    }
}

impl<V> MetricSeries<V> {
    /// The series of `key`, created with `attrs` and `init` (or the overflow series when
    /// `limit` distinct series exist already).
    fn get_or_create(
        &mut self,
        key: Vec<u8>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
        start: u64,
        limit: usize,
        init: impl FnOnce() -> V,
    ) -> &mut Series<V> {
        if let Some(&i) = self.index.get(&key) {
            return &mut self.series[i].1;
        }
        let distinct = self.series.len() - usize::from(self.overflow.is_some());
        if limit > 0 && distinct >= limit {
            let i = match self.overflow {
                Some(i) => i,
                None => {
                    self.series.push((
                        Vec::new(),
                        Series {
                            attributes: vec![KeyValue {
                                key: OVERFLOW_KEY.into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::BoolValue(true)),
                                }),
                                ..Default::default()
                            }],
                            start,
                            value: init(),
                            exemplars: Vec::new(),
                        },
                    ));
                    self.overflow = Some(self.series.len() - 1);
                    self.series.len() - 1
                }
            };
            return &mut self.series[i].1;
        }
        self.index.insert(key.clone(), self.series.len());
        self.series.push((
            key,
            Series {
                attributes: attrs(),
                start,
                value: init(),
                exemplars: Vec::new(),
            },
        ));
        let last = self.series.len() - 1;
        &mut self.series[last].1
    }
}

/// The series of one resource.
struct ResourceEntry {
    attributes: Vec<KeyValue>,
    calls: MetricSeries<u64>,
    durations: MetricSeries<HistState>,
    events: MetricSeries<u64>,
    last_seen: Instant,
    last_used: u64,
}

#[derive(Default)]
struct State {
    resources: HashMap<Vec<u8>, ResourceEntry>,
    order: Vec<Vec<u8>>,
    tick: u64,
    /// Delta series: the time of their last flush, by metric key (least recently used
    /// dropped beyond the cache size).
    last_delta: HashMap<Vec<u8>, (u64, u64)>,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn str_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn attr(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

fn find<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    list.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The string form of a value, as the Collector's `AsString` gives it (for series keys).
fn as_string(v: &AnyValue) -> String {
    weir_filter::ottl::value::any_as_string(Some(v))
}

/// A byte key of a resource's identifying attributes (independent of their order).
fn resource_key(attrs: &[KeyValue], only: &[String]) -> Vec<u8> {
    use prost::Message;
    let mut sorted: Vec<&KeyValue> = attrs
        .iter()
        .filter(|kv| only.is_empty() || only.contains(&kv.key))
        .collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::new();
    for kv in sorted {
        let bytes = kv.encode_to_vec();
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

impl Plan {
    /// The key and the attributes of a span's series for `extra` dimensions, looked up on
    /// the span, then on `fallback` (the resource, or the event and resource).
    fn series(
        &self,
        service: &str,
        span: &Span,
        scope: Option<&InstrumentationScope>,
        extra: &[&[DimensionConfig]],
        fallback: &[&[KeyValue]],
    ) -> (Vec<u8>, Vec<KeyValue>) {
        let mut key = Vec::new();
        let mut attrs = Vec::new();
        let mut push = |k: &str, v: AnyValue, key: &mut Vec<u8>| {
            if !key.is_empty() {
                key.push(0);
            }
            key.extend_from_slice(as_string(&v).as_bytes());
            attrs.push(attr(k, v));
        };
        let kind = weir_api::otlp::trace::v1::span::SpanKind::try_from(span.kind)
            .map(|k| k.as_str_name())
            .unwrap_or("");
        let code = span.status.as_ref().map(|s| s.code).unwrap_or_default();
        let status = weir_api::otlp::trace::v1::status::StatusCode::try_from(code)
            .map(|c| c.as_str_name())
            .unwrap_or("");
        for (k, v) in [
            (SERVICE_NAME, service),
            (SPAN_NAME, span.name.as_str()),
            (SPAN_KIND, kind),
            (STATUS_CODE, status),
        ] {
            if !self.exclude.iter().any(|e| e == k) {
                push(k, str_value(v), &mut key);
            }
        }
        for dims in extra {
            for d in *dims {
                let found = find(&span.attributes, &d.name)
                    .or_else(|| fallback.iter().find_map(|list| find(list, &d.name)))
                    .cloned()
                    .or_else(|| d.default.as_deref().map(str_value));
                if let Some(v) = found {
                    push(&d.name, v, &mut key);
                }
            }
        }
        if let Some(scope) = scope {
            if !scope.name.is_empty() && self.scopes.contains(&scope.name) {
                attrs.push(attr(SCOPE_NAME_KEY, str_value(&scope.name)));
                if !scope.version.is_empty() {
                    attrs.push(attr(SCOPE_VERSION_KEY, str_value(&scope.version)));
                }
                key.push(0);
                key.extend_from_slice(scope.name.as_bytes());
                key.push(0);
                key.extend_from_slice(scope.version.as_bytes());
            }
        }
        (key, attrs)
    }
}

fn exemplar_of(span: &Span, value: f64) -> Exemplar {
    Exemplar {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        value: Some(exemplar::Value::AsDouble(value)),
        ..Default::default()
    }
}

impl Inner {
    /// Aggregates the spans of one request.
    fn aggregate(&self, payload: &Payload) {
        let Payload::Traces(req) = payload else {
            return;
        };
        let plan = &*self.plan;
        let now = now_nanos();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for rs in &req.resource_spans {
            let res_attrs: &[KeyValue] = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let Some(service) = find(res_attrs, SERVICE_NAME) else {
                continue;
            };
            let service = match &service.value {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => as_string(service),
            };
            let rkey = resource_key(res_attrs, &plan.key_attributes);
            state.tick += 1;
            let tick = state.tick;
            if !state.resources.contains_key(&rkey) {
                // Least recently used resources go first beyond the cache size.
                while state.resources.len() >= plan.resource_cache {
                    let Some(oldest) = state
                        .resources
                        .iter()
                        .min_by_key(|(_, e)| e.last_used)
                        .map(|(k, _)| k.clone())
                    else {
                        break;
                    };
                    state.resources.remove(&oldest);
                    state.order.retain(|k| k != &oldest);
                }
                state.order.push(rkey.clone());
                state.resources.insert(
                    rkey.clone(),
                    ResourceEntry {
                        attributes: res_attrs.to_vec(),
                        calls: MetricSeries::default(),
                        durations: MetricSeries::default(),
                        events: MetricSeries::default(),
                        last_seen: Instant::now(),
                        last_used: tick,
                    },
                );
            }
            let Some(entry) = state.resources.get_mut(&rkey) else {
                continue;
            };
            entry.last_seen = Instant::now();
            entry.last_used = tick;
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref();
                for span in &ss.spans {
                    let duration = if span.end_time_unix_nano > span.start_time_unix_nano {
                        (span.end_time_unix_nano - span.start_time_unix_nano) as f64
                            / plan.unit_nanos
                    } else {
                        0.0
                    };
                    let has_trace = span.trace_id.iter().any(|b| *b != 0);
                    let limit = plan.cardinality_limit;
                    let (key, attrs) = plan.series(
                        &service,
                        span,
                        scope,
                        &[&plan.dims, &plan.calls_dims],
                        &[res_attrs],
                    );
                    let s = entry
                        .calls
                        .get_or_create(key, || attrs, now, limit, || 0u64);
                    s.value += 1;
                    if let Some(max) = plan.exemplars {
                        if has_trace && s.exemplars.len() < max {
                            s.exemplars.push(exemplar_of(span, duration));
                        }
                    }
                    if let Some(kind) = &plan.histogram {
                        let (key, attrs) = plan.series(
                            &service,
                            span,
                            scope,
                            &[&plan.dims, &plan.hist_dims],
                            &[res_attrs],
                        );
                        let h = entry.durations.get_or_create(
                            key,
                            || attrs,
                            now,
                            limit,
                            || HistState::new(kind),
                        );
                        h.value.observe(duration);
                        if let Some(max) = plan.exemplars {
                            if has_trace && h.exemplars.len() < max {
                                h.exemplars.push(exemplar_of(span, duration));
                            }
                        }
                    }
                    if plan.events {
                        for event in &span.events {
                            let (key, attrs) = plan.series(
                                &service,
                                span,
                                scope,
                                &[&plan.dims, &plan.event_dims],
                                &[&event.attributes, res_attrs],
                            );
                            let e = entry
                                .events
                                .get_or_create(key, || attrs, now, limit, || 0u64);
                            e.value += 1;
                            if let Some(max) = plan.exemplars {
                                if has_trace && e.exemplars.len() < max {
                                    e.exemplars.push(exemplar_of(span, duration));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Builds the metrics of every kept resource and resets what the temporality says.
    fn build(&self) -> ExportMetricsServiceRequest {
        let plan = &*self.plan;
        let now = now_nanos();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        let temporality = if plan.delta {
            AggregationTemporality::Delta
        } else {
            AggregationTemporality::Cumulative
        } as i32;
        let mut out = ExportMetricsServiceRequest::default();
        let mut touched: Vec<Vec<u8>> = Vec::new();
        // The start time of a series: for delta, the end of its last flush when known.
        let mut start_of = |key: &[u8], start: u64, last: &HashMap<Vec<u8>, (u64, u64)>| {
            if plan.delta {
                touched.push(key.to_vec());
                if let Some((t, _)) = last.get(key) {
                    return *t;
                }
            }
            start
        };
        for rkey in &state.order {
            let Some(entry) = state.resources.get_mut(rkey) else {
                continue;
            };
            let mut metrics = Vec::new();
            let sum = |series: &mut MetricSeries<u64>,
                       name: &str,
                       start_of: &mut dyn FnMut(&[u8], u64) -> u64| {
                Metric {
                    name: name.to_string(),
                    data: Some(Data::Sum(Sum {
                        data_points: series
                            .series
                            .iter_mut()
                            .map(|(k, s)| NumberDataPoint {
                                attributes: s.attributes.clone(),
                                start_time_unix_nano: start_of(k, s.start),
                                time_unix_nano: now,
                                value: Some(number_data_point::Value::AsInt(
                                    i64::try_from(s.value).unwrap_or(i64::MAX),
                                )),
                                exemplars: take_exemplars(&mut s.exemplars, now),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: temporality,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }
            };
            let last = &state.last_delta;
            let mut so = |k: &[u8], s: u64| start_of(k, s, last);
            metrics.push(sum(&mut entry.calls, &plan.calls_name, &mut so));
            if plan.histogram.is_some() {
                let mut explicit = Vec::new();
                let mut expo = Vec::new();
                for (k, s) in entry.durations.series.iter_mut() {
                    let start = so(k, s.start);
                    let exemplars = take_exemplars(&mut s.exemplars, now);
                    match &s.value {
                        HistState::Explicit {
                            bounds,
                            counts,
                            count,
                            sum,
                        } => explicit.push(HistogramDataPoint {
                            attributes: s.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count: *count,
                            sum: Some(*sum),
                            bucket_counts: counts.clone(),
                            explicit_bounds: bounds.to_vec(),
                            exemplars,
                            ..Default::default()
                        }),
                        HistState::Exponential(h) => expo.push(ExponentialHistogramDataPoint {
                            attributes: s.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count: h.count,
                            sum: Some(h.sum),
                            scale: h.scale,
                            zero_count: h.zero_count,
                            positive: Some(Buckets {
                                offset: i32::try_from(h.offset).unwrap_or(i32::MAX),
                                bucket_counts: h.counts.clone(),
                            }),
                            negative: Some(Buckets::default()),
                            min: (h.count > 0).then_some(h.min),
                            max: (h.count > 0).then_some(h.max),
                            exemplars,
                            ..Default::default()
                        }),
                    }
                }
                let data = match plan.histogram {
                    Some(HistKind::Exponential(_)) => {
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: expo,
                            aggregation_temporality: temporality,
                        })
                    }
                    _ => Data::Histogram(Histogram {
                        data_points: explicit,
                        aggregation_temporality: temporality,
                    }),
                };
                metrics.push(Metric {
                    name: plan.duration_name.clone(),
                    unit: plan.unit.to_string(),
                    data: Some(data),
                    ..Default::default()
                });
            }
            if plan.events {
                metrics.push(sum(&mut entry.events, &plan.events_name, &mut so));
            }
            out.resource_metrics.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes: entry.attributes.clone(),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        if plan.delta {
            state.tick += 1;
            let tick = state.tick;
            for k in touched {
                state.last_delta.insert(k, (now, tick));
            }
            while state.last_delta.len() > plan.timestamp_cache {
                let Some(oldest) = state
                    .last_delta
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                state.last_delta.remove(&oldest);
            }
            state.resources.clear();
            state.order.clear();
        } else if !plan.expiration.is_zero() {
            let expired: Vec<Vec<u8>> = state
                .resources
                .iter()
                .filter(|(_, e)| e.last_seen.elapsed() >= plan.expiration)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                state.resources.remove(&k);
                state.order.retain(|o| o != &k);
            }
        }
        out
    }

    async fn flush(&self) {
        let metrics = self.build();
        if metrics.resource_metrics.is_empty() {
            return;
        }
        if let Err(e) = self
            .next
            .consume(Batch::new(Payload::Metrics(metrics)))
            .await
        {
            tracing::error!(connector = %self.id, error = %e, "spanmetrics: the metrics pipeline refused the flushed metrics");
        }
    }
}

/// The exemplars of one flush, stamped with its time; cleared for the next.
fn take_exemplars(list: &mut Vec<Exemplar>, now: u64) -> Vec<Exemplar> {
    let mut out = std::mem::take(list);
    for e in &mut out {
        e.time_unix_nano = now;
    }
    out
}

impl SpanMetricsStage {
    /// Emits the current metrics now (as a flush tick does).
    pub async fn flush(&self) {
        self.inner.flush().await;
    }
}

#[async_trait]
impl Consumer for SpanMetricsStage {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.inner.aggregate(batch.payload());
        Ok(())
    }
}

#[async_trait]
impl Component for SpanMetricsStage {
    async fn start(&self) -> Result<(), StartError> {
        let inner = self.inner.clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let period = inner.plan.flush;
        let task = tokio::spawn(async move {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => inner.flush().await,
                    _ = stopped.notified() => return,
                }
            }
        });
        *self.ticker.lock().unwrap_or_else(|p| p.into_inner()) = Some((task, stop));
        Ok(())
    }

    async fn shutdown(&self) {
        let ticker = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((task, stop)) = ticker {
            stop.notify_one();
            let _ = task.await;
        }
        // What was aggregated since the last tick is emitted once more on the way out.
        self.inner.flush().await;
    }
}
