//! Read-only views of metrics and their data points straight from the protobuf bytes.

use crate::view::{
    attribute, each_message, fixed64_field, str_field, varint_field, AttributesView, Fields,
    MalformedProtobuf, ResourceView, ScopeView, Value, ValueView,
};

/// The type of a metric: which `data` it holds, and so which kind of data point.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Metrics, Message, MetricKind, NumberValue};
/// let bytes = metrics_request(vec![kv("service.name", "api")], vec![
///     counter("requests", vec![int_point(vec![kv("code", 500_i64)], 10, 4)]),
///     histogram("latency", vec![histogram_point(vec![], 10, &[0.1, 1.0], &[5, 3, 1], 2.5)]),
/// ]).encode_to_vec();
/// let mut metrics = Metrics::from_protobuf(&bytes);
/// let mut kinds = Vec::new();
/// metrics.retain_metrics_view(|m| { kinds.push(m.kind()); true })?;
/// assert_eq!(kinds, [Some(MetricKind::Sum), Some(MetricKind::Histogram)]);
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `gauge`: number points, the last value of something.
    Gauge,
    /// `sum`: number points, a counter (monotonic) or an up-down counter.
    Sum,
    /// `histogram`: explicit-bucket histogram points.
    Histogram,
    /// `exponential_histogram`: base-2 exponential histogram points.
    ExponentialHistogram,
    /// `summary`: quantile summary points.
    Summary,
}

impl MetricKind {
    /// From the field number of `Metric.data`.
    fn from_field(n: u32) -> Option<Self> {
        match n {
            5 => Some(MetricKind::Gauge),
            7 => Some(MetricKind::Sum),
            9 => Some(MetricKind::Histogram),
            10 => Some(MetricKind::ExponentialHistogram),
            11 => Some(MetricKind::Summary),
            _ => None,
        }
    }

    /// Field number of the point's `attributes`.
    fn attributes_field(self) -> u32 {
        match self {
            MetricKind::Gauge | MetricKind::Sum | MetricKind::Summary => 7,
            MetricKind::Histogram => 9,
            MetricKind::ExponentialHistogram => 1,
        }
    }

    /// Field number of the point's `flags`.
    fn flags_field(self) -> u32 {
        match self {
            MetricKind::Gauge | MetricKind::Sum | MetricKind::Summary => 8,
            MetricKind::Histogram | MetricKind::ExponentialHistogram => 10,
        }
    }
}

/// The value of a gauge or sum point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    /// `as_int`.
    Int(i64),
    /// `as_double`.
    Double(f64),
}

impl NumberValue {
    /// The value as `f64`.
    ///
    /// ```
    /// # use weir_wasm_sdk::NumberValue;
    /// assert_eq!(NumberValue::Int(3).as_f64(), 3.0);
    /// ```
    pub fn as_f64(&self) -> f64 {
        match self {
            NumberValue::Int(v) => *v as f64,
            NumberValue::Double(v) => *v,
        }
    }
}

/// One metric read in place: its name, unit, type, and context. Points are visited through
/// [`crate::Metrics::retain_points_view`].
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Metrics, Message, MetricKind, NumberValue};
/// let bytes = metrics_request(vec![kv("service.name", "api")], vec![
///     counter("requests", vec![int_point(vec![kv("code", 500_i64)], 10, 4)]),
///     histogram("latency", vec![histogram_point(vec![], 10, &[0.1, 1.0], &[5, 3, 1], 2.5)]),
/// ]).encode_to_vec();
/// let mut metrics = Metrics::from_protobuf(&bytes);
/// metrics.retain_metrics_view(|m| {
///     if m.name() == "requests" {
///         assert!(m.is_monotonic());
///         assert_eq!(m.aggregation_temporality(), 2); // cumulative
///         assert_eq!(m.resource().attribute_str("service.name"), Some("api"));
///     }
///     true
/// })?;
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MetricView<'a> {
    resource: &'a [u8],
    scope: &'a [u8],
    metric: &'a [u8],
    kind: Option<MetricKind>,
    /// The (last) data message, for temporality and monotonicity.
    data: &'a [u8],
}

