//! Evaluation of a policy set on decoded requests: the verdicts of every record, computed
//! over the untouched request, and the edits that apply them to a decoded request
//! ([`transform_logs`], [`apply_metrics`], [`rewrite_tracestates`]). The decisions per record
//! ([`LogDecider`], [`SpanDecider`], [`MetricDecider`]) are shared with the evaluation on
//! encoded requests ([`crate::raw_logs`], [`crate::raw_traces`], [`crate::raw_metrics`]),
//! which depend on this module and not the other way round; [`crate::run`] drives both over
//! a batch.
//!
//! Keep resolution (specification sections 4.4, 5.1, 6.3, 10): of the non-shadow policies a
//! record matches, the most restrictive one decides (`none`, then the lowest percentage, then
//! rate limits, then `all`; ties go to the smallest policy id). Kept: every matching policy
//! scores a hit. Dropped: the deciding policy scores a hit, the other matching policies a
//! miss. Transforms of every matching policy run on kept records, policy by policy in id
//! order, each policy's ops in the normative order remove, redact, rename, add (the order
//! the public conformance suite checks; the specification leaves the interleaving across
//! policies open).

use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric};

use crate::compile::{LogKeep, SamplingMode, Target, TraceKeep, TransformOp};
use crate::matcher::{Facets, Test};
use crate::record::{any_value, lookup, Context, Field, FieldValue, LogView, MetricView, Record};
use crate::record::{SpanView, WellKnown};
use crate::sampling::{self, MAX_THRESHOLD};
use crate::set::{PolicySet, Scratch, SignalIndex};
use crate::transform::LogTarget;

impl Facets for LogView<'_> {}

impl Facets for MetricView<'_> {
    fn metric_type(&self) -> i32 {
        match &self.metric.data {
            Some(Data::Gauge(_)) => 1,
            Some(Data::Sum(_)) => 2,
            Some(Data::Histogram(_)) => 3,
            Some(Data::ExponentialHistogram(_)) => 4,
            Some(Data::Summary(_)) => 5,
            None => 0,
        }
    }
    fn temporality(&self) -> i32 {
        match &self.metric.data {
            Some(Data::Sum(s)) => s.aggregation_temporality,
            Some(Data::Histogram(h)) => h.aggregation_temporality,
            Some(Data::ExponentialHistogram(h)) => h.aggregation_temporality,
            _ => 0,
        }
    }
}

impl Facets for SpanView<'_> {
    fn span_kind(&self) -> i32 {
        self.span.kind
    }
    fn span_status(&self) -> i32 {
        self.span.status.as_ref().map_or(0, |s| s.code)
    }
    fn has_event(&self, name: &str) -> bool {
        self.span.events.iter().any(|e| e.name == name)
    }
    fn event_attribute(&self, path: &[String], test: &Test) -> bool {
        let mut values = self
            .span
            .events
            .iter()
            .map(|e| lookup(&e.attributes, path).and_then(any_value));
        match test {
            Test::Exists(false) => values.all(|v| v.is_none()),
            t => values.any(|v| v.is_some() && t.check(v)),
        }
    }
    fn links_to(&self, trace_id: &[u8]) -> bool {
        self.span.links.iter().any(|l| l.trace_id == trace_id)
    }
}

/// Policies of `index` matching `record`, appended to `out` in id order.
fn matching<R: Record + Facets>(
    set: &PolicySet,
    index: &SignalIndex,
    record: &R,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
) {
    out.clear();
    index.candidates(record, scratch);
    for &p in &scratch.candidates {
        let Some(target) = &set.entries[p as usize].target else {
            continue;
        };
        let anchor = index.anchor(p);
        let all = target
            .matchers()
            .iter()
            .enumerate()
            .all(|(i, m)| Some(i) == anchor || m.matches(record));
        if all {
            out.push(p);
        }
    }
}

/// Scores hits and misses once the outcome is known.
fn score(set: &PolicySet, matched: &[u32], kept: bool, winner: Option<u32>) {
    for &p in matched {
        let e = &set.entries[p as usize];
        if kept || e.shadow || Some(p) == winner {
            e.stats.hit();
        } else {
            e.stats.miss();
        }
    }
}

