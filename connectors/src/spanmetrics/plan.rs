//! The validated config (`Plan`): dimension checks, histogram kind and buckets, metric
//! names, and the dimension values a span (and its resource) yields under it.

use std::sync::Arc;
use std::time::Duration;

use weir_api::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::trace::v1::Span;
use weir_api::ConfigErrors;

use super::aggregate::{as_string, attr, find, str_value};
use super::config::{DimensionConfig, SpanMetricsSettings};
use super::{
    CUMULATIVE, DEFAULT_BUCKETS_MS, DEFAULT_EXPONENTIAL_MAX_SIZE, DELTA, RESERVED, SCOPE_NAME_KEY,
    SCOPE_VERSION_KEY, SERVICE_NAME, SPAN_KIND, SPAN_NAME, STATUS_CODE,
};

/// The histogram kind.
#[derive(Debug, Clone)]
pub(super) enum HistKind {
    Explicit(Arc<[f64]>),
    Exponential(usize),
}

/// The validated settings.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) dims: Vec<DimensionConfig>,
    pub(super) calls_dims: Vec<DimensionConfig>,
    pub(super) hist_dims: Vec<DimensionConfig>,
    pub(super) event_dims: Vec<DimensionConfig>,
    exclude: Vec<String>,
    pub(super) key_attributes: Vec<String>,
    pub(super) resource_cache: usize,
    pub(super) timestamp_cache: usize,
    pub(super) delta: bool,
    pub(super) histogram: Option<HistKind>,
    /// Nanoseconds per unit of the histogram.
    pub(super) unit_nanos: f64,
    pub(super) unit: &'static str,
    pub(super) flush: Duration,
    pub(super) expiration: Duration,
    pub(super) calls_name: String,
    pub(super) duration_name: String,
    pub(super) events_name: String,
    pub(super) events: bool,
    pub(super) exemplars: Option<usize>,
    scopes: Vec<String>,
    pub(super) cardinality_limit: usize,
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

pub(super) fn compile(s: &SpanMetricsSettings, path: &str) -> Result<Plan, ConfigErrors> {
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

impl Plan {
    /// The key and the attributes of a span's series for `extra` dimensions, looked up on
    /// the span, then on `fallback` (the resource, or the event and resource).
    pub(super) fn series(
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