impl<'a> MetricView<'a> {
    /// The resource this metric came from.
    pub fn resource(&self) -> ResourceView<'a> {
        ResourceView::new(self.resource)
    }

    /// The instrumentation scope of this metric.
    pub fn scope(&self) -> ScopeView<'a> {
        ScopeView::new(self.scope)
    }

    /// `name`.
    pub fn name(&self) -> &'a str {
        str_field(self.metric, 1)
    }

    /// `description`.
    pub fn description(&self) -> &'a str {
        str_field(self.metric, 2)
    }

    /// `unit`.
    pub fn unit(&self) -> &'a str {
        str_field(self.metric, 3)
    }

    /// The metric's type (`None` when it holds no data).
    pub fn kind(&self) -> Option<MetricKind> {
        self.kind
    }

    /// `is_monotonic` of a sum (false for other types).
    pub fn is_monotonic(&self) -> bool {
        self.kind == Some(MetricKind::Sum) && varint_field(self.data, 3) != 0
    }

    /// `aggregation_temporality` of a sum or histogram: 1 delta, 2 cumulative, 0 for gauges
    /// and summaries (see [`crate::otlp::metrics::v1::AggregationTemporality`]).
    pub fn aggregation_temporality(&self) -> i32 {
        match self.kind {
            Some(MetricKind::Sum | MetricKind::Histogram | MetricKind::ExponentialHistogram) => {
                varint_field(self.data, 2) as i32
            }
            _ => 0,
        }
    }
}

/// One data point read in place, of any type, with its metric and context.
///
/// ```
/// # use weir_wasm_sdk::{testing::*, Metrics, Message, MetricKind, NumberValue};
/// let bytes = metrics_request(vec![kv("service.name", "api")], vec![
///     counter("requests", vec![int_point(vec![kv("code", 500_i64)], 10, 4)]),
///     histogram("latency", vec![histogram_point(vec![], 10, &[0.1, 1.0], &[5, 3, 1], 2.5)]),
/// ]).encode_to_vec();
/// let mut metrics = Metrics::from_protobuf(&bytes);
/// let mut seen = Vec::new();
/// metrics.retain_points_view(|p| {
///     seen.push((p.metric().name(), p.kind(), p.value(), p.count(), p.sum()));
///     p.attribute("code").and_then(|v| v.as_i64()) != Some(500)
/// })?;
/// assert_eq!(seen, [
///     ("requests", MetricKind::Sum, Some(NumberValue::Int(4)), None, None),
///     ("latency", MetricKind::Histogram, None, Some(9), Some(2.5)),
/// ]);
/// assert_eq!(metrics.finish(), weir_wasm_sdk::Answer::Verdicts(vec![0, 1]));
/// # Ok::<(), weir_wasm_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PointView<'a> {
    metric: MetricView<'a>,
    kind: MetricKind,
    bytes: &'a [u8],
}

impl<'a> PointView<'a> {
    /// The metric this point belongs to.
    pub fn metric(&self) -> MetricView<'a> {
        self.metric
    }

    /// The type of the point (its metric's type).
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The resource this point came from.
    pub fn resource(&self) -> ResourceView<'a> {
        self.metric.resource()
    }

    /// The instrumentation scope of this point.
    pub fn scope(&self) -> ScopeView<'a> {
        self.metric.scope()
    }

    /// The string value of point attribute `key`, if present and a string.
    pub fn attribute_str(&self, key: &str) -> Option<&'a str> {
        self.attribute(key)?.as_str()
    }

    /// The value of point attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<ValueView<'a>> {
        attribute(self.bytes, self.kind.attributes_field(), key)
    }

    /// The point's attributes in encoded order.
    pub fn attributes(&self) -> AttributesView<'a> {
        AttributesView::new(self.bytes, self.kind.attributes_field())
    }

    /// `start_time_unix_nano` (0 when unset).
    pub fn start_time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 2).unwrap_or(0)
    }

    /// `time_unix_nano` (0 when unset).
    pub fn time_unix_nano(&self) -> u64 {
        fixed64_field(self.bytes, 3).unwrap_or(0)
    }

    /// `flags` (bit 0: no recorded value).
    pub fn flags(&self) -> u32 {
        varint_field(self.bytes, self.kind.flags_field()) as u32
    }

    /// The value of a gauge or sum point (`None` for other types or when unset).
    pub fn value(&self) -> Option<NumberValue> {
        if !matches!(self.kind, MetricKind::Gauge | MetricKind::Sum) {
            return None;
        }
        let mut fields = Fields::new(self.bytes);
        let mut out = None;
        while let Ok(Some((n, v))) = fields.next_field() {
            out = match (n, v) {
                (4, Value::Fixed64(v)) => Some(NumberValue::Double(f64::from_bits(v))),
                (6, Value::Fixed64(v)) => Some(NumberValue::Int(v as i64)),
                _ => out,
            };
        }
        out
    }

    /// `count` of a histogram, exponential histogram or summary point (`None` for gauges and
    /// sums).
    pub fn count(&self) -> Option<u64> {
        match self.kind {
            MetricKind::Gauge | MetricKind::Sum => None,
            _ => Some(fixed64_field(self.bytes, 4).unwrap_or(0)),
        }
    }

    /// `sum` of a histogram, exponential histogram or summary point, when present.
    pub fn sum(&self) -> Option<f64> {
        match self.kind {
            MetricKind::Gauge | MetricKind::Sum => None,
            _ => fixed64_field(self.bytes, 5).map(f64::from_bits),
        }
    }

    /// `min` of a histogram or exponential histogram point, when present.
    pub fn min(&self) -> Option<f64> {
        match self.kind {
            MetricKind::Histogram => fixed64_field(self.bytes, 11).map(f64::from_bits),
            MetricKind::ExponentialHistogram => fixed64_field(self.bytes, 12).map(f64::from_bits),
            _ => None,
        }
    }

    /// `max` of a histogram or exponential histogram point, when present.
    pub fn max(&self) -> Option<f64> {
        match self.kind {
            MetricKind::Histogram => fixed64_field(self.bytes, 12).map(f64::from_bits),
            MetricKind::ExponentialHistogram => fixed64_field(self.bytes, 13).map(f64::from_bits),
            _ => None,
        }
    }
}

