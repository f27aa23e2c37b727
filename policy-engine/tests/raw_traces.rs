//! Trace policies evaluated on the encoded request decide exactly as on prost's decoding of
//! it: same span decisions (tracestate rewrites included), dropped and rewritten counts,
//! policy counters and output bytes, over generated requests that use every attribute value
//! type, events with attributes, links, statuses, and the unusual encodings protobuf allows
//! (repeated singular fields, a status given twice, merged messages, oneofs set twice,
//! unknown fields and groups), against policies using every trace matcher kind and every
//! sampling mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use weir_api::{Batch, Signal};
use weir_policy_engine::evaluate::{evaluate_traces, TraceVerdicts};
use weir_policy_engine::raw_traces::evaluate_traces_encoded;
use weir_policy_engine::run::process;

mod raw_common;
#[path = "raw_traces/requests.rs"]
mod requests;

use raw_common::{
    assert_shadow_and_no_match_change_nothing, build, counters, len_field, one_scope,
    process_both_ways, random_matchers, varint_field, Gen, Rng, SHADOW_LABELS, TRACE_ID,
    VALUE_TESTS,
};

const SELECTORS: [&str; 20] = [
    "trace_field: name",
    "trace_field: trace_id",
    "trace_field: span_id",
    "trace_field: parent_span_id",
    "trace_field: trace_state",
    "trace_field: resource_schema_url",
    "trace_field: scope_schema_url",
    "trace_field: scope_name",
    "trace_field: scope_version",
    "span_attribute: k",
    "span_attribute: n",
    "span_attribute: [http, method]",
    "span_attribute: [nest, x, deeper]",
    "span_attribute: flag",
    "span_attribute: ['']",
    "resource_attribute: svc",
    "scope_attribute: [nest, b]",
    "event_attribute: k",
    "event_attribute: [nest, x]",
    "event_attribute: n",
];

/// The value tests matchers pair with a selector: the shared ones, then bounds, ids, negations and tracestates.
fn tests() -> Vec<&'static str> {
    [
        &["exact: alpha", "exact: ''", "regex: '^(al|ERR|GET)'"][..],
        &VALUE_TESTS,
        &[
            "gt: 3",
            "gte: {double_value: 2.5}",
            "lt: 0",
            "exact: 4bf92f3577b34da6a3ce929d0e0e4736",
            "starts_with: 4bf9",
            "exact: alpha, negate: true",
            "exists: true, negate: true",
            "regex: 'rv:'",
        ],
    ]
    .concat()
}

/// Matchers without a value test (kind, status, event names, links), and ones aimed at the
/// hand-built encodings, which random pairs rarely hit.
const TARGETED: [&str; 20] = [
    "{span_kind: server}",
    "{span_kind: client, negate: true}",
    "{span_kind: internal}",
    "{span_kind: producer, exists: false}",
    "{span_status: ok}",
    "{span_status: error}",
    "{span_status: unspecified}",
    "{span_status: error, negate: true}",
    "{event_name: alpha}",
    "{event_name: exception}",
    "{event_name: beta, negate: true}",
    "{link_trace_id: 4BF92F3577B34DA6A3CE929D0E0E4736}",
    "{link_trace_id: 5b8efff798038103d269b633813fc60c, negate: true}",
    "{span_attribute: flag, equals: true}",
    "{span_attribute: [nest, x], exact: alpha}",
    "{event_attribute: flag, equals: true}",
    "{event_attribute: k, exists: false}",
    "{event_attribute: [nest, ''], gt: 0}",
    "{trace_field: trace_state, contains: 'ot=th'}",
    "{trace_field: name, exact: 'GET /items'}",
];

/// Sampling keeps of every mode; `{percentage: 0}` drops without writing a tracestate.
const KEEPS: [&str; 10] = [
    "{percentage: 0}",
    "{percentage: 100}",
    "{percentage: 50}",
    "'50%'",
    "{percentage: 10, mode: proportional}",
    "{percentage: 60, mode: equalizing, sampling_precision: 6}",
    "{percentage: 50, hash_seed: 7}",
    "{percentage: 30, fail_closed: false}",
    "{percentage: 25, mode: proportional, fail_closed: false}",
    "0",
];

