//! The batch of metrics, [`Metrics`]: its items are data points of every type, read as
//! views or decoded, kept, dropped or edited per point, and [`point_count`].

use super::{malformed, Answer, Core, ExportRequest};
use crate::metrics_view::{count_points, each_metric, MetricView, PointView};
use crate::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::otlp::metrics::v1::{metric::Data, Metric};
use crate::points::{
    each_point_mut, each_point_ref, kind_of, merge_metric, Context, MetricContext, PointMut,
    PointRef,
};
use crate::Error;

/// Number of data points of one metric (the unit verdicts count in).
///
/// ```
/// use weir_wasm_sdk::testing::{gauge, double_point};
/// let m = gauge("g", vec![double_point(vec![], 1, 1.0), double_point(vec![], 2, 2.0)]);
/// assert_eq!(weir_wasm_sdk::point_count(&m), 2);
/// ```
pub fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// A batch of metrics. Items are data points, of every type, in canonical order (resource
/// entries, scope entries, metrics, each metric's points).
pub struct Metrics<'a> {
    core: Core<'a, ExportMetricsServiceRequest>,
}

impl<'a> Metrics<'a> {
    /// A batch over the export request bytes the host passed in.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.len()?, 3); // data points
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn from_protobuf(bytes: &'a [u8]) -> Self {
        Metrics {
            core: Core::new(bytes),
        }
    }