fn key_bytes<'a>(v: FieldValue<'a>, buf: &'a mut [u8; 8]) -> &'a [u8] {
    match v {
        FieldValue::Str(s) => s.as_bytes(),
        FieldValue::Bytes(b) => b,
        FieldValue::Int(i) => {
            *buf = i.to_be_bytes();
            buf
        }
        FieldValue::Double(d) => {
            *buf = d.to_bits().to_be_bytes();
            buf
        }
        FieldValue::Bool(b) => {
            buf[0] = u8::from(b);
            &buf[..1]
        }
        FieldValue::Other => &[],
    }
}

/// One log policy's own keep decision for a record.
fn log_keeps<R: Record>(target: &Target, view: &R, now: Instant) -> bool {
    let Target::Log {
        keep, sample_key, ..
    } = target
    else {
        return true;
    };
    let key = sample_key
        .as_ref()
        .and_then(|f| view.value(f).map(|v| (f, v)));
    match keep {
        LogKeep::All => true,
        LogKeep::None => false,
        LogKeep::Percent { threshold, .. } => {
            let r = match key {
                None if sample_key.is_some() => return true,
                None => sampling::random56(),
                // A trace id key uses the trace id's own randomness, so logs and traces
                // sampled at one rate keep the same traces.
                Some((Field::Well(WellKnown::TraceId), FieldValue::Bytes(b))) => {
                    sampling::id_randomness(b)
                }
                Some((_, v)) => {
                    let mut buf = [0u8; 8];
                    sampling::hashed_randomness(key_bytes(v, &mut buf))
                }
            };
            r >= *threshold
        }
        LogKeep::Rate(limiter) => {
            let hash = key.map(|(_, v)| {
                let mut buf = [0u8; 8];
                sampling::fnv1a64(&[key_bytes(v, &mut buf)])
            });
            limiter.admit(hash, now)
        }
    }
}

/// Verdicts for a logs request, one per record in traversal order.
#[derive(Debug, Default)]
pub struct LogVerdicts {
    /// Keep flags.
    pub keep: Vec<bool>,
    /// Per record: range into `transform_policies`.
    pub transforms: Vec<(u32, u32)>,
    /// Policies whose transforms run, flat.
    pub transform_policies: Vec<u32>,
    /// Records dropped.
    pub dropped: usize,
    /// Records that the evaluation on the encoded request ([`crate::raw_logs`]) decoded with
    /// prost because of an unusual encoding (a repeated singular message field); always 0
    /// on the decoded path.
    pub prost_decoded: usize,
}

/// The per-record decision of a log policy set, shared by the evaluation of a decoded
/// request ([`evaluate_logs`]) and of an encoded one ([`crate::raw_logs`]), so both decide
/// every record alike by construction.
pub(crate) struct LogDecider<'s> {
    set: &'s PolicySet,
    now: Instant,
    scratch: Scratch,
    matched: Vec<u32>,
}

impl<'s> LogDecider<'s> {
    /// A decider for `set`; `None` when the set has no active log policy (every record is
    /// kept and nothing is counted).
    pub(crate) fn new(set: &'s PolicySet, now: Instant) -> Option<Self> {
        (set.logs.active > 0).then(|| LogDecider {
            set,
            now,
            scratch: Scratch::new(set.entries.len()),
            matched: Vec::new(),
        })
    }

