//! Evaluates a [`FilterPlan`] over a batch: every verdict is computed first, then the
//! batch is changed in one pass, so an error leaves it untouched.

use std::sync::atomic::{AtomicU64, Ordering};

use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::Metric;

use super::config::{ErrorMode, Predicate, Step};
use crate::ottl::{Ctx, EvalError, Item, Point, Record};

/// Counts condition errors that were ignored, to rate-limit their log lines.
#[derive(Debug, Default)]
pub struct IgnoredErrors(AtomicU64);

impl IgnoredErrors {
    fn note(&self, e: &EvalError, mode: ErrorMode) {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        // The first error and then one in 1000: enough to notice, not enough to flood.
        if mode == ErrorMode::Ignore && n.is_multiple_of(1000) {
            tracing::warn!(error = %e, ignored_so_far = n + 1, "filter condition failed; counted as false (error_mode: ignore)");
        }
    }
}

/// Evaluates one step for one record.
fn step_matches(step: &Step, rec: &Record<'_>, ignored: &IgnoredErrors) -> Result<bool, EvalError> {
    match &step.predicate {
        Predicate::Legacy(ie) => Ok(ie.skip(rec)),
        Predicate::Conditions(conds) => {
            for c in conds {
                match c.eval(rec) {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(e) => match step.error_mode {
                        ErrorMode::Propagate => return Err(e),
                        mode => ignored.note(&e, mode),
                    },
                }
            }
            Ok(false)
        }
    }
}

/// Drop marks for the three container levels, flattened in batch order.
#[derive(Debug, Default)]
struct Marks {
    resources: Vec<bool>,
    scopes: Vec<bool>,
    items: Vec<bool>,
    /// Span events or data points (the level below items), flattened.
    subs: Vec<bool>,
}

impl Marks {
    fn any(&self) -> bool {
        [&self.resources, &self.scopes, &self.items, &self.subs]
            .iter()
            .any(|v| v.iter().any(|b| *b))
    }
}

/// Filters a logs request in place. Returns how many log records were dropped.
pub fn filter_logs(
    steps: &[Step],
    req: &ExportLogsServiceRequest,
    ignored: &IgnoredErrors,
) -> Result<Option<impl FnOnce(&mut ExportLogsServiceRequest)>, EvalError> {
    let mut m = Marks::default();
    for rl in &req.resource_logs {
        m.resources.push(false);
        for sl in &rl.scope_logs {
            m.scopes.push(false);
            m.items
                .extend(std::iter::repeat_n(false, sl.log_records.len()));
        }
    }
    for step in steps {
        let (mut si, mut ii) = (0, 0);
        for (ri, rl) in req.resource_logs.iter().enumerate() {
            let resource = rl.resource.as_ref();
            if !m.resources[ri] && step.ctx == Ctx::Resource {
                let rec = Record {
                    resource,
                    scope: None,
                    item: Item::None,
                };
                m.resources[ri] = step_matches(step, &rec, ignored)?;
            }
            for sl in &rl.scope_logs {
                let scope = sl.scope.as_ref();
                let gone = m.resources[ri] || m.scopes[si];
                if !gone && step.ctx == Ctx::Scope {
                    let rec = Record {
                        resource,
                        scope,
                        item: Item::None,
                    };
                    m.scopes[si] = step_matches(step, &rec, ignored)?;
                }
                for lr in &sl.log_records {
                    if step.ctx == Ctx::Log && !gone && !m.scopes[si] && !m.items[ii] {
                        let rec = Record {
                            resource,
                            scope,
                            item: Item::Log(lr),
                        };
                        m.items[ii] = step_matches(step, &rec, ignored)?;
                    }
                    ii += 1;
                }
                si += 1;
            }
        }
    }
    if !m.any() {
        return Ok(None);
    }
    Ok(Some(move |req: &mut ExportLogsServiceRequest| {
        let (mut ri, mut si, mut ii) = (0, 0, 0);
        req.resource_logs.retain_mut(|rl| {
            let drop_resource = m.resources[ri];
            ri += 1;
            let before = rl.scope_logs.len();
            rl.scope_logs.retain_mut(|sl| {
                let drop_scope = drop_resource || m.scopes[si];
                si += 1;
                let n = sl.log_records.len();
                let base = ii;
                ii += n;
                if drop_scope {
                    return false;
                }
                let mut k = base;
                sl.log_records.retain(|_| {
                    k += 1;
                    !m.items[k - 1]
                });
                // A scope emptied by the filter goes; one that arrived empty stays.
                !(sl.log_records.is_empty() && n > 0)
            });
            !(drop_resource || rl.scope_logs.is_empty() && before > 0)
        });
    }))
}

