//! Sampling over large counts: observed rates within statistical bounds, equal sample keys
//! always decided alike, rate limits exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::evaluate::{evaluate_logs, evaluate_traces};
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

fn set(doc: &str) -> PolicySet {
    let set = PolicySet::build(parse_document(doc, "t").unwrap(), &StatsRegistry::new());
    assert!(set.entries.iter().all(|e| e.errors.is_empty()), "{set:?}");
    set
}

fn logs(keys: impl Iterator<Item = String>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: keys
                    .map(|k| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("event".into())),
                        }),
                        attributes: vec![KeyValue {
                            key: "request_id".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(k)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Whether `kept` of `n` is within 5 standard deviations of `p`.
fn within_bounds(kept: usize, n: usize, p: f64) -> bool {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (kept as f64 - n as f64 * p).abs() <= 5.0 * sd
}

#[test]
fn unkeyed_percentage_is_random_per_record_and_on_rate() {
    let s = set("{id: p, name: p, log: {match: [{log_field: body, exists: true}], keep: 25%}}");
    let n = 20_000;
    let req = logs((0..n).map(|_| "same".to_string()));
    let v = evaluate_logs(&s, &req, std::time::Instant::now());
    let kept = v.keep.iter().filter(|k| **k).count();
    assert!(within_bounds(kept, n, 0.25), "kept {kept} of {n}");
    // Records with identical content are still decided independently.
    assert!(kept > 0 && kept < n);
    let (hits, misses) = s.entries[0].stats.counts();
    assert_eq!((hits, misses), (n as u64, 0));
}

#[test]
fn keyed_percentage_is_consistent_and_on_rate() {
    let s = set(
        "{id: p, name: p, log: {match: [{log_field: body, exists: true}], keep: 10%, sample_key: {log_attribute: request_id}}}",
    );
    let n = 20_000;
    // Each key three times, in three separate batches.
    let mut decisions: Vec<Vec<bool>> = vec![];
    for _ in 0..3 {
        let req = logs((0..n).map(|i| format!("req-{i}")));
        decisions.push(evaluate_logs(&s, &req, std::time::Instant::now()).keep);
    }
    assert_eq!(decisions[0], decisions[1]);
    assert_eq!(decisions[1], decisions[2]);
    let kept = decisions[0].iter().filter(|k| **k).count();
    assert!(within_bounds(kept, n, 0.10), "kept {kept} of {n}");
    // Within one batch too: equal keys, equal decisions.
    let req = logs((0..n).map(|i| format!("req-{}", i % 50)));
    let v = evaluate_logs(&s, &req, std::time::Instant::now()).keep;
    for i in 50..n {
        assert_eq!(v[i], v[i % 50], "key req-{} decided differently", i % 50);
    }
}

#[test]
fn rate_limits_admit_exactly_the_budget() {
    let s = set("{id: r, name: r, log: {match: [{log_field: body, exists: true}], keep: 100/m}}");
    let req = logs((0..1000).map(|i| format!("{i}")));
    let v = evaluate_logs(&s, &req, std::time::Instant::now());
    assert_eq!(v.keep.iter().filter(|k| **k).count(), 100);
    assert!(v.keep[..100].iter().all(|k| *k));
    // The budget is spent for this window: the next batch keeps nothing.
    let v = evaluate_logs(&s, &req, std::time::Instant::now());
    assert_eq!(v.keep.iter().filter(|k| **k).count(), 0);
    // Hits count every matching record: the limiter itself decided each one.
    assert_eq!(s.entries[0].stats.counts(), (2000, 0));
}

fn spans(n: usize, seed: u64) -> ExportTraceServiceRequest {
    // A small xorshift so trace ids are spread but reproducible.
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|_| {
                        let mut id = next().to_be_bytes().to_vec();
                        id.extend_from_slice(&next().to_be_bytes());
                        Span {
                            trace_id: id,
                            span_id: next().to_be_bytes().to_vec(),
                            name: "op".into(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn trace_sampling_modes_hold_their_rates() {
    let n = 20_000;
    let req = spans(n, 0x9e37_79b9_7f4a_7c15);
    for (keep, p) in [
        ("{percentage: 30}", 0.30),
        ("{percentage: 30, hash_seed: 42}", 0.30),
        ("{percentage: 5, mode: proportional}", 0.05),
        (
            "{percentage: 60, mode: equalizing, sampling_precision: 6}",
            0.60,
        ),
    ] {
        let s = set(&format!(
            "{{id: t, name: t, trace: {{match: [{{trace_field: name, exact: op}}], keep: {keep}}}}}"
        ));
        let v = evaluate_traces(&s, &req);
        let kept = v.spans.iter().filter(|d| d.keep).count();
        assert!(within_bounds(kept, n, p), "{keep}: kept {kept} of {n}");
        // The same trace ids give the same decisions on a second pass.
        let again = evaluate_traces(&s, &req);
        assert_eq!(v.spans, again.spans, "{keep}");
    }
}

#[test]
fn different_seeds_decide_differently_same_seed_alike() {
    let n = 5_000;
    let req = spans(n, 7);
    let run = |seed: u32| {
        let s = set(&format!(
            "{{id: t, name: t, trace: {{match: [{{trace_field: name, exact: op}}], keep: {{percentage: 50, hash_seed: {seed}}}}}}}"
        ));
        evaluate_traces(&s, &req)
            .spans
            .iter()
            .map(|d| d.keep)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    let differ = run(1).iter().zip(run(2)).filter(|(a, b)| **a != *b).count();
    // Independent 50% decisions differ about half the time.
    assert!(within_bounds(differ, n, 0.5), "{differ}");
}