    /// Decides the next record: matches, scores, and appends its verdict to `v`. Call it
    /// exactly once per record, in traversal order (rate limits and counters change).
    pub(crate) fn decide<R: Record + Facets>(&mut self, record: &R, v: &mut LogVerdicts) {
        let set = self.set;
        let now = self.now;
        matching(set, &set.logs, record, &mut self.scratch, &mut self.matched);
        let matched = &self.matched;
        let winner = matched
            .iter()
            .copied()
            .filter(|p| !set.entries[*p as usize].shadow)
            .filter_map(|p| match &set.entries[p as usize].target {
                Some(Target::Log { keep, .. }) => Some((keep.rank(), p)),
                _ => None,
            })
            .min_by(|a, b| {
                a.0.partial_cmp(&b.0)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.1.cmp(&b.1))
            })
            .map(|(_, p)| p);
        for &p in matched {
            let e = &set.entries[p as usize];
            if e.shadow {
                if let Some(t) = &e.target {
                    if !log_keeps(t, record, now) {
                        e.stats.shadow_drop();
                    }
                }
            }
        }
        let kept = match winner.and_then(|w| set.entries[w as usize].target.as_ref()) {
            Some(t) => log_keeps(t, record, now),
            None => true,
        };
        score(set, matched, kept, winner);
        let start = v.transform_policies.len() as u32;
        if kept {
            for &p in matched {
                let e = &set.entries[p as usize];
                if let Some(Target::Log { transform, .. }) = &e.target {
                    if !e.shadow && !transform.is_empty() {
                        v.transform_policies.push(p);
                    }
                }
            }
        } else {
            v.dropped += 1;
        }
        v.keep.push(kept);
        v.transforms
            .push((start, v.transform_policies.len() as u32 - start));
    }
}

/// Decides every log record of `req`.
pub fn evaluate_logs(set: &PolicySet, req: &ExportLogsServiceRequest, now: Instant) -> LogVerdicts {
    let mut v = LogVerdicts::default();
    let Some(mut decider) = LogDecider::new(set, now) else {
        return v;
    };
    for rl in &req.resource_logs {
        for sl in &rl.scope_logs {
            let ctx = Context {
                resource: rl.resource.as_ref(),
                resource_schema_url: &rl.schema_url,
                scope: sl.scope.as_ref(),
                scope_schema_url: &sl.schema_url,
            };
            for record in &sl.log_records {
                decider.decide(&LogView { ctx, record }, &mut v);
            }
        }
    }
    v
}

/// Runs the transforms the verdicts name on the records they name (only kept records have
/// any). Dropping is left to [`Batch::retain_items`], after this.
pub fn transform_logs(set: &PolicySet, req: &mut ExportLogsServiceRequest, v: &LogVerdicts) {
    let mut i = 0usize;
    for rl in &mut req.resource_logs {
        for sl in &mut rl.scope_logs {
            for record in &mut sl.log_records {
                let (start, len) = v.transforms.get(i).copied().unwrap_or((0, 0));
                i += 1;
                if len == 0 {
                    continue;
                }
                let policies = &v.transform_policies[start as usize..(start + len) as usize];
                let mut target = LogTarget {
                    record,
                    resource: &mut rl.resource,
                    resource_schema_url: &mut rl.schema_url,
                    scope: &mut sl.scope,
                    scope_schema_url: &mut sl.schema_url,
                };
                for &p in policies {
                    let e = &set.entries[p as usize];
                    let Some(Target::Log { transform, .. }) = &e.target else {
                        continue;
                    };
                    for stage in 0..4 {
                        let ops: &[TransformOp] = match stage {
                            0 => &transform.remove,
                            1 => &transform.redact,
                            2 => &transform.rename,
                            _ => &transform.add,
                        };
                        for op in ops {
                            let applied = target.apply(op);
                            e.stats.transform(stage, applied);
                        }
                    }
                }
            }
        }
    }
}

/// Verdicts for a metrics request: one keep flag per data point (or per metric without
/// points), in traversal order.
#[derive(Debug, Default)]
pub struct MetricVerdicts {
    /// Keep flags.
    pub keep: Vec<bool>,
    /// Items dropped.
    pub dropped: usize,
    /// Metrics that the evaluation on the encoded request ([`crate::raw_metrics`]) decoded
    /// with prost because of an unusual encoding (a message prost would merge, a group);
    /// always 0 on the decoded path.
    pub prost_decoded: usize,
}