/// A policy document of `n` trace policies: random matchers (one or two), keeps and shadow
/// labels. Without `sampling`, the policies that decide only drop (`percentage: 0`), so
/// no tracestate is ever written; shadow policies sample in every mode either way.
fn policies(rng: &mut Rng, n: usize, sampling: bool) -> String {
    let mut doc = String::from("policies:\n");
    for i in 0..n {
        let matchers = random_matchers(rng, 35, &TARGETED, &SELECTORS, &tests());
        let shadow = rng.chance(15);
        let keep = if sampling || shadow {
            rng.pick(&KEEPS)
        } else {
            rng.pick(&["{percentage: 0}", "0"])
        };
        let labels = if shadow { SHADOW_LABELS } else { "" };
        doc.push_str(&format!(
            "  - {{id: p{i:03}, name: x, {labels}trace: {{match: [{matchers}], keep: {keep}}}}}\n"
        ));
    }
    doc
}

fn assert_same(raw: &TraceVerdicts, decoded: &TraceVerdicts, what: &str) {
    assert_eq!(raw.spans, decoded.spans, "{what}: span decisions");
    assert_eq!(raw.dropped, decoded.dropped, "{what}: dropped");
    assert_eq!(raw.rewritten, decoded.rewritten, "{what}: rewritten");
}

#[derive(Default)]
struct Totals {
    spans: usize,
    kept: usize,
    dropped: usize,
    rewritten: usize,
    prost_decoded: usize,
    undecoded_changes: usize,
}

/// Evaluates generated requests with both paths and compares everything; returns totals
/// so the caller can check that the run meant something.
fn differential(seed: u64, sampling: bool) -> Totals {
    let mut rng = Rng(seed);
    let mut gen = Gen::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut t = Totals::default();
    let mut expected_prost = 0;
    for round in 0..12 {
        // Drop-only sets are kept small: with many, nearly every span matches one.
        let n = if sampling {
            6 + rng.below(20)
        } else {
            2 + rng.below(5)
        };
        let doc = policies(&mut rng, n, sampling);
        // One set per evaluation path and use: counters are stateful, so each path has its
        // own and both see the same sequence.
        let (raw_set, decoded_set) = (build(&doc), build(&doc));
        let (raw_proc, decoded_proc) = (build(&doc), build(&doc));
        for case in 0..15 {
            let what = format!("seed {seed} round {round} case {case}");
            let bytes = Bytes::from(gen.request(Gen::span));
            expected_prost += gen.expected_prost(raw_set.traces.reads);
            let req = ExportTraceServiceRequest::decode(bytes.clone()).unwrap();
            let decoded = evaluate_traces(&decoded_set, &req);
            let raw = evaluate_traces_encoded(&raw_set, &bytes).expect("readable request");
            assert_same(&raw, &decoded, &what);
            assert_eq!(
                counters(&raw_set),
                counters(&decoded_set),
                "{what}: counters"
            );
            assert_eq!(decoded.prost_decoded, 0);
            t.spans += raw.spans.len();
            t.dropped += raw.dropped;
            t.kept += raw.spans.len() - raw.dropped;
            t.rewritten += raw.rewritten;
            t.prost_decoded += raw.prost_decoded;

            // The same through `process`: one batch decoded first, one left as received;
            // every fifth case in shadow mode, which changes nothing.
            let shadow = case % 5 == 4;
            let (b, raw_batch) = process_both_ways(
                Signal::Traces,
                &bytes,
                &decoded_proc,
                &raw_proc,
                shadow,
                &what,
            );
            assert_eq!(b.dropped, raw.dropped, "{what}: dropped through process");
            assert_eq!(
                raw_batch.item_count(),
                raw.spans.len() - if shadow { 0 } else { raw.dropped },
                "{what}: spans left"
            );
            if shadow || !b.changed {
                assert_eq!(raw_batch.to_protobuf(), bytes, "{what}: unchanged");
            }
            if shadow || raw.rewritten == 0 {
                assert!(!raw_batch.is_decoded(), "{what}: drops only never decode");
                if b.changed {
                    t.undecoded_changes += 1;
                }
            } else {
                assert!(raw_batch.is_decoded(), "{what}: a rewrite decodes");
            }
        }
    }
    assert_eq!(
        t.prost_decoded, expected_prost,
        "exactly the spans with merged messages (in what a policy reads) or groups go through prost"
    );
    eprintln!(
        "seed {seed}: {} spans, {} kept, {} dropped, {} rewritten, {} through prost, {} cut undecoded",
        t.spans, t.kept, t.dropped, t.rewritten, t.prost_decoded, t.undecoded_changes
    );
    t
}

