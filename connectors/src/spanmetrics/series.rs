//! The per-series accumulators: call and event counts, explicit-bucket and exponential
//! histograms (with rescaling), and the exemplars each keeps.

use std::collections::HashMap;
use std::sync::Arc;

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::Exemplar;

use super::plan::HistKind;
use super::{MAX_SCALE, OVERFLOW_KEY};

/// An exponential histogram: positive buckets at a scale lowered as needed to stay within
/// `max_size` buckets.
#[derive(Debug, Clone)]
pub(super) struct ExpoHist {
    pub(super) max_size: usize,
    pub(super) scale: i32,
    /// Index of `counts[0]`.
    pub(super) offset: i64,
    pub(super) counts: Vec<u64>,
    pub(super) zero_count: u64,
    pub(super) count: u64,
    pub(super) sum: f64,
    pub(super) min: f64,
    pub(super) max: f64,
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
pub(super) enum HistState {
    Explicit {
        bounds: Arc<[f64]>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
    Exponential(ExpoHist),
}

impl HistState {
    pub(super) fn new(kind: &HistKind) -> Self {
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

    pub(super) fn observe(&mut self, v: f64) {
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
pub(super) struct Series<V> {
    pub(super) attributes: Vec<KeyValue>,
    pub(super) start: u64,
    pub(super) value: V,
    pub(super) exemplars: Vec<Exemplar>,
}

/// The series of one metric of one resource, in order of first sight.
#[derive(Debug, Clone)]
pub(super) struct MetricSeries<V> {
    index: HashMap<Vec<u8>, usize>,
    pub(super) series: Vec<(Vec<u8>, Series<V>)>,
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
    pub(super) fn get_or_create(
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
