//! Merging batches of one signal and cutting a batch at an item count, keeping resource and
//! scope headers intact on both sides of a cut.

use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::Metric;
use weir_api::{Batch, Payload};

/// Number of data points of one metric.
pub fn metric_points(m: &Metric) -> usize {
    match &m.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// Merges batches of one signal into one by concatenating their resource lists. A single
/// batch is returned as it is (keeping its original bytes); batches that all still hold
/// their bytes are merged by concatenating those, without decoding. The first batch's
/// context is kept.
pub fn merge(mut batches: Vec<Batch>) -> Option<Batch> {
    if batches.len() <= 1 {
        return batches.pop();
    }
    let batches = match Batch::concat_encoded(batches) {
        Ok(merged) => return Some(merged),
        Err(batches) => batches,
    };
    let mut iter = batches.into_iter();
    let mut first = iter.next()?;
    let target = first.payload_mut();
    for b in iter {
        match (&mut *target, b.into_payload()) {
            (Payload::Logs(t), Payload::Logs(s)) => t.resource_logs.extend(s.resource_logs),
            (Payload::Traces(t), Payload::Traces(s)) => t.resource_spans.extend(s.resource_spans),
            (Payload::Metrics(t), Payload::Metrics(s)) => {
                t.resource_metrics.extend(s.resource_metrics)
            }
            // A pipeline carries one signal; a stray batch of another is kept apart by the
            // caller and never reaches here.
            _ => {}
        }
    }
    Some(first)
}

/// Takes up to `n` leading items of the outer list `$list`, whose entries hold inner lists
/// reached by `$inner` and counted by `$count`. An entry cut in two keeps a copy of its
/// header (every field but the inner list) on both sides.
macro_rules! take_items {
    ($list:expr, $n:expr, $inner:ident, $count:expr, $cut_inner:expr) => {{
        let list = $list;
        let mut left: usize = $n;
        let mut whole = 0;
        while whole < list.len() && left > 0 {
            let c = $count(&list[whole]);
            if c > left {
                break;
            }
            left -= c;
            whole += 1;
        }
        let mut out: Vec<_> = list.drain(..whole).collect();
        if left > 0 && !list.is_empty() {
            let entry = &mut list[0];
            let inner = std::mem::take(&mut entry.$inner);
            let mut part = entry.clone();
            entry.$inner = inner;
            part.$inner = $cut_inner(&mut entry.$inner, left);
            out.push(part);
        }
        out
    }};
}

fn take_records<T>(items: &mut Vec<T>, n: usize) -> Vec<T> {
    items.drain(..n.min(items.len())).collect()
}

fn take_points(metrics: &mut Vec<Metric>, n: usize) -> Vec<Metric> {
    take_items!(
        metrics,
        n,
        data,
        metric_points,
        |data: &mut Option<Data>, k: usize| {
            data.as_mut().map(|d| match d {
                Data::Gauge(g) => {
                    let mut p = g.clone_empty();
                    p.data_points = take_records(&mut g.data_points, k);
                    Data::Gauge(p)
                }
                Data::Sum(s) => {
                    let mut p = s.clone_empty();
                    p.data_points = take_records(&mut s.data_points, k);
                    Data::Sum(p)
                }
                Data::Histogram(h) => {
                    let mut p = h.clone_empty();
                    p.data_points = take_records(&mut h.data_points, k);
                    Data::Histogram(p)
                }
                Data::ExponentialHistogram(h) => {
                    let mut p = h.clone_empty();
                    p.data_points = take_records(&mut h.data_points, k);
                    Data::ExponentialHistogram(p)
                }
                Data::Summary(s) => {
                    let mut p = s.clone_empty();
                    p.data_points = take_records(&mut s.data_points, k);
                    Data::Summary(p)
                }
            })
        }
    )
}

/// A copy of a metric data value without its points.
trait CloneEmpty {
    fn clone_empty(&mut self) -> Self;
}
macro_rules! clone_empty {
    ($($t:ty),*) => {$(
        impl CloneEmpty for $t {
            fn clone_empty(&mut self) -> Self {
                let points = std::mem::take(&mut self.data_points);
                let copy = self.clone();
                self.data_points = points;
                copy
            }
        }
    )*};
}
use weir_api::otlp::metrics::v1::{ExponentialHistogram, Gauge, Histogram, Sum, Summary};
clone_empty!(Gauge, Sum, Histogram, ExponentialHistogram, Summary);

/// Cuts the first `n` items off `batch` into a new batch (all of it when `n` covers it).
pub fn split_front(batch: &mut Batch, n: usize) -> Batch {
    let total = batch.item_count();
    if n >= total {
        let mut whole = Batch::new(Payload::empty(batch.signal()));
        whole.context = batch.context.clone();
        return std::mem::replace(batch, whole);
    }
    if !batch.is_decoded() {
        // A batch nobody has read: cut the bytes instead of decoding them (metrics with a
        // group inside, which the metrics cut refuses, are decoded by `retain_items`).
        let mut head = batch.clone();
        let front: Vec<bool> = (0..total).map(|i| i < n).collect();
        if head.retain_items(&front) {
            let back: Vec<bool> = front.iter().map(|k| !k).collect();
            batch.retain_items(&back);
            return head;
        }
    }
    let context = batch.context.clone();
    let head = match batch.payload_mut() {
        Payload::Logs(r) => {
            let mut h = r.clone_header();
            h.resource_logs = take_items!(
                &mut r.resource_logs,
                n,
                scope_logs,
                |rl: &weir_api::otlp::logs::v1::ResourceLogs| rl
                    .scope_logs
                    .iter()
                    .map(|s| s.log_records.len())
                    .sum::<usize>(),
                |scopes: &mut Vec<weir_api::otlp::logs::v1::ScopeLogs>, k| take_items!(
                    scopes,
                    k,
                    log_records,
                    |s: &weir_api::otlp::logs::v1::ScopeLogs| s.log_records.len(),
                    take_records
                )
            );
            Payload::Logs(h)
        }
        Payload::Traces(r) => {
            let mut h = r.clone_header();
            h.resource_spans = take_items!(
                &mut r.resource_spans,
                n,
                scope_spans,
                |rs: &weir_api::otlp::trace::v1::ResourceSpans| rs
                    .scope_spans
                    .iter()
                    .map(|s| s.spans.len())
                    .sum::<usize>(),
                |scopes: &mut Vec<weir_api::otlp::trace::v1::ScopeSpans>, k| take_items!(
                    scopes,
                    k,
                    spans,
                    |s: &weir_api::otlp::trace::v1::ScopeSpans| s.spans.len(),
                    take_records
                )
            );
            Payload::Traces(h)
        }
        Payload::Metrics(r) => {
            let mut h = r.clone_header();
            h.resource_metrics = take_items!(
                &mut r.resource_metrics,
                n,
                scope_metrics,
                |rm: &weir_api::otlp::metrics::v1::ResourceMetrics| rm
                    .scope_metrics
                    .iter()
                    .flat_map(|s| &s.metrics)
                    .map(metric_points)
                    .sum::<usize>(),
                |scopes: &mut Vec<weir_api::otlp::metrics::v1::ScopeMetrics>, k| take_items!(
                    scopes,
                    k,
                    metrics,
                    |s: &weir_api::otlp::metrics::v1::ScopeMetrics| s
                        .metrics
                        .iter()
                        .map(metric_points)
                        .sum::<usize>(),
                    take_points
                )
            );
            Payload::Metrics(h)
        }
    };
    batch.payload_mut().prune_empty();
    let mut out = Batch::new(head);
    out.context = context;
    out
}

/// An export request with no resources (the requests have no other fields today; this
/// keeps any future ones).
trait CloneHeader {
    fn clone_header(&self) -> Self;
}
impl CloneHeader for weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest {
    fn clone_header(&self) -> Self {
        Self {
            resource_logs: Vec::new(),
        }
    }
}
impl CloneHeader for weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest {
    fn clone_header(&self) -> Self {
        Self {
            resource_spans: Vec::new(),
        }
    }
}
impl CloneHeader for weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
    fn clone_header(&self) -> Self {
        Self {
            resource_metrics: Vec::new(),
        }
    }
}
