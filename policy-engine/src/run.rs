//! Running a policy set over one batch: verdicts are computed first over the untouched
//! batch (on its encoded bytes where nobody decoded it yet, [`crate::raw_logs`],
//! [`crate::raw_traces`] and [`crate::raw_metrics`]; else on the decoded request,
//! [`crate::evaluate`]), then applied (transforms on the kept records, then the drops
//! through [`Batch::retain_items`]), so an error before the apply step leaves the batch as
//! it was (fail open). A batch evaluated on its bytes is decoded only when applying needs
//! it: log transforms, tracestate rewrites, and metrics with a metric without points (its
//! flag is not one `retain_items` numbers, so the decoded request is edited instead).

use std::time::Instant;

use weir_api::{Batch, Payload, Signal};

use crate::evaluate::TraceVerdicts;
use crate::evaluate::{apply_metrics, evaluate_logs, evaluate_metrics, evaluate_traces};
use crate::evaluate::{rewrite_tracestates, transform_logs, LogVerdicts, MetricVerdicts};
use crate::set::PolicySet;

/// What a run over one batch decided.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Items (records, spans, data points) dropped, or that would be in shadow mode.
    pub dropped: usize,
    /// Whether the batch was changed.
    pub changed: bool,
}

/// Runs `set` over `batch`. With `shadow`, everything is decided and counted but the batch
/// is left as it is. The batch is only borrowed mutably when something changes, so an
/// untouched batch keeps its original encoding.
pub fn process(set: &PolicySet, batch: &mut Batch, shadow: bool) -> Outcome {
    let now = Instant::now();
    // A logs request nobody decoded yet is evaluated on its bytes: decoding it would cost
    // several times the evaluation, and with drops only it is never needed.
    if batch.signal() == Signal::Logs && !batch.is_decoded() {
        if let Some(v) = batch
            .original_bytes()
            .and_then(|bytes| crate::raw_logs::evaluate_logs_encoded(set, bytes, now))
        {
            return apply_logs(set, batch, &v, shadow);
        }
    }
    // Traces alike: only spans whose tracestate changes need the decoded request.
    if batch.signal() == Signal::Traces && !batch.is_decoded() {
        if let Some(v) = batch
            .original_bytes()
            .and_then(|bytes| crate::raw_traces::evaluate_traces_encoded(set, bytes))
        {
            return apply_traces(batch, v, shadow);
        }
    }
    // Metrics alike: with a flag per point, the batch is cut without being decoded.
    if batch.signal() == Signal::Metrics && !batch.is_decoded() {
        if let Some(v) = batch
            .original_bytes()
            .and_then(|bytes| crate::raw_metrics::evaluate_metrics_encoded(set, bytes))
        {
            return apply_metric_verdicts(batch, &v, shadow);
        }
    }
    match batch.payload() {
        Payload::Logs(req) => {
            let v = evaluate_logs(set, req, now);
            apply_logs(set, batch, &v, shadow)
        }
        Payload::Metrics(req) => {
            let v = evaluate_metrics(set, req);
            apply_metric_verdicts(batch, &v, shadow)
        }
        Payload::Traces(req) => {
            let v = evaluate_traces(set, req);
            apply_traces(batch, v, shadow)
        }
    }
}

/// Applies metric verdicts (computed once, on the decoded or the encoded request) to
/// `batch`.
fn apply_metric_verdicts(batch: &mut Batch, v: &MetricVerdicts, shadow: bool) -> Outcome {
    if shadow || v.dropped == 0 {
        return Outcome {
            dropped: v.dropped,
            changed: false,
        };
    }
    // One flag per data point, numbered as `retain_items` numbers points, unless a metric
    // has no points (it gets a flag of its own, and `retain_items` would leave it out even
    // when kept). Then the batch cuts its bytes too (without decoding them when nothing
    // did), so the exporter sends them instead of encoding the edited request again.
    if v.keep.len() == batch.item_count() {
        batch.retain_items(&v.keep);
    } else if let Payload::Metrics(req) = batch.payload_mut() {
        apply_metrics(req, v);
    }
    Outcome {
        dropped: v.dropped,
        changed: true,
    }
}

/// Applies trace verdicts (computed once, on the decoded or the encoded request) to
/// `batch`.
fn apply_traces(batch: &mut Batch, mut v: TraceVerdicts, shadow: bool) -> Outcome {
    if shadow || (v.dropped == 0 && v.rewritten == 0) {
        return Outcome {
            dropped: v.dropped,
            changed: false,
        };
    }
    // As for logs: tracestates first, on the decoded spans (this forgets the original
    // bytes), then the drops, numbered as `retain_items` numbers spans; with drops only,
    // the batch copies what stays out of its original bytes, without being decoded.
    if v.rewritten > 0 {
        if let Payload::Traces(req) = batch.payload_mut() {
            rewrite_tracestates(req, &mut v);
        }
    }
    if v.dropped > 0 {
        let keep: Vec<bool> = v.spans.iter().map(|d| d.keep).collect();
        batch.retain_items(&keep);
    }
    Outcome {
        dropped: v.dropped,
        changed: true,
    }
}

/// Applies log verdicts (computed once, on the decoded or the encoded request) to `batch`.
fn apply_logs(set: &PolicySet, batch: &mut Batch, v: &LogVerdicts, shadow: bool) -> Outcome {
    let change = v.dropped > 0 || !v.transform_policies.is_empty();
    if shadow || !change {
        return Outcome {
            dropped: v.dropped,
            changed: false,
        };
    }
    // Transforms first, on the decoded records (this forgets the original bytes), then the
    // drops. `v.keep` is in traversal order, resource by resource, scope by scope: the
    // numbering `retain_items` uses. With drops only, the batch copies what stays out of
    // its original bytes instead of being decoded, or encoded again on export.
    if !v.transform_policies.is_empty() {
        if let Payload::Logs(req) = batch.payload_mut() {
            transform_logs(set, req, v);
        }
    }
    if v.dropped > 0 {
        batch.retain_items(&v.keep);
    }
    Outcome {
        dropped: v.dropped,
        changed: true,
    }
}