#[test]
fn raw_evaluation_equals_decoded_evaluation_for_drop_policies() {
    for seed in [0x1234_5678_9abc_def1, 0xdead_beef_cafe_f00d, 7] {
        let t = differential(seed, false);
        assert!(t.spans > 1000, "too few spans: {}", t.spans);
        assert!(t.dropped > t.spans / 20, "dropped {}", t.dropped);
        assert!(t.kept > t.spans / 5, "kept {}", t.kept);
        assert_eq!(t.rewritten, 0, "drop-only policies write no tracestate");
        assert!(t.undecoded_changes > 20, "cut {}", t.undecoded_changes);
        assert!(t.prost_decoded > 10, "prost decoded {}", t.prost_decoded);
        assert!(t.prost_decoded < t.spans / 5);
    }
}

#[test]
fn raw_evaluation_equals_decoded_evaluation_with_sampling() {
    for seed in [0x0bad_c0de_0bad_c0de, 42, 0x5eed] {
        let t = differential(seed, true);
        assert!(t.spans > 1000, "too few spans: {}", t.spans);
        assert!(t.rewritten > t.spans / 20, "rewritten {}", t.rewritten);
        assert!(t.dropped > t.spans / 20, "dropped {}", t.dropped);
        assert!(t.kept > t.spans / 5, "kept {}", t.kept);
    }
}

/// A span named by its `names` (the last counts) with its statuses given as (code or none).
fn span_with(names: &[&str], statuses: &[Option<u64>]) -> Vec<u8> {
    let mut s = Vec::new();
    len_field(&mut s, 1, &TRACE_ID);
    for n in names {
        len_field(&mut s, 5, n.as_bytes());
    }
    for code in statuses {
        let mut status = Vec::new();
        len_field(&mut status, 2, b"msg");
        if let Some(c) = code {
            varint_field(&mut status, 3, *c);
        }
        len_field(&mut s, 15, &status);
    }
    s
}

fn names(batch: &Batch) -> Vec<String> {
    let req = ExportTraceServiceRequest::decode(batch.to_protobuf()).unwrap();
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn a_drop_only_set_cuts_the_bytes_without_decoding() {
    let bytes = one_scope(&[
        span_with(&["debug", "a"], &[Some(2), None]),
        span_with(&["a", "debug"], &[]),
        span_with(&["b"], &[Some(2), Some(1)]),
        span_with(&["c"], &[Some(1), Some(2)]),
    ]);
    let set = build(
        "policies:\n  - {id: no-debug, name: x, trace: {match: [{trace_field: name, exact: debug}], keep: {percentage: 0}}}\n  - {id: no-errors, name: x, trace: {match: [{span_status: error}], keep: {percentage: 0}}}\n",
    );
    let mut batch = Batch::decode(Signal::Traces, bytes).unwrap();
    let out = process(&set, &mut batch, false);
    // The last name counts (span 2 is "debug"); statuses merge, the last code counting (a
    // status without a code leaves span 1 at ERROR; span 4 ends at ERROR, span 3 at OK).
    assert_eq!((out.dropped, out.changed), (3, true));
    assert!(!batch.is_decoded(), "evaluated and cut without decoding");
    assert_eq!(batch.item_count(), 1);
    assert_eq!(names(&batch), ["b"]);
    assert_eq!(set.entries[0].stats.counts(), (1, 0));
    assert_eq!(set.entries[1].stats.counts(), (2, 0));
}

#[test]
fn a_tracestate_rewrite_decodes_and_writes_the_threshold() {
    let mut kept = span_with(&["kept"], &[]);
    len_field(&mut kept, 3, b"ot=rv:ffffffffffffff");
    let mut dropped = span_with(&["dropped"], &[]);
    len_field(&mut dropped, 3, b"ot=rv:00000000000001");
    let bytes = one_scope(&[kept, dropped]);
    let set = build(
        "policies:\n  - {id: half, name: x, trace: {match: [{trace_field: trace_state, contains: 'rv:'}], keep: {percentage: 50}}}\n",
    );
    let mut batch = Batch::decode(Signal::Traces, bytes).unwrap();
    let out = process(&set, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (1, true));
    assert!(batch.is_decoded());
    let req = ExportTraceServiceRequest::decode(batch.to_protobuf()).unwrap();
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "kept");
    assert_eq!(spans[0].trace_state, "ot=rv:ffffffffffffff;th:8");
}

#[test]
fn shadow_mode_and_no_match_leave_the_batch_undecoded_and_unchanged() {
    assert_shadow_and_no_match_change_nothing(
        Signal::Traces,
        &one_scope(&[span_with(&["debug"], &[]), span_with(&["a"], &[])]),
        "policies:\n  - {id: no-debug, name: x, trace: {match: [{trace_field: name, exact: debug}], keep: {percentage: 0}}}\n",
        "policies:\n  - {id: no-x, name: x, trace: {match: [{trace_field: name, exact: x}], keep: {percentage: 0}}}\n",
    );
}