/// Filters a traces request. Span events dropped by `spanevent` conditions never take
/// their span with them.
pub fn filter_traces(
    steps: &[Step],
    req: &ExportTraceServiceRequest,
    ignored: &IgnoredErrors,
) -> Result<Option<impl FnOnce(&mut ExportTraceServiceRequest)>, EvalError> {
    let mut m = Marks::default();
    for rs in &req.resource_spans {
        m.resources.push(false);
        for ss in &rs.scope_spans {
            m.scopes.push(false);
            for s in &ss.spans {
                m.items.push(false);
                m.subs.extend(std::iter::repeat_n(false, s.events.len()));
            }
        }
    }
    for step in steps {
        let (mut si, mut ii, mut ei) = (0, 0, 0);
        for (ri, rs) in req.resource_spans.iter().enumerate() {
            let resource = rs.resource.as_ref();
            if !m.resources[ri] && step.ctx == Ctx::Resource {
                let rec = Record {
                    resource,
                    scope: None,
                    item: Item::None,
                };
                m.resources[ri] = step_matches(step, &rec, ignored)?;
            }
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref();
                if !m.resources[ri] && !m.scopes[si] && step.ctx == Ctx::Scope {
                    let rec = Record {
                        resource,
                        scope,
                        item: Item::None,
                    };
                    m.scopes[si] = step_matches(step, &rec, ignored)?;
                }
                let gone = m.resources[ri] || m.scopes[si];
                for span in &ss.spans {
                    let span_gone = gone || m.items[ii];
                    if step.ctx == Ctx::Span && !span_gone {
                        let rec = Record {
                            resource,
                            scope,
                            item: Item::Span(span),
                        };
                        m.items[ii] = step_matches(step, &rec, ignored)?;
                    }
                    for ev in &span.events {
                        if step.ctx == Ctx::SpanEvent && !span_gone && !m.subs[ei] {
                            let rec = Record {
                                resource,
                                scope,
                                item: Item::SpanEvent(span, ev),
                            };
                            m.subs[ei] = step_matches(step, &rec, ignored)?;
                        }
                        ei += 1;
                    }
                    ii += 1;
                }
                si += 1;
            }
        }
    }
    if !m.any() {
        return Ok(None);
    }
    Ok(Some(move |req: &mut ExportTraceServiceRequest| {
        let (mut ri, mut si, mut ii, mut ei) = (0, 0, 0, 0);
        req.resource_spans.retain_mut(|rs| {
            let drop_resource = m.resources[ri];
            ri += 1;
            let before = rs.scope_spans.len();
            rs.scope_spans.retain_mut(|ss| {
                let drop_scope = drop_resource || m.scopes[si];
                si += 1;
                let n = ss.spans.len();
                ss.spans.retain_mut(|span| {
                    let drop_span = drop_scope || m.items[ii];
                    ii += 1;
                    let base = ei;
                    ei += span.events.len();
                    if !drop_span {
                        let mut k = base;
                        span.events.retain(|_| {
                            k += 1;
                            !m.subs[k - 1]
                        });
                    }
                    !drop_span
                });
                !(drop_scope || ss.spans.is_empty() && n > 0)
            });
            !(drop_resource || rs.scope_spans.is_empty() && before > 0)
        });
    }))
}

/// The `k`-th data point of a metric, whatever its type.
fn point_at(metric: &Metric, k: usize) -> Option<Point<'_>> {
    match &metric.data {
        None => None,
        Some(Data::Gauge(g)) => g.data_points.get(k).map(Point::Number),
        Some(Data::Sum(s)) => s.data_points.get(k).map(Point::Number),
        Some(Data::Histogram(h)) => h.data_points.get(k).map(Point::Histogram),
        Some(Data::ExponentialHistogram(h)) => h.data_points.get(k).map(Point::ExpHistogram),
        Some(Data::Summary(s)) => s.data_points.get(k).map(Point::Summary),
    }
}