/// The attributes of data point `i` of `m` (empty when out of range).
fn point_attributes(m: &Metric, i: usize) -> &[KeyValue] {
    let attrs = match &m.data {
        Some(Data::Gauge(g)) => g.data_points.get(i).map(|p| &p.attributes),
        Some(Data::Sum(s)) => s.data_points.get(i).map(|p| &p.attributes),
        Some(Data::Histogram(h)) => h.data_points.get(i).map(|p| &p.attributes),
        Some(Data::ExponentialHistogram(h)) => h.data_points.get(i).map(|p| &p.attributes),
        Some(Data::Summary(s)) => s.data_points.get(i).map(|p| &p.attributes),
        None => None,
    };
    attrs.map_or(&[], |a| a.as_slice())
}

/// The per-point decision of a metric policy set, shared by the evaluation of a decoded
/// request ([`evaluate_metrics`]) and of an encoded one ([`crate::raw_metrics`]), so both
/// decide every data point alike by construction.
pub(crate) struct MetricDecider<'s> {
    set: &'s PolicySet,
    scratch: Scratch,
    matched: Vec<u32>,
}

impl<'s> MetricDecider<'s> {
    /// A decider for `set`; `None` when the set has no active metric policy (every point is
    /// kept and nothing is counted).
    pub(crate) fn new(set: &'s PolicySet) -> Option<Self> {
        (set.metrics.active > 0).then(|| MetricDecider {
            set,
            scratch: Scratch::new(set.entries.len()),
            matched: Vec::new(),
        })
    }

    /// Decides the next data point (or metric without points), seen through `point`:
    /// matches, scores, and appends its keep flag to `v`. Call it exactly once per point, in
    /// traversal order (counters change).
    pub(crate) fn decide<R: Record + Facets>(&mut self, point: &R, v: &mut MetricVerdicts) {
        let set = self.set;
        matching(
            set,
            &set.metrics,
            point,
            &mut self.scratch,
            &mut self.matched,
        );
        let mut winner = None;
        for &p in &self.matched {
            let e = &set.entries[p as usize];
            if let Some(Target::Metric { keep: false, .. }) = &e.target {
                if e.shadow {
                    e.stats.shadow_drop();
                } else if winner.is_none() {
                    winner = Some(p);
                }
            }
        }
        let kept = winner.is_none();
        score(set, &self.matched, kept, winner);
        if !kept {
            v.dropped += 1;
        }
        v.keep.push(kept);
    }

    /// Decides every data point of the decoded `metric`, or the metric once when it has
    /// none (with no point attributes).
    pub(crate) fn decide_metric(
        &mut self,
        ctx: Context<'_>,
        metric: &Metric,
        v: &mut MetricVerdicts,
    ) {
        for i in 0..point_count(metric).max(1) {
            let view = MetricView {
                ctx,
                metric,
                point_attributes: point_attributes(metric, i),
            };
            self.decide(&view, v);
        }
    }
}

/// Decides every metric data point of `req`. A metric without points is decided once.
pub fn evaluate_metrics(set: &PolicySet, req: &ExportMetricsServiceRequest) -> MetricVerdicts {
    let mut v = MetricVerdicts::default();
    let Some(mut decider) = MetricDecider::new(set) else {
        return v;
    };
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            let ctx = Context {
                resource: rm.resource.as_ref(),
                resource_schema_url: &rm.schema_url,
                scope: sm.scope.as_ref(),
                scope_schema_url: &sm.schema_url,
            };
            for metric in &sm.metrics {
                decider.decide_metric(ctx, metric, &mut v);
            }
        }
    }
    v
}

fn point_count(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn retain_points(m: &mut Metric, mut keep: impl FnMut() -> bool) {
    match &mut m.data {
        Some(Data::Gauge(g)) => g.data_points.retain(|_| keep()),
        Some(Data::Sum(s)) => s.data_points.retain(|_| keep()),
        Some(Data::Histogram(h)) => h.data_points.retain(|_| keep()),
        Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|_| keep()),
        Some(Data::Summary(s)) => s.data_points.retain(|_| keep()),
        None => {}
    }
}

