//! Spans in, metrics out: each span updates its series (by resource and dimensions), and
//! a flush writes every series as OTLP metrics in the configured temporality, evicting
//! what the cache cannot hold.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::exponential_histogram_data_point::Buckets;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{
    exemplar, number_data_point, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::Span;
use weir_api::{Batch, Payload};

use super::plan::HistKind;
use super::series::{HistState, MetricSeries};
use super::{Inner, ResourceEntry, SCOPE_NAME, SERVICE_NAME};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(super) fn str_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

pub(super) fn attr(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

pub(super) fn find<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    list.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The string form of a value, as the Collector's `AsString` gives it (for series keys).
pub(super) fn as_string(v: &AnyValue) -> String {
    weir_filter::ottl::value::any_as_string(Some(v))
}

/// A byte key of a resource's identifying attributes (independent of their order).
fn resource_key(attrs: &[KeyValue], only: &[String]) -> Vec<u8> {
    use prost::Message;
    let mut sorted: Vec<&KeyValue> = attrs
        .iter()
        .filter(|kv| only.is_empty() || only.contains(&kv.key))
        .collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::new();
    for kv in sorted {
        let bytes = kv.encode_to_vec();
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn exemplar_of(span: &Span, value: f64) -> Exemplar {
    Exemplar {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        value: Some(exemplar::Value::AsDouble(value)),
        ..Default::default()
    }
}

impl Inner {
    /// Aggregates the spans of one request.
    pub(super) fn aggregate(&self, payload: &Payload) {
        let Payload::Traces(req) = payload else {
            return;
        };
        let plan = &*self.plan;
        let now = now_nanos();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for rs in &req.resource_spans {
            let res_attrs: &[KeyValue] = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let Some(service) = find(res_attrs, SERVICE_NAME) else {
                continue;
            };
            let service = match &service.value {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => as_string(service),
            };
            let rkey = resource_key(res_attrs, &plan.key_attributes);
            state.tick += 1;
            let tick = state.tick;
            if !state.resources.contains_key(&rkey) {
                // Least recently used resources go first beyond the cache size.
                while state.resources.len() >= plan.resource_cache {
                    let Some(oldest) = state
                        .resources
                        .iter()
                        .min_by_key(|(_, e)| e.last_used)
                        .map(|(k, _)| k.clone())
                    else {
                        break;
                    };
                    state.resources.remove(&oldest);
                    state.order.retain(|k| k != &oldest);
                }
                state.order.push(rkey.clone());
                state.resources.insert(
                    rkey.clone(),
                    ResourceEntry {
                        attributes: res_attrs.to_vec(),
                        calls: MetricSeries::default(),
                        durations: MetricSeries::default(),
                        events: MetricSeries::default(),
                        last_seen: Instant::now(),
                        last_used: tick,
                    },
                );
            }
            let Some(entry) = state.resources.get_mut(&rkey) else {
                continue;
            };
            entry.last_seen = Instant::now();
            entry.last_used = tick;
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref();
                for span in &ss.spans {
                    let duration = if span.end_time_unix_nano > span.start_time_unix_nano {
                        (span.end_time_unix_nano - span.start_time_unix_nano) as f64
                            / plan.unit_nanos
                    } else {
                        0.0
                    };
                    let has_trace = span.trace_id.iter().any(|b| *b != 0);
                    let limit = plan.cardinality_limit;
                    let (key, attrs) = plan.series(
                        &service,
                        span,
                        scope,
                        &[&plan.dims, &plan.calls_dims],
                        &[res_attrs],
                    );
                    let s = entry
                        .calls
                        .get_or_create(key, || attrs, now, limit, || 0u64);
                    s.value += 1;
                    if let Some(max) = plan.exemplars {
                        if has_trace && s.exemplars.len() < max {
                            s.exemplars.push(exemplar_of(span, duration));
                        }
                    }
                    if let Some(kind) = &plan.histogram {
                        let (key, attrs) = plan.series(
                            &service,
                            span,
                            scope,
                            &[&plan.dims, &plan.hist_dims],
                            &[res_attrs],
                        );
                        let h = entry.durations.get_or_create(
                            key,
                            || attrs,
                            now,
                            limit,
                            || HistState::new(kind),
                        );
                        h.value.observe(duration);
                        if let Some(max) = plan.exemplars {
                            if has_trace && h.exemplars.len() < max {
                                h.exemplars.push(exemplar_of(span, duration));
                            }
                        }
                    }
                    if plan.events {
                        for event in &span.events {
                            let (key, attrs) = plan.series(
                                &service,
                                span,
                                scope,
                                &[&plan.dims, &plan.event_dims],
                                &[&event.attributes, res_attrs],
                            );
                            let e = entry
                                .events
                                .get_or_create(key, || attrs, now, limit, || 0u64);
                            e.value += 1;
                            if let Some(max) = plan.exemplars {
                                if has_trace && e.exemplars.len() < max {
                                    e.exemplars.push(exemplar_of(span, duration));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Builds the metrics of every kept resource and resets what the temporality says.
    fn build(&self) -> ExportMetricsServiceRequest {
        let plan = &*self.plan;
        let now = now_nanos();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        let temporality = if plan.delta {
            AggregationTemporality::Delta
        } else {
            AggregationTemporality::Cumulative
        } as i32;
        let mut out = ExportMetricsServiceRequest::default();
        let mut touched: Vec<Vec<u8>> = Vec::new();
        // The start time of a series: for delta, the end of its last flush when known.
        let mut start_of = |key: &[u8], start: u64, last: &HashMap<Vec<u8>, (u64, u64)>| {
            if plan.delta {
                touched.push(key.to_vec());
                if let Some((t, _)) = last.get(key) {
                    return *t;
                }
            }
            start
        };
        for rkey in &state.order {
            let Some(entry) = state.resources.get_mut(rkey) else {
                continue;
            };
            let mut metrics = Vec::new();
            let sum = |series: &mut MetricSeries<u64>,
                       name: &str,
                       start_of: &mut dyn FnMut(&[u8], u64) -> u64| {
                Metric {
                    name: name.to_string(),
                    data: Some(Data::Sum(Sum {
                        data_points: series
                            .series
                            .iter_mut()
                            .map(|(k, s)| NumberDataPoint {
                                attributes: s.attributes.clone(),
                                start_time_unix_nano: start_of(k, s.start),
                                time_unix_nano: now,
                                value: Some(number_data_point::Value::AsInt(
                                    i64::try_from(s.value).unwrap_or(i64::MAX),
                                )),
                                exemplars: take_exemplars(&mut s.exemplars, now),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: temporality,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }
            };
            let last = &state.last_delta;
            let mut so = |k: &[u8], s: u64| start_of(k, s, last);
            metrics.push(sum(&mut entry.calls, &plan.calls_name, &mut so));
            if plan.histogram.is_some() {
                let mut explicit = Vec::new();
                let mut expo = Vec::new();
                for (k, s) in entry.durations.series.iter_mut() {
                    let start = so(k, s.start);
                    let exemplars = take_exemplars(&mut s.exemplars, now);
                    match &s.value {
                        HistState::Explicit {
                            bounds,
                            counts,
                            count,
                            sum,
                        } => explicit.push(HistogramDataPoint {
                            attributes: s.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count: *count,
                            sum: Some(*sum),
                            bucket_counts: counts.clone(),
                            explicit_bounds: bounds.to_vec(),
                            exemplars,
                            ..Default::default()
                        }),
                        HistState::Exponential(h) => expo.push(ExponentialHistogramDataPoint {
                            attributes: s.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count: h.count,
                            sum: Some(h.sum),
                            scale: h.scale,
                            zero_count: h.zero_count,
                            positive: Some(Buckets {
                                offset: i32::try_from(h.offset).unwrap_or(i32::MAX),
                                bucket_counts: h.counts.clone(),
                            }),
                            negative: Some(Buckets::default()),
                            min: (h.count > 0).then_some(h.min),
                            max: (h.count > 0).then_some(h.max),
                            exemplars,
                            ..Default::default()
                        }),
                    }
                }
                let data = match plan.histogram {
                    Some(HistKind::Exponential(_)) => {
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: expo,
                            aggregation_temporality: temporality,
                        })
                    }
                    _ => Data::Histogram(Histogram {
                        data_points: explicit,
                        aggregation_temporality: temporality,
                    }),
                };
                metrics.push(Metric {
                    name: plan.duration_name.clone(),
                    unit: plan.unit.to_string(),
                    data: Some(data),
                    ..Default::default()
                });
            }
            if plan.events {
                metrics.push(sum(&mut entry.events, &plan.events_name, &mut so));
            }
            out.resource_metrics.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes: entry.attributes.clone(),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        if plan.delta {
            state.tick += 1;
            let tick = state.tick;
            for k in touched {
                state.last_delta.insert(k, (now, tick));
            }
            while state.last_delta.len() > plan.timestamp_cache {
                let Some(oldest) = state
                    .last_delta
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                state.last_delta.remove(&oldest);
            }
            state.resources.clear();
            state.order.clear();
        } else if !plan.expiration.is_zero() {
            let expired: Vec<Vec<u8>> = state
                .resources
                .iter()
                .filter(|(_, e)| e.last_seen.elapsed() >= plan.expiration)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                state.resources.remove(&k);
                state.order.retain(|o| o != &k);
            }
        }
        out
    }

    pub(super) async fn flush(&self) {
        let metrics = self.build();
        if metrics.resource_metrics.is_empty() {
            return;
        }
        if let Err(e) = self
            .next
            .consume(Batch::new(Payload::Metrics(metrics)))
            .await
        {
            tracing::error!(connector = %self.id, error = %e, "spanmetrics: the metrics pipeline refused the flushed metrics");
        }
    }
}

/// The exemplars of one flush, stamped with its time; cleared for the next.
fn take_exemplars(list: &mut Vec<Exemplar>, now: u64) -> Vec<Exemplar> {
    let mut out = std::mem::take(list);
    for e in &mut out {
        e.time_unix_nano = now;
    }
    out
}
