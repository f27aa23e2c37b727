//! OTLP metrics to remote-write series: names, labels (resource, scope, external labels,
//! `target_info`), samples of every metric type, metadata, and splitting the result into
//! `WriteRequest`s no bigger than `max_batch_size_bytes`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use prost::Message;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{number_data_point, NumberDataPoint};
use weir_api::{Batch, Payload};

use super::prompb::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
use crate::prom_naming::{attrs_to_labels, format_float, instance, job, metric_name, NameKind};

/// Prometheus's stale marker, a NaN with this exact bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// OTLP to remote-write series.
pub(super) struct Translator {
    pub(super) namespace: String,
    pub(super) add_suffixes: bool,
    pub(super) external_labels: Vec<(String, String)>,
    pub(super) resource_labels: bool,
    pub(super) target_info: bool,
    pub(super) send_metadata: bool,
    pub(super) max_request_bytes: usize,
    /// Metric names already warned about (bounded).
    pub(super) warned: Mutex<HashSet<String>>,
}

fn number(p: &NumberDataPoint) -> f64 {
    if p.flags & 1 != 0 {
        return f64::from_bits(STALE_NAN);
    }
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

/// The series of one request being built: labels → samples.
#[derive(Default)]
struct SeriesSet {
    series: HashMap<Vec<Label>, Vec<Sample>>,
    metadata: BTreeMap<String, MetricMetadata>,
}

impl SeriesSet {
    fn add(&mut self, mut labels: Vec<Label>, value: f64, ts: i64) {
        labels.sort();
        self.series.entry(labels).or_default().push(Sample {
            value,
            timestamp: ts,
        });
    }
}

impl Translator {
    fn warn(&self, metric: &str, why: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() < 1000 && warned.insert(metric.to_string()) {
            tracing::warn!(
                metric,
                "prometheusremotewrite: {why}; its points are dropped (logged once per metric)"
            );
        }
    }

    /// Builds the requests for a batch; returns them and how many points were dropped.
    pub(super) fn requests(&self, batch: &Batch) -> (Vec<WriteRequest>, u64) {
        let Payload::Metrics(req) = batch.payload() else {
            return (Vec::new(), 0);
        };
        let mut set = SeriesSet::default();
        let mut dropped = 0u64;
        for rm in &req.resource_metrics {
            let resource: &[KeyValue] = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let mut base = Vec::new();
            if self.resource_labels {
                attrs_to_labels(resource, &mut base);
            }
            let job = job(resource);
            let instance = instance(resource);
            let mut latest = 0u64;
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    dropped += self.metric(m, &base, &job, &instance, &mut set, &mut latest);
                }
            }
            if self.target_info && latest > 0 {
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
                if !rest.is_empty() {
                    let mut l = Vec::new();
                    attrs_to_labels(&rest, &mut l);
                    let name = if self.namespace.is_empty() {
                        "target_info".to_string()
                    } else {
                        format!("{}_target_info", self.namespace)
                    };
                    let labels = self.finish(l, &name, &job, &instance, None);
                    set.add(labels, 1.0, ms(latest));
                }
            }
        }
        (self.split(set), dropped)
    }

    /// Final labels: `__name__`, job, instance, then external labels the series lacks.
    fn finish(
        &self,
        mut l: Vec<(String, String)>,
        name: &str,
        job: &Option<String>,
        instance: &Option<String>,
        extra: Option<(&str, String)>,
    ) -> Vec<Label> {
        let mut set = |k: &str, v: String| match l.iter_mut().find(|(n, _)| n == k) {
            Some((_, old)) => *old = v,
            None => l.push((k.to_string(), v)),
        };
        if let Some(j) = job {
            set("job", j.clone());
        }
        if let Some(i) = instance {
            set("instance", i.clone());
        }
        if let Some((k, v)) = extra {
            set(k, v);
        }
        set("__name__", name.to_string());
        for (k, v) in &self.external_labels {
            if !l.iter().any(|(n, _)| n == k) {
                l.push((k.clone(), v.clone()));
            }
        }
        l.into_iter()
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .map(|(name, value)| Label { name, value })
            .collect()
    }

    /// Adds one metric's points; returns how many were dropped.
    fn metric(
        &self,
        m: &weir_api::otlp::metrics::v1::Metric,
        base: &[(String, String)],
        job: &Option<String>,
        instance: &Option<String>,
        set: &mut SeriesSet,
        latest: &mut u64,
    ) -> u64 {
        let point_labels = |attrs: &[KeyValue]| {
            let mut l = Vec::with_capacity(attrs.len() + base.len() + 3);
            attrs_to_labels(attrs, &mut l);
            for (k, v) in base {
                if !l.iter().any(|(n, _)| n == k) {
                    l.push((k.clone(), v.clone()));
                }
            }
            l
        };
        let name = |kind| metric_name(&m.name, &m.unit, kind, &self.namespace, self.add_suffixes);
        let meta = |set: &mut SeriesSet, family: &str, kind: i32| {
            if self.send_metadata {
                set.metadata
                    .entry(family.to_string())
                    .or_insert_with(|| MetricMetadata {
                        r#type: kind,
                        metric_family_name: family.to_string(),
                        help: m.description.clone(),
                        unit: m.unit.clone(),
                    });
            }
        };
        match &m.data {
            None => 0,
            Some(Data::Gauge(g)) => {
                let family = name(NameKind::Gauge);
                meta(set, &family, 2);
                for p in &g.data_points {
                    *latest = (*latest).max(p.time_unix_nano);
                    let l = self.finish(point_labels(&p.attributes), &family, job, instance, None);
                    set.add(l, number(p), ms(p.time_unix_nano));
                }
                0
            }
            Some(Data::Sum(s)) => {
                if s.aggregation_temporality != 2 {
                    self.warn(&m.name, "only cumulative sums can be written");
                    return s.data_points.len() as u64;
                }
                let (family, kind) = if s.is_monotonic {
                    (name(NameKind::Counter), 1)
                } else {
                    (name(NameKind::UpDown), 2)
                };
                meta(set, &family, kind);
                for p in &s.data_points {
                    *latest = (*latest).max(p.time_unix_nano);
                    let l = self.finish(point_labels(&p.attributes), &family, job, instance, None);
                    set.add(l, number(p), ms(p.time_unix_nano));
                }
                0
            }
            Some(Data::Histogram(h)) => {
                if h.aggregation_temporality != 2 {
                    self.warn(&m.name, "only cumulative histograms can be written");
                    return h.data_points.len() as u64;
                }
                let family = name(NameKind::Histogram);
                meta(set, &family, 3);
                let mut dropped = 0;
                for p in &h.data_points {
                    if !p.bucket_counts.is_empty()
                        && p.bucket_counts.len() != p.explicit_bounds.len() + 1
                    {
                        self.warn(
                            &m.name,
                            "a histogram point's bucket counts do not match its bounds",
                        );
                        dropped += 1;
                        continue;
                    }
                    *latest = (*latest).max(p.time_unix_nano);
                    let ts = ms(p.time_unix_nano);
                    let stale = p.flags & 1 != 0;
                    let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
                    let labels = point_labels(&p.attributes);
                    let bucket = format!("{family}_bucket");
                    let mut cumulative = 0u64;
                    for (i, bound) in p.explicit_bounds.iter().enumerate() {
                        cumulative += p.bucket_counts.get(i).copied().unwrap_or(0);
                        let l = self.finish(
                            labels.clone(),
                            &bucket,
                            job,
                            instance,
                            Some(("le", format_float(*bound))),
                        );
                        set.add(l, v(cumulative as f64), ts);
                    }
                    let l = self.finish(
                        labels.clone(),
                        &bucket,
                        job,
                        instance,
                        Some(("le", "+Inf".into())),
                    );
                    set.add(l, v(p.count as f64), ts);
                    if let Some(sum) = p.sum {
                        let l = self.finish(
                            labels.clone(),
                            &format!("{family}_sum"),
                            job,
                            instance,
                            None,
                        );
                        set.add(l, v(sum), ts);
                    }
                    let l = self.finish(labels, &format!("{family}_count"), job, instance, None);
                    set.add(l, v(p.count as f64), ts);
                }
                dropped
            }
            Some(Data::Summary(s)) => {
                let family = name(NameKind::Summary);
                meta(set, &family, 5);
                for p in &s.data_points {
                    *latest = (*latest).max(p.time_unix_nano);
                    let ts = ms(p.time_unix_nano);
                    let stale = p.flags & 1 != 0;
                    let v = |x: f64| if stale { f64::from_bits(STALE_NAN) } else { x };
                    let labels = point_labels(&p.attributes);
                    for q in &p.quantile_values {
                        let l = self.finish(
                            labels.clone(),
                            &family,
                            job,
                            instance,
                            Some(("quantile", format_float(q.quantile))),
                        );
                        set.add(l, v(q.value), ts);
                    }
                    let l = self.finish(
                        labels.clone(),
                        &format!("{family}_sum"),
                        job,
                        instance,
                        None,
                    );
                    set.add(l, v(p.sum), ts);
                    let l = self.finish(labels, &format!("{family}_count"), job, instance, None);
                    set.add(l, v(p.count as f64), ts);
                }
                0
            }
            Some(Data::ExponentialHistogram(e)) => {
                self.warn(&m.name, "exponential histograms are not supported");
                e.data_points.len() as u64
            }
        }
    }

    /// Series in a stable order (by labels), samples in time order, cut into requests of
    /// at most `max_request_bytes` (a single series bigger than that goes alone).
    fn split(&self, set: SeriesSet) -> Vec<WriteRequest> {
        let mut series: Vec<TimeSeries> = set
            .series
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.timestamp);
                TimeSeries { labels, samples }
            })
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out = Vec::new();
        let mut current = WriteRequest {
            timeseries: Vec::new(),
            metadata: set.metadata.into_values().collect(),
        };
        let mut size = current.encoded_len();
        for ts in series {
            let len = ts.encoded_len() + 8;
            if size + len > self.max_request_bytes && !current.timeseries.is_empty() {
                out.push(std::mem::take(&mut current));
                size = 0;
            }
            size += len;
            current.timeseries.push(ts);
        }
        if !current.timeseries.is_empty() || !current.metadata.is_empty() {
            out.push(current);
        }
        out
    }
}