/// Drops the data points (and metrics left without points) the verdicts say.
pub fn apply_metrics(req: &mut ExportMetricsServiceRequest, v: &MetricVerdicts) {
    if v.dropped == 0 {
        return;
    }
    let mut i = 0usize;
    for rm in &mut req.resource_metrics {
        for sm in &mut rm.scope_metrics {
            sm.metrics.retain_mut(|m| {
                let n = point_count(m);
                if n == 0 {
                    let k = v.keep.get(i).copied().unwrap_or(true);
                    i += 1;
                    return k;
                }
                retain_points(m, || {
                    let k = v.keep.get(i).copied().unwrap_or(true);
                    i += 1;
                    k
                });
                point_count(m) > 0
            });
        }
        rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
    }
    req.resource_metrics
        .retain(|rm| !rm.scope_metrics.is_empty());
}

/// One span's sampling outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanDecision {
    /// Keep the span.
    pub keep: bool,
    /// New tracestate, when it changes.
    pub tracestate: Option<String>,
}

/// Applies one trace policy's sampling to a span (specification section 6.3).
pub fn sample_span(k: &TraceKeep, trace_id: &[u8], tracestate: &str) -> SpanDecision {
    let keep_with = |th: Option<u64>| SpanDecision {
        keep: true,
        tracestate: Some(sampling::write_th(
            tracestate,
            th.map(|t| sampling::encode_threshold(t, k.precision))
                .as_deref(),
        )),
    };
    let drop = SpanDecision {
        keep: false,
        tracestate: None,
    };
    if k.percent <= 0.0 {
        return drop;
    }
    let ot = sampling::read_ot(tracestate);
    if let (Some(rv), Some(th)) = (ot.rv, ot.th) {
        if rv < th {
            // Inconsistent (the span would not have been sampled at its own threshold): keep
            // it and leave its tracestate, `th` included, exactly as it arrived, whatever the
            // percentage (also at 100 %, which would otherwise write `th:0`).
            return SpanDecision {
                keep: true,
                tracestate: None,
            };
        }
    }
    if k.percent >= 100.0 {
        // Everything is kept. `hash_seed` states its own probability (100 %: `th:0`); the
        // other modes never lower an incoming threshold: proportional keeps 100 % of the
        // incoming probability (T_o = T_s) and equalizing leaves a T_s above its target of
        // 0 as it is, so a span that carries a `th` keeps it unchanged.
        return match (k.mode, ot.th) {
            (SamplingMode::Proportional | SamplingMode::Equalizing, Some(_)) => SpanDecision {
                keep: true,
                tracestate: None,
            },
            _ => keep_with(Some(0)),
        };
    }
    if k.mode == SamplingMode::HashSeed && k.seed != 0 {
        // Seeded: the OpenTelemetry Collector's probabilistic_sampler rule, so a fleet mixing
        // both decides alike for every trace id.
        if trace_id.is_empty() {
            return SpanDecision {
                keep: !k.fail_closed,
                tracestate: None,
            };
        }
        let (keep, t) = sampling::seeded_decision(trace_id, k.seed, k.percent);
        return if keep { keep_with(Some(t)) } else { drop };
    }
    let randomness = ot
        .rv
        .or_else(|| (!trace_id.is_empty()).then(|| sampling::id_randomness(trace_id)));
    let Some(r) = randomness else {
        return SpanDecision {
            keep: !k.fail_closed,
            tracestate: None,
        };
    };
    let t = match k.mode {
        SamplingMode::HashSeed => sampling::threshold_for_percent(k.percent, k.precision),
        SamplingMode::Proportional => {
            let incoming = sampling::probability(ot.th.unwrap_or(0));
            let p = k.percent / 100.0 * incoming;
            let t = sampling::threshold_for_probability(p, k.precision);
            if t >= MAX_THRESHOLD {
                return drop;
            }
            t
        }
        SamplingMode::Equalizing => {
            let target = sampling::threshold_for_percent(k.percent, k.precision);
            match ot.th {
                Some(ts) if ts > target => {
                    return SpanDecision {
                        keep: true,
                        tracestate: None,
                    }
                }
                _ => target,
            }
        }
    };
    if r >= t {
        keep_with(Some(t))
    } else {
        drop
    }
}

