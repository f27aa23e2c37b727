//! Decoded data points of every type behind one interface, and the re-aggregation that
//! merges series made identical by an attribute edit.

use std::collections::{BTreeMap, HashMap};

use prost::Message;

use crate::otlp::common::v1::{InstrumentationScope, KeyValue};
use crate::otlp::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};
use crate::otlp::resource::v1::Resource;
use crate::MetricKind;

pub(crate) static EMPTY_RESOURCE: Resource = Resource {
    attributes: Vec::new(),
    dropped_attributes_count: 0,
    entity_refs: Vec::new(),
};

pub(crate) static EMPTY_SCOPE: InstrumentationScope = InstrumentationScope {
    name: String::new(),
    version: String::new(),
    attributes: Vec::new(),
    dropped_attributes_count: 0,
};

/// Where a decoded item sits: its resource and instrumentation scope (empty ones when the
/// batch leaves them unset).
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Logs, Message};
/// let bytes = logs_request(vec![kv("service.name", "api")], vec![log_record("x", 9)]).encode_to_vec();
/// Logs::from_protobuf(&bytes).retain_in_context(|ctx, _record| {
///     assert_eq!(weir_wasm_sdk::attribute_str(&ctx.resource.attributes, "service.name"), Some("api"));
///     assert_eq!(ctx.scope.name, ""); // unset scope reads as empty
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Context<'r> {
    /// The resource of the item's resource entry.
    pub resource: &'r Resource,
    /// The instrumentation scope of the item's scope entry.
    pub scope: &'r InstrumentationScope,
}

impl<'r> Context<'r> {
    pub(crate) fn new(
        resource: Option<&'r Resource>,
        scope: Option<&'r InstrumentationScope>,
    ) -> Self {
        Context {
            resource: resource.unwrap_or(&EMPTY_RESOURCE),
            scope: scope.unwrap_or(&EMPTY_SCOPE),
        }
    }
}

/// The metric a decoded point belongs to, with the point's context.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Metrics, Message, MetricKind, PointMut, PointRef};
/// let bytes = metrics_request(vec![], vec![
///     gauge("cpu", vec![double_point(vec![kv("cpu", "0")], 10, 0.5)]),
/// ]).encode_to_vec();
/// let mut metrics = Metrics::from_protobuf(&bytes);
/// metrics.retain_points(|m, _point| {
///     assert_eq!((m.name, m.unit, m.kind), ("cpu", "", MetricKind::Gauge));
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MetricContext<'r> {
    /// The resource and scope.
    pub context: Context<'r>,
    /// The metric's `name`.
    pub name: &'r str,
    /// The metric's `unit`.
    pub unit: &'r str,
    /// The metric's type.
    pub kind: MetricKind,
}

