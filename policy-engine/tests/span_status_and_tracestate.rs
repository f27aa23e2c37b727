//! Two trace-policy rules that the decoded and the encoded evaluation must both follow:
//! `span_status: UNSET` matches every span whose status is unset (no status, a status with
//! code 0 and an empty message, or code 0 with a message), and a span whose tracestate
//! carries an `rv` below its own `th` is kept with its tracestate untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::evaluate::{evaluate_traces, TraceVerdicts};
use weir_policy_engine::raw_traces::evaluate_traces_encoded;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

fn set(doc: &str) -> PolicySet {
    let set = PolicySet::build(parse_document(doc, "t").unwrap(), &StatsRegistry::new());
    assert!(set.entries.iter().all(|e| e.errors.is_empty()), "{set:?}");
    set
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn span(name: &str, status: Option<Status>, trace_state: &str) -> Span {
    Span {
        trace_id: vec![0x11; 16],
        span_id: vec![0x22; 8],
        name: name.into(),
        status,
        trace_state: trace_state.into(),
        ..Default::default()
    }
}

/// Evaluates on both paths and checks they agree.
fn both(set: &PolicySet, req: &ExportTraceServiceRequest) -> TraceVerdicts {
    let decoded = evaluate_traces(set, req);
    let encoded = evaluate_traces_encoded(set, &req.encode_to_vec()).expect("well-formed");
    assert_eq!(
        decoded.spans, encoded.spans,
        "decoded and encoded paths disagree"
    );
    assert_eq!(decoded.dropped, encoded.dropped);
    decoded
}

fn status_spans() -> Vec<Span> {
    let code = |c: status::StatusCode, m: &str| {
        Some(Status {
            code: c as i32,
            message: m.into(),
        })
    };
    vec![
        span("absent", None, ""),
        span("unset-empty", code(status::StatusCode::Unset, ""), ""),
        span("unset-message", code(status::StatusCode::Unset, "x"), ""),
        span("ok", code(status::StatusCode::Ok, ""), ""),
        span("error", code(status::StatusCode::Error, "boom"), ""),
    ]
}

#[test]
fn span_status_unset_matches_every_unset_status_in_every_spelling() {
    for spelling in [
        "UNSET",
        "unset",
        "STATUS_CODE_UNSET",
        "SPAN_STATUS_CODE_UNSPECIFIED",
        "UNSPECIFIED",
        "0",
    ] {
        let s = set(&format!(
            "{{id: u, name: u, trace: {{match: [{{span_status: {spelling}}}], keep: {{percentage: 0}}}}}}"
        ));
        let v = both(&s, &request(status_spans()));
        let kept: Vec<bool> = v.spans.iter().map(|d| d.keep).collect();
        assert_eq!(
            kept,
            [false, false, false, true, true],
            "span_status: {spelling}"
        );
        assert_eq!(v.dropped, 3, "span_status: {spelling}");
        // Both paths were evaluated: three matching spans each.
        let (hits, _) = s.entries[0].stats.counts();
        assert_eq!(hits, 6, "span_status: {spelling}");
    }
}

#[test]
fn span_status_ok_and_error_do_not_match_unset_spans() {
    let s = set("{id: e, name: e, trace: {match: [{span_status: ERROR}], keep: {percentage: 0}}}");
    let v = both(&s, &request(status_spans()));
    let kept: Vec<bool> = v.spans.iter().map(|d| d.keep).collect();
    assert_eq!(kept, [true, true, true, true, false]);
}

#[test]
fn an_unknown_span_status_name_is_an_error() {
    let parsed = parse_document(
        "{id: x, name: x, trace: {match: [{span_status: UNKNOWNISH}], keep: {percentage: 0}}}",
        "t",
    );
    let message = match parsed {
        Err(e) => format!("{e}"),
        Ok(p) => {
            let set = PolicySet::build(p, &StatsRegistry::new());
            format!("{:?}", set.entries[0].errors)
        }
    };
    assert!(message.contains("UNKNOWNISH"), "{message}");
}

#[test]
fn inconsistent_rv_below_th_keeps_the_span_and_its_tracestate() {
    // rv 0x10000000000000 < th 0x80000000000000 (50%): inconsistent by OpenTelemetry's rules.
    let inconsistent = "vendor=a,ot=rv:10000000000000;th:8";
    // Every mode, and 100 % too (which writes `th:0` for a consistent span).
    for mode in ["hash_seed", "proportional", "equalizing"] {
        for percentage in [1, 10, 50, 99, 100] {
            let s = set(&format!(
                "{{id: s, name: s, trace: {{match: [{{trace_field: name, exact: x}}], keep: {{percentage: {percentage}, mode: {mode}}}}}}}"
            ));
            let v = both(&s, &request(vec![span("x", None, inconsistent)]));
            assert!(v.spans[0].keep, "{mode} percentage {percentage}");
            assert_eq!(
                v.spans[0].tracestate, None,
                "{mode} percentage {percentage}: tracestate must stay as it arrived"
            );
            assert_eq!(v.dropped, 0);
            assert_eq!(v.rewritten, 0);
        }
    }
    // A consistent pair is still sampled and rewritten as usual (rv above every threshold).
    let s = set(
        "{id: s, name: s, trace: {match: [{trace_field: name, exact: x}], keep: {percentage: 25}}}",
    );
    let v = both(
        &s,
        &request(vec![span("x", None, "ot=rv:f0000000000000;th:8")]),
    );
    assert!(v.spans[0].keep);
    assert_eq!(
        v.spans[0].tracestate.as_deref(),
        Some("ot=rv:f0000000000000;th:c")
    );
}

#[test]
fn keeping_everything_never_lowers_an_incoming_threshold_outside_hash_seed() {
    // A consistent span sampled upstream at 50 % (th:8, rv above it).
    let upstream = "ot=rv:90000000000000;th:8,vendor=b";
    let decide = |mode: &str, percentage: u32, trace_state: &str| {
        let s = set(&format!(
            "{{id: s, name: s, trace: {{match: [{{trace_field: name, exact: x}}], keep: {{percentage: {percentage}, mode: {mode}}}}}}}"
        ));
        let v = both(&s, &request(vec![span("x", None, trace_state)]));
        assert!(v.spans[0].keep, "{mode} {percentage} {trace_state}");
        assert_eq!(v.dropped, 0);
        v.spans[0].tracestate.clone()
    };
    // Proportional at 100 % keeps 100 % of the incoming probability: th stays 8.
    // Equalizing at 100 % (target 0) leaves a more restrictive incoming th as it is.
    for mode in ["proportional", "equalizing"] {
        assert_eq!(decide(mode, 100, upstream), None, "{mode}");
        // Without an incoming th the span's probability is 1: th:0 is written.
        assert_eq!(
            decide(mode, 100, "vendor=b").as_deref(),
            Some("ot=th:0,vendor=b"),
            "{mode}"
        );
    }
    // hash_seed states its own probability, as the published conformance cases expect.
    assert_eq!(
        decide("hash_seed", 100, upstream).as_deref(),
        Some("ot=rv:90000000000000;th:0,vendor=b")
    );
}
