//! Dry-runs of policies on the control plane's own knowledge of the traffic.
//!
//! The catalog knows each service's traffic as *units*: classes of records that a policy
//! cannot tell apart from what the catalog holds (a log template with one severity number and
//! text, a span name of one kind, a metric). Each unit becomes one synthetic record (the
//! template's variables filled with `x`, its attribute keys present with the value `x`, the
//! service's `service.name` on the resource), and the policy is compiled and evaluated by the
//! policy engine itself ([`weir_policy_engine::set::PolicySet`]), so that what the control plane
//! says a policy matches cannot diverge from what an edge will do.
//!
//! Matching is read with the policy's keep forced to "drop everything" (and its transforms
//! left out), so sampling and rate limits do not blur which units match; what the real keep
//! saves is then worked out from the counts ([`keep_effect`]).

use std::time::Instant;

use serde_json::{json, Value};
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    metric::Data, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_policy_engine::stats::StatsRegistry;

/// The synthetic record standing for a unit.
#[derive(Debug, Clone)]
pub enum Sample {
    /// A log record.
    Log(LogRecord),
    /// A span.
    Span(Span),
    /// A metric with one data point.
    Metric(Metric),
}

/// A string attribute `key = "x"`.
pub fn kv(key: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".into())),
        }),
        ..Default::default()
    }
}

/// Fills a masked template's variables (`<*>`) with `x`.
pub fn instance(template: &str) -> String {
    template.replace("<*>", "x")
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(service.to_string())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// The policy with its keep forced to "drop every match", its transforms removed and its
/// shadow label and `enabled: false` ignored: evaluation then tells exactly what it matches.
fn match_probe(policy: &Value) -> Value {
    let mut p = policy.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("labels");
        o.insert("enabled".into(), json!(true));
        if let Some(t) = o.get_mut("log").and_then(Value::as_object_mut) {
            t.insert("keep".into(), json!("none"));
            t.remove("transform");
            t.remove("sample_key");
        }
        if let Some(t) = o.get_mut("metric").and_then(Value::as_object_mut) {
            t.insert("keep".into(), json!(false));
        }
        if let Some(t) = o.get_mut("trace").and_then(Value::as_object_mut) {
            t.insert("keep".into(), json!({"percentage": 0}));
        }
    }
    p
}

/// Compiles a policy document with the policy engine; the errors it reports otherwise.
pub fn compile(policy: &Value) -> Result<weir_policy_engine::set::PolicySet, String> {
    let parsed = weir_policy_contract::parse::parse_policy(policy, "policy");
    if let Err(e) = &parsed.policy {
        return Err(e.join("; "));
    }
    let set = weir_policy_engine::set::PolicySet::build(vec![parsed], &StatsRegistry::new());
    match set.entries.first() {
        Some(e) if e.errors.is_empty() => Ok(set),
        Some(e) => Err(e.errors.join("; ")),
        None => Err("the policy was not built".into()),
    }
}