fn retain_points(metric: &mut Metric, mut keep: impl FnMut() -> bool) -> (usize, usize) {
    fn go<T>(v: &mut Vec<T>, keep: &mut impl FnMut() -> bool) -> (usize, usize) {
        let before = v.len();
        v.retain(|_| keep());
        (before, v.len())
    }
    match &mut metric.data {
        None => (0, 0),
        Some(Data::Gauge(g)) => go(&mut g.data_points, &mut keep),
        Some(Data::Sum(s)) => go(&mut s.data_points, &mut keep),
        Some(Data::Histogram(h)) => go(&mut h.data_points, &mut keep),
        Some(Data::ExponentialHistogram(h)) => go(&mut h.data_points, &mut keep),
        Some(Data::Summary(s)) => go(&mut s.data_points, &mut keep),
    }
}

/// Filters a metrics request. A metric whose data points are all dropped is dropped.
pub fn filter_metrics(
    steps: &[Step],
    req: &ExportMetricsServiceRequest,
    ignored: &IgnoredErrors,
) -> Result<Option<impl FnOnce(&mut ExportMetricsServiceRequest)>, EvalError> {
    let mut m = Marks::default();
    for rm in &req.resource_metrics {
        m.resources.push(false);
        for sm in &rm.scope_metrics {
            m.scopes.push(false);
            for metric in &sm.metrics {
                m.items.push(false);
                m.subs
                    .extend(std::iter::repeat_n(false, point_count(metric)));
            }
        }
    }
    for step in steps {
        let (mut si, mut ii, mut pi) = (0, 0, 0);
        for (ri, rm) in req.resource_metrics.iter().enumerate() {
            let resource = rm.resource.as_ref();
            if !m.resources[ri] && step.ctx == Ctx::Resource {
                let rec = Record {
                    resource,
                    scope: None,
                    item: Item::None,
                };
                m.resources[ri] = step_matches(step, &rec, ignored)?;
            }
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref();
                if !m.resources[ri] && !m.scopes[si] && step.ctx == Ctx::Scope {
                    let rec = Record {
                        resource,
                        scope,
                        item: Item::None,
                    };
                    m.scopes[si] = step_matches(step, &rec, ignored)?;
                }
                let gone = m.resources[ri] || m.scopes[si];
                for metric in &sm.metrics {
                    let metric_gone = gone || m.items[ii];
                    if step.ctx == Ctx::Metric && !metric_gone {
                        let rec = Record {
                            resource,
                            scope,
                            item: Item::Metric(metric),
                        };
                        m.items[ii] = step_matches(step, &rec, ignored)?;
                    }
                    let n = point_count(metric);
                    if step.ctx == Ctx::DataPoint && !metric_gone {
                        for k in 0..n {
                            let Some(p) = point_at(metric, k) else { break };
                            if !m.subs[pi + k] {
                                let rec = Record {
                                    resource,
                                    scope,
                                    item: Item::DataPoint(metric, p),
                                };
                                m.subs[pi + k] = step_matches(step, &rec, ignored)?;
                            }
                        }
                    }
                    pi += n;
                    ii += 1;
                }
                si += 1;
            }
        }
    }
    if !m.any() {
        return Ok(None);
    }
    Ok(Some(move |req: &mut ExportMetricsServiceRequest| {
        let (mut ri, mut si, mut ii, mut pi) = (0, 0, 0, 0);
        req.resource_metrics.retain_mut(|rm| {
            let drop_resource = m.resources[ri];
            ri += 1;
            let before = rm.scope_metrics.len();
            rm.scope_metrics.retain_mut(|sm| {
                let drop_scope = drop_resource || m.scopes[si];
                si += 1;
                let n = sm.metrics.len();
                sm.metrics.retain_mut(|metric| {
                    let drop_metric = drop_scope || m.items[ii];
                    ii += 1;
                    let base = pi;
                    pi += point_count(metric);
                    if drop_metric {
                        return false;
                    }
                    let mut k = base;
                    let (before, after) = retain_points(metric, || {
                        k += 1;
                        !m.subs[k - 1]
                    });
                    !(after == 0 && before > 0)
                });
                !(drop_scope || sm.metrics.is_empty() && n > 0)
            });
            !(drop_resource || rm.scope_metrics.is_empty() && before > 0)
        });
    }))
}

fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}