/// A decoded data point of any type, for reading.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Metrics, Message, MetricKind, PointMut, PointRef};
/// let bytes = metrics_request(vec![], vec![
///     gauge("cpu", vec![double_point(vec![kv("cpu", "0")], 10, 0.5)]),
/// ]).encode_to_vec();
/// let mut metrics = Metrics::from_protobuf(&bytes);
/// metrics.retain_points(|_, point| match point {
///     PointRef::Number(n) => n.time_unix_nano == 10,
///     PointRef::Histogram(_) | PointRef::ExponentialHistogram(_) | PointRef::Summary(_) => true,
/// })?;
/// assert_eq!(metrics.finish(), weir_wasm_sdk::Answer::Unchanged);
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub enum PointRef<'p> {
    /// A gauge or sum point.
    Number(&'p NumberDataPoint),
    /// A histogram point.
    Histogram(&'p HistogramDataPoint),
    /// An exponential histogram point.
    ExponentialHistogram(&'p ExponentialHistogramDataPoint),
    /// A summary point.
    Summary(&'p SummaryDataPoint),
}

/// A decoded data point of any type, for editing.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Metrics, Message, MetricKind, PointMut, PointRef};
/// let bytes = metrics_request(vec![], vec![
///     gauge("cpu", vec![double_point(vec![kv("cpu", "0")], 10, 0.5)]),
/// ]).encode_to_vec();
/// let mut metrics = Metrics::from_protobuf(&bytes);
/// metrics.for_each_point_mut(|_, mut point| {
///     weir_wasm_sdk::set_attribute_str(point.attributes_mut(), "cpu", "all");
///     if let PointMut::Number(n) = point {
///         n.time_unix_nano += 1;
///     }
/// })?;
/// assert!(matches!(metrics.finish(), weir_wasm_sdk::Answer::Replacement(_)));
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug)]
pub enum PointMut<'p> {
    /// A gauge or sum point.
    Number(&'p mut NumberDataPoint),
    /// A histogram point.
    Histogram(&'p mut HistogramDataPoint),
    /// An exponential histogram point.
    ExponentialHistogram(&'p mut ExponentialHistogramDataPoint),
    /// A summary point.
    Summary(&'p mut SummaryDataPoint),
}

macro_rules! common_point_fields {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            Self::Number($p) => $e,
            Self::Histogram($p) => $e,
            Self::ExponentialHistogram($p) => $e,
            Self::Summary($p) => $e,
        }
    };
}

impl<'p> PointRef<'p> {
    /// The point's attributes.
    pub fn attributes(&self) -> &'p [KeyValue] {
        common_point_fields!(self, p => &p.attributes)
    }

    /// `time_unix_nano`.
    pub fn time_unix_nano(&self) -> u64 {
        common_point_fields!(self, p => p.time_unix_nano)
    }

    /// `start_time_unix_nano`.
    pub fn start_time_unix_nano(&self) -> u64 {
        common_point_fields!(self, p => p.start_time_unix_nano)
    }
}

impl PointMut<'_> {
    /// The point's attributes.
    pub fn attributes(&self) -> &[KeyValue] {
        common_point_fields!(self, p => &p.attributes)
    }

    /// The point's attributes for editing (with [`crate::set_attribute_str`],
    /// [`crate::remove_attribute`] or directly).
    pub fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
        common_point_fields!(self, p => &mut p.attributes)
    }

    /// `time_unix_nano`.
    pub fn time_unix_nano(&self) -> u64 {
        common_point_fields!(self, p => p.time_unix_nano)
    }

    /// `start_time_unix_nano`.
    pub fn start_time_unix_nano(&self) -> u64 {
        common_point_fields!(self, p => p.start_time_unix_nano)
    }
}

/// The kind of a decoded metric.
pub(crate) fn kind_of(data: &Data) -> MetricKind {
    match data {
        Data::Gauge(_) => MetricKind::Gauge,
        Data::Sum(_) => MetricKind::Sum,
        Data::Histogram(_) => MetricKind::Histogram,
        Data::ExponentialHistogram(_) => MetricKind::ExponentialHistogram,
        Data::Summary(_) => MetricKind::Summary,
    }
}

/// Calls `f` on every point of `data` in order.
pub(crate) fn each_point_ref<'p>(data: &'p Data, f: &mut dyn FnMut(PointRef<'p>)) {
    match data {
        Data::Gauge(g) => g.data_points.iter().for_each(|p| f(PointRef::Number(p))),
        Data::Sum(s) => s.data_points.iter().for_each(|p| f(PointRef::Number(p))),
        Data::Histogram(h) => h.data_points.iter().for_each(|p| f(PointRef::Histogram(p))),
        Data::ExponentialHistogram(h) => h
            .data_points
            .iter()
            .for_each(|p| f(PointRef::ExponentialHistogram(p))),
        Data::Summary(s) => s.data_points.iter().for_each(|p| f(PointRef::Summary(p))),
    }
}

