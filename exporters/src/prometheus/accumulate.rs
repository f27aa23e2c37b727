//! Taking points into the series store: each OTLP point becomes (or updates) a series
//! under its Prometheus family name and labels, with delta sums and histograms added up
//! into cumulative values and stale or conflicting points skipped.

use std::sync::Arc;
use std::time::Instant;

use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{
    number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};

use super::{Family, Inner, Kind, Series, Skip, State, Value};
use crate::prom_naming::{attrs_to_labels, instance, job, metric_name, push_label, NameKind};

fn number(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

pub(super) const NO_RECORDED_VALUE: u32 = 1;

impl State {
    /// Takes every point of a batch; returns (taken, dropped).
    pub(super) fn accumulate(&self, resource_metrics: &[ResourceMetrics]) -> (u64, u64) {
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
