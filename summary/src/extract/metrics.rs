//! Metrics: how a metric's points count into its name, kind, temporality, series and
//! attribute schemas, and the keyed hashes of point values.

use prost::Message;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{metric::Data, number_data_point, Metric};

use super::values::{observe_attributes, pair_hash, AttrRef};
use super::{evict_least_recent, Accumulator};
use crate::key::SketchKey;
use crate::sketch::DistinctSketch;
use crate::summary::{MetricKind, MetricSummary, Temporality, MAX_KEYS_PER_ENTRY};

impl Accumulator {
    pub(super) fn observe_metric(&mut self, service: &str, m: &Metric, received: u64) {
        let points = point_count(m.data.as_ref()) as u64;
        let bytes = m.encoded_len() as u64;
        let (cap_keys, cap_names) = (self.limits.max_attribute_keys, self.limits.max_names);
        let mut evicted = 0;
        let key = self.key;
        let svc = self.service(service);
        let metrics = &mut svc.summary.metrics;
        metrics.volume.items += points;
        metrics.volume.bytes += bytes;
        let entry = match metrics.metrics.get_mut(m.name.as_str()) {
            Some(e) => e,
            None => {
                if metrics.metrics.len() >= cap_names {
                    evict_least_recent(&mut metrics.metrics, |s: &MetricSummary| {
                        s.seen.last_unix_nano
                    });
                    evicted += 1;
                }
                metrics.metrics.entry(m.name.clone()).or_default()
            }
        };
        if entry.unit.is_empty() {
            entry.unit.clone_from(&m.unit);
        }
        entry.volume.items += points;
        entry.volume.bytes += bytes;
        let temporality = |t: i32| match t {
            1 => Temporality::Delta,
            2 => Temporality::Cumulative,
            _ => Temporality::Unspecified,
        };
        let mut points_seen: Vec<(&[KeyValue], u64, u64)> = Vec::new();
        match m.data.as_ref() {
            None => {}
            Some(Data::Gauge(g)) => {
                entry.kind = MetricKind::Gauge;
                for p in &g.data_points {
                    points_seen.push((
                        &p.attributes,
                        p.time_unix_nano,
                        number_hash(&p.value, &key),
                    ));
                }
            }
            Some(Data::Sum(s)) => {
                entry.kind = MetricKind::Sum;
                entry.temporality = temporality(s.aggregation_temporality);
                entry.monotonic |= s.is_monotonic;
                for p in &s.data_points {
                    points_seen.push((
                        &p.attributes,
                        p.time_unix_nano,
                        number_hash(&p.value, &key),
                    ));
                }
            }
            Some(Data::Histogram(h)) => {
                entry.kind = MetricKind::Histogram;
                entry.temporality = temporality(h.aggregation_temporality);
                for p in &h.data_points {
                    let v = hist_hash(p.count, p.sum.unwrap_or(0.0), &key);
                    points_seen.push((&p.attributes, p.time_unix_nano, v));
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                entry.kind = MetricKind::ExponentialHistogram;
                entry.temporality = temporality(h.aggregation_temporality);
                for p in &h.data_points {
                    let v = hist_hash(p.count, p.sum.unwrap_or(0.0), &key);
                    points_seen.push((&p.attributes, p.time_unix_nano, v));
                }
            }
            Some(Data::Summary(s)) => {
                entry.kind = MetricKind::Summary;
                for p in &s.data_points {
                    points_seen.push((
                        &p.attributes,
                        p.time_unix_nano,
                        hist_hash(p.count, p.sum, &key),
                    ));
                }
            }
        }
        for (attrs, time, value_hash) in points_seen {
            let t = if time > 0 { time } else { received };
            entry.seen.observe(t);
            entry.constant.observe(value_hash);
            let mut series = 0u64;
            for kv in attrs {
                let h = pair_hash(kv, &key);
                series = series.wrapping_add(h);
                let keys = &mut entry.attribute_keys;
                if !keys.contains_key(kv.key.as_str()) && keys.len() < MAX_KEYS_PER_ENTRY {
                    keys.insert(kv.key.clone(), DistinctSketch::new());
                }
                let sketch = keys.get_mut(kv.key.as_str());
                if let Some(s) = sketch {
                    s.insert_hash(h);
                }
            }
            entry.series.insert_hash(key.hash(&series.to_le_bytes()));
            observe_attributes(
                &mut metrics.attributes.item,
                attrs.iter().map(AttrRef::of),
                1,
                t,
                cap_keys,
                &mut evicted,
                &key,
            );
        }
        self.evicted_keys += evicted;
    }
}

/// Data points in one metric.
pub(super) fn point_count(data: Option<&Data>) -> usize {
    match data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

fn number_hash(v: &Option<number_data_point::Value>, key: &SketchKey) -> u64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => {
            key.hash_tagged(4, &d.to_bits().to_le_bytes())
        }
        Some(number_data_point::Value::AsInt(i)) => key.hash_tagged(3, &i.to_le_bytes()),
        None => key.hash_tagged(0, b""),
    }
}

fn hist_hash(count: u64, sum: f64, key: &SketchKey) -> u64 {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&count.to_le_bytes());
    b[8..].copy_from_slice(&sum.to_bits().to_le_bytes());
    key.hash_tagged(7, &b)
}