/// Which of `samples` (all of service `service`) the policy matches, in order.
pub fn matches(policy: &Value, service: &str, samples: &[&Sample]) -> Result<Vec<bool>, String> {
    compile(policy)?;
    let set = compile(&match_probe(policy))?;
    let mut logs = Vec::new();
    let mut spans = Vec::new();
    let mut metrics = Vec::new();
    for s in samples {
        match s {
            Sample::Log(r) => logs.push(r.clone()),
            Sample::Span(sp) => spans.push(sp.clone()),
            Sample::Metric(m) => metrics.push(m.clone()),
        }
    }
    let log_keep = if logs.is_empty() {
        Vec::new()
    } else {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(service),
                scope_logs: vec![ScopeLogs {
                    log_records: logs,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        flags(
            weir_policy_engine::evaluate::evaluate_logs(&set, &req, Instant::now()).keep,
            req.resource_logs[0].scope_logs[0].log_records.len(),
        )
    };
    let span_keep = if spans.is_empty() {
        Vec::new()
    } else {
        let n = spans.len();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(service),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let v = weir_policy_engine::evaluate::evaluate_traces(&set, &req);
        flags(v.spans.iter().map(|d| d.keep).collect(), n)
    };
    let metric_keep = if metrics.is_empty() {
        Vec::new()
    } else {
        let n = metrics.len();
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(service),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        flags(
            weir_policy_engine::evaluate::evaluate_metrics(&set, &req).keep,
            n,
        )
    };
    let (mut li, mut si, mut mi) = (0, 0, 0);
    Ok(samples
        .iter()
        .map(|s| {
            let keep = match s {
                Sample::Log(_) => {
                    li += 1;
                    log_keep[li - 1]
                }
                Sample::Span(_) => {
                    si += 1;
                    span_keep[si - 1]
                }
                Sample::Metric(_) => {
                    mi += 1;
                    metric_keep[mi - 1]
                }
            };
            !keep
        })
        .collect())
}

/// Keep flags for `n` items; an engine that decided nothing (no active policy for the
/// signal) keeps everything.
fn flags(keep: Vec<bool>, n: usize) -> Vec<bool> {
    if keep.len() == n {
        keep
    } else {
        vec![true; n]
    }
}

/// What a policy's keep does to the records it matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepEffect {
    /// Keeps everything (transforms only).
    All,
    /// Drops everything.
    None,
    /// Keeps this percentage.
    Percent(f64),
    /// Keeps at most `n` records per `seconds`.
    Rate {
        /// Records.
        n: f64,
        /// Per this many seconds.
        seconds: f64,
    },
}

impl KeepEffect {
    /// Share of `items` records (seen over `window_s` seconds, at most `peak` of them within
    /// one second) it drops. A rate limit drops at least what the records exceed it by if
    /// spread evenly over the window, and at least what their peak second exceeds it by.
    pub fn drop_share(&self, items: f64, window_s: f64, peak: f64) -> f64 {
        match *self {
            KeepEffect::All => 0.0,
            KeepEffect::None => 1.0,
            KeepEffect::Percent(p) => (1.0 - p / 100.0).clamp(0.0, 1.0),
            KeepEffect::Rate { n, seconds } => {
                if items <= 0.0 {
                    0.0
                } else {
                    let even = items - n * (window_s / seconds).max(1.0);
                    let in_peak = peak.min(items) - n;
                    (even.max(in_peak).max(0.0) / items).clamp(0.0, 1.0)
                }
            }
        }
    }

    /// Whether it can drop records at all.
    pub fn drops(&self) -> bool {
        !matches!(self, KeepEffect::All | KeepEffect::Percent(100.0))
    }

    /// Whether it keeps a floor of the records (a sample above 0 % or a rate limit).
    pub fn has_floor(&self) -> bool {
        match *self {
            KeepEffect::All | KeepEffect::Rate { .. } => true,
            KeepEffect::Percent(p) => p > 0.0,
            KeepEffect::None => false,
        }
    }
}

/// The keep of a policy document (any signal).
pub fn keep_effect(policy: &Value) -> KeepEffect {
    if let Some(t) = policy.get("log") {
        let keep = t.get("keep").and_then(Value::as_str).unwrap_or("all");
        return match weir_policy_engine::compile::parse_keep(keep) {
            Some(weir_policy_engine::compile::LogKeep::All) | None => KeepEffect::All,
            Some(weir_policy_engine::compile::LogKeep::None) => KeepEffect::None,
            Some(weir_policy_engine::compile::LogKeep::Percent { percent, .. }) => {
                KeepEffect::Percent(percent)
            }
            Some(weir_policy_engine::compile::LogKeep::Rate(_)) => {
                rate(keep).unwrap_or(KeepEffect::All)
            }
        };
    }
    if let Some(t) = policy.get("metric") {
        return if t.get("keep").and_then(Value::as_bool) == Some(false) {
            KeepEffect::None
        } else {
            KeepEffect::All
        };
    }
    if let Some(t) = policy.get("trace") {
        let pct = t
            .get("keep")
            .and_then(|k| k.get("percentage"))
            .and_then(Value::as_f64)
            .unwrap_or(100.0);
        return if pct <= 0.0 {
            KeepEffect::None
        } else {
            KeepEffect::Percent(pct)
        };
    }
    KeepEffect::All
}

/// `N/s`, `N/m`, `N/Ds`, `N/Dm` (already validated by the engine's parser).
fn rate(keep: &str) -> Option<KeepEffect> {
    let (n, w) = keep.trim().split_once('/')?;
    let w = w.trim();
    let (d, per) = if let Some(d) = w.strip_suffix('m') {
        (d, 60.0)
    } else {
        (w.strip_suffix('s')?, 1.0)
    };
    let d: f64 = if d.is_empty() { 1.0 } else { d.parse().ok()? };
    Some(KeepEffect::Rate {
        n: n.trim().parse().ok()?,
        seconds: d * per,
    })
}

/// The log attribute keys a policy's transform removes.
pub fn removed_log_attributes(policy: &Value) -> Vec<String> {
    policy
        .get("log")
        .and_then(|t| t.get("transform"))
        .and_then(|t| t.get("remove"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("log_attribute"))
        .filter_map(|a| match a {
            Value::Array(p) => p.first().and_then(Value::as_str).map(str::to_string),
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// One data point of a gauge named `name` carrying `keys`.
pub fn metric_sample(name: &str, keys: &[String]) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: keys.iter().map(|k| kv(k)).collect(),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}
