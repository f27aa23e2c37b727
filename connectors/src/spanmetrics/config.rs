//! The connector's config as written: the Collector's `spanmetrics` fields (dimensions,
//! histogram, exemplars, events, temporality, cache and flush settings) and Go duration
//! values.

use std::time::Duration;

use serde::Deserialize;

use super::{CUMULATIVE, DEFAULT_NAMESPACE};

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