    /// The decoded request (decoded on first use).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.request()?.resource_metrics.len(), 1);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn request(&mut self) -> Result<&ExportMetricsServiceRequest, Error> {
        self.core.request().map(|r| &*r)
    }

    /// The decoded request for any edit (see [`Logs::request_mut`](crate::Logs::request_mut)).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.request_mut()?.resource_metrics[0].scope_metrics[0].metrics.remove(0);
    /// let out = apply(&batch, metrics.finish())?;
    /// assert_eq!((out.dropped, out.replaced), (1, 2));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn request_mut(&mut self) -> Result<&mut ExportMetricsServiceRequest, Error> {
        self.core.reshape()
    }

    /// Number of data points, counted from the bytes when not decoded.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.len()?, 3);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn len(&mut self) -> Result<usize, Error> {
        if let Some(r) = &self.core.decoded {
            return Ok(r.item_count());
        }
        count_points(self.core.bytes).map_err(malformed)
    }

    /// Whether the batch holds no data points.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert!(!metrics.is_empty()?);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn is_empty(&mut self) -> Result<bool, Error> {
        self.len().map(|n| n == 0)
    }

    /// Keeps the data points for which `keep` is true, read in place (no decode; answered
    /// with verdicts). Called once per point in canonical order; the view reaches the point's
    /// metric, resource and scope.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// // Drop the 200s of host b, read in place.
    /// metrics.retain_points_view(|p| {
    ///     !(p.metric().name() == "requests" && p.attribute_str("host.id") == Some("b"))
    /// })?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![1, 1, 0]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_points_view(
        &mut self,
        mut keep: impl FnMut(&PointView<'a>) -> bool,
    ) -> Result<(), Error> {
        let bytes = self.core.bytes;
        self.core.decide_on_views(|decide| {
            each_metric(bytes, &mut |_, points| points(&mut |p| decide(keep(&p))))
        })
    }

    /// Keeps all data points of the metrics for which `keep` is true, read in place (no
    /// decode; answered with verdicts). Called once per metric in canonical order.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.retain_metrics_view(|m| !m.name().starts_with("debug."))?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![0, 1, 1]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_metrics_view(
        &mut self,
        mut keep: impl FnMut(&MetricView<'a>) -> bool,
    ) -> Result<(), Error> {
        let bytes = self.core.bytes;
        self.core.decide_on_views(|decide| {
            each_metric(bytes, &mut |metric, points| {
                let k = keep(&metric);
                points(&mut |_| decide(k))
            })
        })
    }

    /// Keeps all data points of the metrics for which `keep` is true (decoded).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.retain_metrics(|m| m.name != "debug.queue")?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![0, 1, 1]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_metrics(&mut self, mut keep: impl FnMut(&Metric) -> bool) -> Result<(), Error> {
        let request = self.core.request()?;
        let decisions: Vec<(usize, bool)> = request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| (point_count(m), keep(m)))
            .collect();
        self.core.decide(|decide| {
            for (n, k) in decisions {
                (0..n).for_each(|_| decide(k));
            }
            Ok(())
        })
    }

    /// Keeps the decoded data points for which `keep` is true, in canonical order, with the
    /// point's metric and context.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// use weir_wasm_sdk::{MetricKind, PointRef};
    /// // Keep gauges, and sum points with a value of at least 6.
    /// metrics.retain_points(|m, p| match p {
    ///     PointRef::Number(n) if m.kind == MetricKind::Sum => {
    ///         matches!(n.value, Some(weir_wasm_sdk::otlp::metrics::v1::number_data_point::Value::AsInt(v)) if v >= 6)
    ///     }
    ///     _ => true,
    /// })?;
    /// assert_eq!(metrics.finish(), Answer::Verdicts(vec![1, 0, 1]));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn retain_points(
        &mut self,
        mut keep: impl FnMut(&MetricContext<'_>, PointRef<'_>) -> bool,
    ) -> Result<(), Error> {
        let request = self.core.request()?;
        let mut decisions = Vec::new();
        for rm in &request.resource_metrics {
            for sm in &rm.scope_metrics {
                let context = Context::new(rm.resource.as_ref(), sm.scope.as_ref());
                for m in &sm.metrics {
                    let Some(data) = &m.data else { continue };
                    let mc = MetricContext {
                        context,
                        name: &m.name,
                        unit: &m.unit,
                        kind: kind_of(data),
                    };
                    each_point_ref(data, &mut |p| decisions.push(keep(&mc, p)));
                }
            }
        }
        self.core.decide(|decide| {
            decisions.into_iter().for_each(&mut *decide);
            Ok(())
        })
    }

    /// Calls `edit` on every decoded data point in canonical order, with its metric and
    /// context: for attribute edits per point ([`PointMut::attributes_mut`]). Answered with
    /// replacement bytes. Follow with [`merge_series`](Self::merge_series) when an edit can
    /// make two series of a metric identical.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.for_each_point_mut(|_metric, mut point| {
    ///     weir_wasm_sdk::remove_attribute(point.attributes_mut(), "host.id");
    /// })?;
    /// assert_eq!(metrics.merge_series()?, 1); // the two requests series are now one
    /// let out = apply(&batch, metrics.finish())?;
    /// assert_eq!((out.input, out.dropped, out.replaced), (3, 1, 2));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn for_each_point_mut(
        &mut self,
        mut edit: impl FnMut(&MetricContext<'_>, PointMut<'_>),
    ) -> Result<(), Error> {
        self.core.modified = true;
        let request = self.core.request()?;
        for rm in &mut request.resource_metrics {
            let resource = rm.resource.as_ref();
            for sm in &mut rm.scope_metrics {
                let context = Context::new(resource, sm.scope.as_ref());
                for m in &mut sm.metrics {
                    let Some(data) = &mut m.data else { continue };
                    let mc = MetricContext {
                        context,
                        name: &m.name,
                        unit: &m.unit,
                        kind: kind_of(data),
                    };
                    each_point_mut(data, &mut |p| edit(&mc, p));
                }
            }
        }
        Ok(())
    }

    /// Calls `edit` on every decoded metric in canonical order, with its context (rename,
    /// change the unit or description). Answered with replacement bytes.
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// metrics.for_each_metric_mut(|_ctx, m| m.name = m.name.replace('.', "_"))?;
    /// let out = apply(&batch, metrics.finish())?;
    /// assert_eq!(out.metrics()[0].name, "debug_queue");
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn for_each_metric_mut(
        &mut self,
        mut edit: impl FnMut(&Context<'_>, &mut Metric),
    ) -> Result<(), Error> {
        self.core.modified = true;
        let request = self.core.request()?;
        for rm in &mut request.resource_metrics {
            let resource = rm.resource.as_ref();
            for sm in &mut rm.scope_metrics {
                let context = Context::new(resource, sm.scope.as_ref());
                for m in &mut sm.metrics {
                    edit(&context, m);
                }
            }
        }
        Ok(())
    }

    /// Re-aggregates: within each metric, merges the data points whose attribute sets are
    /// equal (in any order), typically after an attribute was removed or rewritten.
    /// Returns the number of points removed. Pending verdicts are applied first.
    ///
    /// Rules, per type:
    /// - sum (counters and up-down counters, either temporality): values added (int + int
    ///   stays int, saturating; otherwise double), earliest non-zero start time, latest time,
    ///   exemplars concatenated;
    /// - gauge: the point with the latest `time_unix_nano` wins (on a tie, the later one in
    ///   the batch);
    /// - histogram: bucket counts, count and sum added, min of mins, max of maxes, when the
    ///   bucket bounds are equal; points with different bounds are left unmerged;
    /// - exponential histogram: downscaled to the smaller scale and buckets added, zero
    ///   counts, count and sum added, when the zero thresholds are equal (else unmerged);
    /// - summary: never merged (quantiles of different series cannot be combined).
    ///
    /// A merged point takes the place of the first of its points; the other points keep
    /// their order. Only points of one metric entry merge (not across metrics, scopes or
    /// resources). Answered with replacement bytes; after this, the view-based `retain_*`
    /// methods return an error (the decoded ones still work).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// use weir_wasm_sdk::otlp::metrics::v1::{metric::Data, number_data_point::Value};
    /// metrics.for_each_point_mut(|_, mut p| {
    ///     weir_wasm_sdk::remove_attribute(p.attributes_mut(), "host.id");
    /// })?;
    /// assert_eq!(metrics.merge_series()?, 1);
    /// let out = apply(&batch, metrics.finish())?;
    /// let Some(Data::Sum(sum)) = &out.metrics()[1].data else { unreachable!() };
    /// assert_eq!(sum.data_points[0].value, Some(Value::AsInt(12)));
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn merge_series(&mut self) -> Result<usize, Error> {
        let request = self.core.reshape()?;
        let mut removed = 0;
        for rm in &mut request.resource_metrics {
            for sm in &mut rm.scope_metrics {
                for m in &mut sm.metrics {
                    removed += merge_metric(m);
                }
            }
        }
        Ok(removed)
    }

    /// What to answer the host (the SDK calls this after your `process_metrics`).
    ///
    /// ```
    /// # use weir_wasm_sdk::{testing::*, Metrics, Message, Answer};
    /// let batch = metrics_request(vec![kv("service.name", "api")], vec![
    ///     gauge("debug.queue", vec![double_point(vec![], 1, 3.0)]),
    ///     counter("requests", vec![
    ///         int_point(vec![kv("host.id", "a"), kv("code", 200_i64)], 1, 5),
    ///         int_point(vec![kv("host.id", "b"), kv("code", 200_i64)], 1, 7),
    ///     ]),
    /// ]);
    /// let bytes = batch.encode_to_vec();
    /// let mut metrics = Metrics::from_protobuf(&bytes);
    /// assert_eq!(metrics.finish(), Answer::Unchanged);
    /// # Ok::<(), weir_wasm_sdk::Error>(())
    /// ```
    pub fn finish(self) -> Answer {
        self.core.finish()
    }
}