/// Calls `f` on every point of `data` in order, for editing.
pub(crate) fn each_point_mut(data: &mut Data, f: &mut dyn FnMut(PointMut<'_>)) {
    match data {
        Data::Gauge(g) => g
            .data_points
            .iter_mut()
            .for_each(|p| f(PointMut::Number(p))),
        Data::Sum(s) => s
            .data_points
            .iter_mut()
            .for_each(|p| f(PointMut::Number(p))),
        Data::Histogram(h) => h
            .data_points
            .iter_mut()
            .for_each(|p| f(PointMut::Histogram(p))),
        Data::ExponentialHistogram(h) => h
            .data_points
            .iter_mut()
            .for_each(|p| f(PointMut::ExponentialHistogram(p))),
        Data::Summary(s) => s
            .data_points
            .iter_mut()
            .for_each(|p| f(PointMut::Summary(p))),
    }
}

/// The identity of a series within one metric: its attributes regardless of their order.
fn series_key(attributes: &[KeyValue]) -> Vec<u8> {
    let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut key = Vec::new();
    for kv in sorted {
        // Length-prefixed encoding of each pair keeps keys unambiguous.
        kv.encode_length_delimited(&mut key)
            .unwrap_or_else(|_| unreachable!("Vec<u8> grows as needed"));
    }
    key
}

/// Merges the points of one metric that have the same attributes: `merge(into, from)` folds
/// `from` into the earlier `into` and returns false when the two cannot be merged (both are
/// kept). Returns the number of points removed. Survivors keep their order; a merged point
/// sits where its first point was.
fn merge_points<P>(
    points: &mut Vec<P>,
    attributes: fn(&P) -> &[KeyValue],
    merge: fn(&mut P, &P) -> bool,
) -> usize {
    let before = points.len();
    let mut kept: Vec<P> = Vec::with_capacity(before);
    let mut by_key: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    'points: for p in points.drain(..) {
        let key = series_key(attributes(&p));
        let slots = by_key.entry(key).or_default();
        for &i in slots.iter() {
            if merge(&mut kept[i], &p) {
                continue 'points;
            }
        }
        slots.push(kept.len());
        kept.push(p);
    }
    *points = kept;
    before - points.len()
}

fn earliest_start(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

fn opt_min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn opt_max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn merge_gauge(into: &mut NumberDataPoint, from: &NumberDataPoint) -> bool {
    // The latest value wins; on a tie, the later point in the batch.
    if from.time_unix_nano >= into.time_unix_nano {
        *into = from.clone();
    }
    true
}

fn merge_sum(into: &mut NumberDataPoint, from: &NumberDataPoint) -> bool {
    use number_data_point::Value;
    into.value = match (into.value, from.value) {
        (Some(Value::AsInt(a)), Some(Value::AsInt(b))) => Some(Value::AsInt(a.saturating_add(b))),
        (Some(a), Some(b)) => Some(Value::AsDouble(as_f64(a) + as_f64(b))),
        (a, b) => a.or(b),
    };
    into.start_time_unix_nano =
        earliest_start(into.start_time_unix_nano, from.start_time_unix_nano);
    into.time_unix_nano = into.time_unix_nano.max(from.time_unix_nano);
    into.exemplars.extend(from.exemplars.iter().cloned());
    into.flags &= from.flags;
    true
}

fn as_f64(v: number_data_point::Value) -> f64 {
    match v {
        number_data_point::Value::AsInt(i) => i as f64,
        number_data_point::Value::AsDouble(d) => d,
    }
}

fn merge_histogram(into: &mut HistogramDataPoint, from: &HistogramDataPoint) -> bool {
    if into.explicit_bounds != from.explicit_bounds
        || into.bucket_counts.len() != from.bucket_counts.len()
    {
        return false;
    }
    for (a, b) in into.bucket_counts.iter_mut().zip(&from.bucket_counts) {
        *a = a.saturating_add(*b);
    }
    into.count = into.count.saturating_add(from.count);
    into.sum = match (into.sum, from.sum) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    into.min = opt_min(into.min, from.min);
    into.max = opt_max(into.max, from.max);
    into.start_time_unix_nano =
        earliest_start(into.start_time_unix_nano, from.start_time_unix_nano);
    into.time_unix_nano = into.time_unix_nano.max(from.time_unix_nano);
    into.exemplars.extend(from.exemplars.iter().cloned());
    into.flags &= from.flags;
    true
}

/// Bucket counts by absolute index at `scale`, from buckets at `from_scale >= scale`.
fn add_buckets(out: &mut BTreeMap<i64, u64>, buckets: Option<&Buckets>, shift: i32) {
    let Some(b) = buckets else { return };
    for (i, &count) in b.bucket_counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let index = (i64::from(b.offset) + i as i64) >> shift;
        let slot = out.entry(index).or_insert(0);
        *slot = slot.saturating_add(count);
    }
}