/// Verdicts for a traces request, one per span in traversal order.
#[derive(Debug, Default)]
pub struct TraceVerdicts {
    /// Decisions.
    pub spans: Vec<SpanDecision>,
    /// Spans dropped.
    pub dropped: usize,
    /// Spans whose tracestate changes.
    pub rewritten: usize,
    /// Spans that the evaluation on the encoded request ([`crate::raw_traces`]) decoded
    /// with prost because of an unusual encoding (a message prost would merge); always 0 on
    /// the decoded path.
    pub prost_decoded: usize,
}

/// The per-span decision of a trace policy set, shared by the evaluation of a decoded
/// request ([`evaluate_traces`]) and of an encoded one ([`crate::raw_traces`]), so both
/// decide every span alike by construction.
pub(crate) struct SpanDecider<'s> {
    set: &'s PolicySet,
    scratch: Scratch,
    matched: Vec<u32>,
}

impl<'s> SpanDecider<'s> {
    /// A decider for `set`; `None` when the set has no active trace policy (every span is
    /// kept and nothing is counted).
    pub(crate) fn new(set: &'s PolicySet) -> Option<Self> {
        (set.traces.active > 0).then(|| SpanDecider {
            set,
            scratch: Scratch::new(set.entries.len()),
            matched: Vec::new(),
        })
    }

    /// Decides the next span, whose raw trace id and tracestate (empty when absent) are
    /// `trace_id` and `trace_state`: matches, scores, and appends its decision to `v`. Call
    /// it exactly once per span, in traversal order (counters change).
    pub(crate) fn decide<R: Record + Facets>(
        &mut self,
        span: &R,
        trace_id: &[u8],
        trace_state: &str,
        v: &mut TraceVerdicts,
    ) {
        let set = self.set;
        matching(set, &set.traces, span, &mut self.scratch, &mut self.matched);
        let matched = &self.matched;
        let mut winner: Option<(f64, u32)> = None;
        for &p in matched {
            let e = &set.entries[p as usize];
            let Some(Target::Trace { keep, .. }) = &e.target else {
                continue;
            };
            if e.shadow {
                if !sample_span(keep, trace_id, trace_state).keep {
                    e.stats.shadow_drop();
                }
            } else if winner.is_none_or(|(pct, _)| keep.percent < pct) {
                winner = Some((keep.percent, p));
            }
        }
        let decision = match winner.map(|(_, p)| &set.entries[p as usize].target) {
            Some(Some(Target::Trace { keep, .. })) => sample_span(keep, trace_id, trace_state),
            _ => SpanDecision {
                keep: true,
                tracestate: None,
            },
        };
        let decision = SpanDecision {
            tracestate: decision
                .tracestate
                .filter(|t| decision.keep && t != trace_state),
            keep: decision.keep,
        };
        score(set, matched, decision.keep, winner.map(|(_, p)| p));
        if !decision.keep {
            v.dropped += 1;
        }
        if decision.tracestate.is_some() {
            v.rewritten += 1;
        }
        v.spans.push(decision);
    }
}

/// Decides every span of `req`.
pub fn evaluate_traces(set: &PolicySet, req: &ExportTraceServiceRequest) -> TraceVerdicts {
    let mut v = TraceVerdicts::default();
    let Some(mut decider) = SpanDecider::new(set) else {
        return v;
    };
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            let ctx = Context {
                resource: rs.resource.as_ref(),
                resource_schema_url: &rs.schema_url,
                scope: ss.scope.as_ref(),
                scope_schema_url: &ss.schema_url,
            };
            for span in &ss.spans {
                decider.decide(
                    &SpanView { ctx, span },
                    &span.trace_id,
                    &span.trace_state,
                    &mut v,
                );
            }
        }
    }
    v
}

/// Writes the new tracestates the verdicts hold (only kept spans have any), taking them out
/// of `v`. Dropping is left to [`Batch::retain_items`], after this.
pub fn rewrite_tracestates(req: &mut ExportTraceServiceRequest, v: &mut TraceVerdicts) {
    let mut i = 0usize;
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                if let Some(d) = v.spans.get_mut(i) {
                    if let Some(t) = d.tracestate.take() {
                        span.trace_state = t;
                    }
                }
                i += 1;
            }
        }
    }
}
