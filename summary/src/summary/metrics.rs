//! Metrics of a service: per metric name, its kind, temporality, series, constancy and
//! attribute keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parts::{AttributeSchemas, Seen, Volume};
use super::{merge_map, MAX_KEYS_PER_ENTRY};
use crate::sketch::DistinctSketch;

/// Metric data type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// No data.
    #[default]
    Empty,
    /// Gauge.
    Gauge,
    /// Sum (counter or up-down counter).
    Sum,
    /// Explicit-bucket histogram.
    Histogram,
    /// Exponential histogram.
    ExponentialHistogram,
    /// Summary.
    Summary,
}

/// Aggregation temporality of sums and histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporality {
    /// Not applicable or unset.
    #[default]
    Unspecified,
    /// Delta.
    Delta,
    /// Cumulative.
    Cumulative,
}

/// Whether every data point of a metric carried the same value, tracked by a keyed value
/// hash. A flag alone would not merge: two windows that were each constant, at different
/// values, must merge into "varied", so the (keyed, [`crate::key::SketchKey`]) hash of the
/// value stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConstantValue {
    /// Keyed hash of the first value seen (`None`: no point yet, or forgotten).
    pub value_hash: Option<u64>,
    /// Whether a different value was seen since.
    pub varied: bool,
}

impl ConstantValue {
    /// Records one value hash.
    pub fn observe(&mut self, h: u64) {
        match self.value_hash {
            None => self.value_hash = Some(h),
            Some(first) if first != h => self.varied = true,
            Some(_) => {}
        }
    }

    /// Whether all points seen so far (at least one) had one value.
    pub fn is_constant(&self) -> bool {
        self.value_hash.is_some() && !self.varied
    }

    pub(super) fn merge(&mut self, o: &ConstantValue) {
        self.varied |= o.varied;
        if let Some(h) = o.value_hash {
            self.observe(h);
        }
    }
}

/// One metric of a service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricSummary {
    /// Data type (the last seen, if it changed).
    pub kind: MetricKind,
    /// Unit.
    pub unit: String,
    /// Temporality of sums and histograms.
    pub temporality: Temporality,
    /// Whether a sum is monotonic.
    pub monotonic: bool,
    /// Data points and bytes.
    pub volume: Volume,
    /// Distinct series (attribute sets).
    pub series: DistinctSketch,
    /// Distinct values per data-point attribute key.
    pub attribute_keys: BTreeMap<String, DistinctSketch>,
    /// Constant-value detection.
    pub constant: ConstantValue,
    /// When points were seen.
    pub seen: Seen,
}

impl MetricSummary {
    pub(super) fn merge(&mut self, o: &MetricSummary) {
        if o.kind != MetricKind::Empty {
            self.kind = o.kind;
        }
        if self.unit.is_empty() {
            self.unit.clone_from(&o.unit);
        }
        if o.temporality != Temporality::Unspecified {
            self.temporality = o.temporality;
        }
        self.monotonic |= o.monotonic;
        self.volume.merge(&o.volume);
        self.series.merge(&o.series);
        merge_map(
            &mut self.attribute_keys,
            &o.attribute_keys,
            MAX_KEYS_PER_ENTRY,
            |a, b| a.merge(b),
        );
        self.constant.merge(&o.constant);
        self.seen.merge(&o.seen);
    }
}

/// Metrics of one service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSummary {
    /// All data points.
    pub volume: Volume,
    /// Of `volume`, the data points the edge counted but did not read: its summariser runs below
    /// the data path's priority and, when the edge's CPU is saturated, counts a batch it has
    /// no time for (per service, items and encoded bytes) instead of reading it. The rest
    /// of this section describes `volume - unsummarised`; a catalog scales what it
    /// estimates from it by `volume / (volume - unsummarised)` and says so.
    #[serde(skip_serializing_if = "Volume::is_zero")]
    pub unsummarised: Volume,
    /// Per metric name.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Attribute schemas (data-point attributes under `item`).
    pub attributes: AttributeSchemas,
}