/// Dense buckets from counts by index; `None` when the range is too wide to hold.
fn dense(counts: &BTreeMap<i64, u64>) -> Option<Option<Buckets>> {
    let (Some((&lo, _)), Some((&hi, _))) = (counts.first_key_value(), counts.last_key_value())
    else {
        return Some(None);
    };
    let width = usize::try_from(hi - lo + 1)
        .ok()
        .filter(|w| *w <= 1 << 16)?;
    let mut bucket_counts = vec![0; width];
    for (&i, &c) in counts {
        bucket_counts[(i - lo) as usize] = c;
    }
    Some(Some(Buckets {
        offset: i32::try_from(lo).ok()?,
        bucket_counts,
    }))
}

fn merge_exponential(
    into: &mut ExponentialHistogramDataPoint,
    from: &ExponentialHistogramDataPoint,
) -> bool {
    if into.zero_threshold != from.zero_threshold {
        return false;
    }
    let scale = into.scale.min(from.scale);
    let mut positive = BTreeMap::new();
    let mut negative = BTreeMap::new();
    for p in [&*into, from] {
        let shift = p.scale - scale;
        add_buckets(&mut positive, p.positive.as_ref(), shift);
        add_buckets(&mut negative, p.negative.as_ref(), shift);
    }
    let (Some(positive), Some(negative)) = (dense(&positive), dense(&negative)) else {
        return false;
    };
    into.scale = scale;
    into.positive = positive;
    into.negative = negative;
    into.zero_count = into.zero_count.saturating_add(from.zero_count);
    into.count = into.count.saturating_add(from.count);
    into.sum = match (into.sum, from.sum) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    into.min = opt_min(into.min, from.min);
    into.max = opt_max(into.max, from.max);
    into.start_time_unix_nano =
        earliest_start(into.start_time_unix_nano, from.start_time_unix_nano);
    into.time_unix_nano = into.time_unix_nano.max(from.time_unix_nano);
    into.exemplars.extend(from.exemplars.iter().cloned());
    into.flags &= from.flags;
    true
}

/// Merges the series of one metric made identical by attribute edits (see
/// [`crate::Metrics::merge_series`] for the rules). Returns the number of points removed.
pub(crate) fn merge_metric(metric: &mut Metric) -> usize {
    match &mut metric.data {
        None => 0,
        Some(Data::Gauge(g)) => merge_points(&mut g.data_points, |p| &p.attributes, merge_gauge),
        Some(Data::Sum(s)) => merge_points(&mut s.data_points, |p| &p.attributes, merge_sum),
        Some(Data::Histogram(h)) => {
            merge_points(&mut h.data_points, |p| &p.attributes, merge_histogram)
        }
        Some(Data::ExponentialHistogram(h)) => {
            merge_points(&mut h.data_points, |p| &p.attributes, merge_exponential)
        }
        // Quantiles of different series cannot be combined: summaries stay as they are.
        Some(Data::Summary(_)) => 0,
    }
}