/// The data of one `Metric` message: its kind, the offset where the winning run of its
/// `data` oneof starts (protobuf: a later different member replaces, the same member merges),
/// and the last data message.
/// A metric's data: its kind, where the winning run starts, the last data message.
type MetricData<'a> = Option<(MetricKind, usize, &'a [u8])>;

fn metric_data(metric: &[u8]) -> Result<MetricData<'_>, MalformedProtobuf> {
    let mut fields = Fields::new(metric);
    let mut current: Option<(MetricKind, usize, &[u8])> = None;
    loop {
        let at = fields.pos();
        let Some((n, v)) = fields.next_field()? else {
            break;
        };
        if let Some(kind) = MetricKind::from_field(n) {
            let Value::Bytes(data) = v else {
                return Err(MalformedProtobuf);
            };
            current = match current {
                Some((k, start, _)) if k == kind => Some((k, start, data)),
                _ => Some((kind, at, data)),
            };
        }
    }
    Ok(current)
}

/// Visits the points of one metric: calls the callback with each point view, in order.
pub(crate) type VisitPoints<'v, 'a> =
    dyn FnMut(&mut dyn FnMut(PointView<'a>)) -> Result<(), MalformedProtobuf> + 'v;

/// Calls `f` for every metric of an export request in canonical order, with a function that
/// visits the metric's points.
pub(crate) fn each_metric<'a>(
    request: &'a [u8],
    f: &mut dyn FnMut(MetricView<'a>, &mut VisitPoints<'_, 'a>) -> Result<(), MalformedProtobuf>,
) -> Result<(), MalformedProtobuf> {
    each_message(request, 1, &mut |resource| {
        each_message(resource, 2, &mut |scope| {
            each_message(scope, 2, &mut |metric| {
                let data = metric_data(metric)?;
                let view = MetricView {
                    resource,
                    scope,
                    metric,
                    kind: data.map(|(k, _, _)| k),
                    data: data.map(|(_, _, d)| d).unwrap_or(&[]),
                };
                let mut points =
                    |g: &mut dyn FnMut(PointView<'a>)| -> Result<(), MalformedProtobuf> {
                        let Some((kind, start, _)) = data else {
                            return Ok(());
                        };
                        let want = match kind {
                            MetricKind::Gauge => 5,
                            MetricKind::Sum => 7,
                            MetricKind::Histogram => 9,
                            MetricKind::ExponentialHistogram => 10,
                            MetricKind::Summary => 11,
                        };
                        let rest = metric.get(start..).ok_or(MalformedProtobuf)?;
                        each_message(rest, want, &mut |data| {
                            each_message(data, 1, &mut |point| {
                                g(PointView {
                                    metric: view,
                                    kind,
                                    bytes: point,
                                });
                                Ok(())
                            })
                        })
                    };
                f(view, &mut points)
            })
        })
    })
}

/// Calls `f` for every data point of an export request in canonical order.
pub(crate) fn each_point<'a>(
    request: &'a [u8],
    f: &mut dyn FnMut(PointView<'a>),
) -> Result<(), MalformedProtobuf> {
    each_metric(request, &mut |_, points| points(f))
}

/// Number of data points in an export request, counted from the bytes.
pub(crate) fn count_points(request: &[u8]) -> Result<usize, MalformedProtobuf> {
    let mut n = 0;
    each_point(request, &mut |_| n += 1)?;
    Ok(n)
}
