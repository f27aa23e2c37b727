//! Metric policies evaluated on the encoded request decide exactly as on prost's decoding
//! of it: same keep flags in the same order, dropped counts, policy counters (shadow drops
//! included) and output bytes, over generated requests holding every kind of metric
//! (gauges, sums, histograms, exponential histograms, summaries; metrics without points
//! and without data), every attribute value type, nested lists, empty strings and the
//! unusual encodings protobuf allows (a name given twice, two `data` members in either
//! order, the same member twice, a point's `KeyValue` holding two values, temporalities
//! beyond 32 bits, unknown fields and groups), against policies using every metric matcher
//! kind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric, NumberDataPoint};
use prost::Message;
use weir_api::metric_splice::retain_metric_points;
use weir_api::{Batch, Signal};
use weir_policy_engine::evaluate::{evaluate_metrics, MetricVerdicts};
use weir_policy_engine::raw_metrics::evaluate_metrics_encoded;
use weir_policy_engine::run::process;

mod raw_common;
#[path = "raw_metrics/requests.rs"]
mod requests;

use raw_common::{
    any, assert_shadow_and_no_match_change_nothing, build, counters, len_field, one_scope,
    process_both_ways, random_matchers, varint_field, Gen, Rng, SHADOW_LABELS, VALUE_TESTS,
};
use requests::{GAUGE, SUM};

const SELECTORS: [&str; 17] = [
    "metric_field: name",
    "metric_field: description",
    "metric_field: unit",
    "metric_field: resource_schema_url",
    "metric_field: scope_schema_url",
    "metric_field: scope_name",
    "metric_field: scope_version",
    "datapoint_attribute: k",
    "datapoint_attribute: n",
    "datapoint_attribute: [http, method]",
    "datapoint_attribute: [nest, x, deeper]",
    "datapoint_attribute: flag",
    "datapoint_attribute: ['']",
    "datapoint_attribute: x",
    "resource_attribute: svc",
    "scope_attribute: k",
    "scope_attribute: [nest, b]",
];

/// The value tests matchers pair with a selector: the shared ones, then bounds, bytes and
/// negations.
fn tests() -> Vec<&'static str> {
    [
        &["exact: alpha", "exact: ''", "regex: '^(al|ERR|http)'"][..],
        &VALUE_TESTS,
        &[
            "equals: {bytes_value: S/k=}",
            "gt: 3",
            "gte: {double_value: 2.5}",
            "lt: 0",
            "lte: {int_value: 200}",
            "starts_with: 4bf9",
            "exact: alpha, negate: true",
            "exists: true, negate: true",
            "exact: ms",
        ],
    ]
    .concat()
}

/// Matchers without a value test (type, temporality), and ones aimed at the hand-built
/// encodings, which random pairs rarely hit.
const TARGETED: [&str; 20] = [
    "{metric_type: 1}",
    "{metric_type: 2}",
    "{metric_type: 3}",
    "{metric_type: 4}",
    "{metric_type: 5}",
    "{metric_type: 2, negate: true}",
    "{metric_type: 3, exists: false}",
    "{aggregation_temporality: 0}",
    "{aggregation_temporality: 1}",
    "{aggregation_temporality: 2}",
    "{aggregation_temporality: 1, negate: true}",
    "{aggregation_temporality: 0, exists: false}",
    "{datapoint_attribute: flag, equals: true}",
    "{datapoint_attribute: flag, exists: true}",
    "{datapoint_attribute: [nest, x], exact: alpha}",
    "{datapoint_attribute: [nest, ''], gt: 0}",
    "{datapoint_attribute: k, regex: '^(al|be)'}",
    "{datapoint_attribute: [k, x], exists: true}",
    "{metric_field: name, exact: http.server.duration}",
    "{metric_field: unit, exists: false}",
];

/// A policy document of `n` metric policies: random matchers (one or two), keeps (mostly
/// drops) and shadow labels.
fn policies(rng: &mut Rng, n: usize) -> String {
    let mut doc = String::from("policies:\n");
    for i in 0..n {
        let matchers = random_matchers(rng, 40, &TARGETED, &SELECTORS, &tests());
        let keep = rng.pick(&["false", "false", "false", "none", "true", "all"]);
        let labels = if rng.chance(20) { SHADOW_LABELS } else { "" };
        doc.push_str(&format!(
            "  - {{id: p{i:03}, name: x, {labels}metric: {{match: [{matchers}], keep: {keep}}}}}\n"
        ));
    }
    doc
}

fn assert_same(raw: &MetricVerdicts, decoded: &MetricVerdicts, what: &str) {
    assert_eq!(raw.keep, decoded.keep, "{what}: keep flags");
    assert_eq!(raw.dropped, decoded.dropped, "{what}: dropped");
}

#[derive(Default)]
struct Totals {
    flags: usize,
    kept: usize,
    dropped: usize,
    shadow_drops: u64,
    prost_decoded: usize,
    undecoded_changes: usize,
    decoded_changes: usize,
}

/// Evaluates generated requests with both paths and compares everything; returns totals
/// so the caller can check that the run meant something.
fn differential(seed: u64) -> Totals {
    let mut rng = Rng(seed);
    let mut gen = Gen::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut t = Totals::default();
    let mut expected_prost = 0;
    for round in 0..12 {
        // Kept small: with many drop policies, nearly every point matches one.
        let n = 2 + rng.below(6);
        let doc = policies(&mut rng, n);
        // One set per evaluation path and use: counters are stateful, so each path has its
        // own and both see the same sequence.
        let (raw_set, decoded_set) = (build(&doc), build(&doc));
        let (raw_proc, decoded_proc) = (build(&doc), build(&doc));
        for case in 0..15 {
            let what = format!("seed {seed} round {round} case {case}");
            let bytes = Bytes::from(gen.request(Gen::metric));
            expected_prost += gen.expected_prost(raw_set.metrics.reads);
            let req = ExportMetricsServiceRequest::decode(bytes.clone()).unwrap();
            let decoded = evaluate_metrics(&decoded_set, &req);
            let raw = evaluate_metrics_encoded(&raw_set, &bytes).expect("readable request");
            assert_same(&raw, &decoded, &what);
            assert_eq!(
                counters(&raw_set),
                counters(&decoded_set),
                "{what}: counters"
            );
            assert_eq!(decoded.prost_decoded, 0);
            t.flags += raw.keep.len();
            t.dropped += raw.dropped;
            t.kept += raw.keep.len() - raw.dropped;
            t.prost_decoded += raw.prost_decoded;

            // The same through `process`: one batch decoded first, one left as received;
            // every fifth case in shadow mode, which changes nothing.
            let points = Batch::decode(Signal::Metrics, bytes.clone())
                .unwrap()
                .item_count();
            let shadow = case % 5 == 4;
            let (b, raw_batch) = process_both_ways(
                Signal::Metrics,
                &bytes,
                &decoded_proc,
                &raw_proc,
                shadow,
                &what,
            );
            assert_eq!(b.dropped, raw.dropped, "{what}: dropped through process");
            if shadow || !b.changed {
                assert_eq!(raw_batch.to_protobuf(), bytes, "{what}: unchanged");
                assert!(!raw_batch.is_decoded(), "{what}: unchanged, undecoded");
            } else if raw.keep.len() == points {
                // A flag per point: cut out of the bytes, not decoded, unless the cut
                // refuses the bytes (a group where it walks: a metric's or a member's top
                // level); then the decoded request is edited, as on the decoded path.
                let cut = retain_metric_points(&bytes, &raw.keep).is_ok();
                assert_eq!(raw_batch.is_decoded(), !cut, "{what}: decoded only to cut");
                assert_eq!(raw_batch.item_count(), points - raw.dropped, "{what}");
                if cut {
                    t.undecoded_changes += 1;
                }
            } else {
                // A metric without points has a flag of its own: the decoded request is
                // edited.
                assert!(raw_batch.is_decoded(), "{what}: a metric without points");
                t.decoded_changes += 1;
            }
        }
        t.shadow_drops += counters(&raw_set).iter().map(|c| c.3).sum::<u64>();
    }
    assert_eq!(
        t.prost_decoded, expected_prost,
        "exactly the metrics with merged messages or groups in what is read go through prost"
    );
    eprintln!(
        "seed {seed}: {} flags, {} kept, {} dropped, {} shadow drops, {} metrics through prost, {} cut undecoded, {} edited decoded",
        t.flags, t.kept, t.dropped, t.shadow_drops, t.prost_decoded, t.undecoded_changes, t.decoded_changes
    );
    t
}

#[test]
fn raw_evaluation_equals_decoded_evaluation() {
    let mut shadow_drops = 0;
    for seed in [0x1234_5678_9abc_def1, 0xdead_beef_cafe_f00d, 7, 42, 0x5eed] {
        let t = differential(seed);
        assert!(t.flags > 1000, "too few points: {}", t.flags);
        assert!(t.dropped > t.flags / 20, "dropped {}", t.dropped);
        assert!(t.kept > t.flags / 5, "kept {}", t.kept);
        assert!(t.undecoded_changes > 10, "cut {}", t.undecoded_changes);
        assert!(t.decoded_changes > 10, "edited {}", t.decoded_changes);
        assert!(t.prost_decoded > 10, "prost decoded {}", t.prost_decoded);
        assert!(t.prost_decoded < t.flags / 5);
        shadow_drops += t.shadow_drops;
    }
    assert!(shadow_drops > 100, "shadow drops {shadow_drops}");
}

/// A string attribute.
fn attr(key: &str, value: &str) -> Vec<u8> {
    KeyValue {
        key: key.into(),
        value: Some(any(any_value::Value::StringValue(value.into()))),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A number point with the attribute `user` (several: the first counts).
fn point(users: &[&str]) -> Vec<u8> {
    let mut p = NumberDataPoint {
        time_unix_nano: 1,
        ..Default::default()
    }
    .encode_to_vec();
    for u in users {
        len_field(&mut p, 7, &attr("user", u));
    }
    p
}

/// A gauge or sum occurrence (by field number) holding `points`, with `temporality` when
/// given.
fn member(points: &[Vec<u8>], temporality: Option<u64>) -> Vec<u8> {
    let mut m = Vec::new();
    for p in points {
        len_field(&mut m, 1, p);
    }
    if let Some(t) = temporality {
        varint_field(&mut m, 2, t);
    }
    m
}

/// A metric: its names (the last counts), then its `data` occurrences (number, body).
fn metric(names: &[&str], data: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut m = Vec::new();
    for n in names {
        len_field(&mut m, 1, n.as_bytes());
    }
    for (number, body) in data {
        len_field(&mut m, *number, body);
    }
    m
}

/// Each metric's name and the `user` of each of its points.
fn names_and_users(batch: &Batch) -> Vec<(String, Vec<String>)> {
    let req = ExportMetricsServiceRequest::decode(batch.to_protobuf()).unwrap();
    let user = |attrs: &[KeyValue]| match attrs.first().and_then(|a| a.value.as_ref()) {
        Some(v) => match &v.value {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("{other:?}"),
        },
        None => String::new(),
    };
    let metrics: Vec<&Metric> = req
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .collect();
    metrics
        .into_iter()
        .map(|m| {
            let users = match &m.data {
                Some(Data::Gauge(g)) => g.data_points.iter().map(|p| user(&p.attributes)).collect(),
                Some(Data::Sum(s)) => s.data_points.iter().map(|p| user(&p.attributes)).collect(),
                other => panic!("{other:?}"),
            };
            (m.name.clone(), users)
        })
        .collect()
}

#[test]
fn a_drop_only_set_cuts_the_bytes_without_decoding() {
    let bytes = one_scope(&[
        // Named "debug" at last: every point dropped.
        metric(
            &["app", "debug"],
            &[(GAUGE, member(&[point(&["a"])], None))],
        ),
        // A gauge then a sum: the sum alone, cumulative (2), whose point "x" is dropped.
        metric(
            &["debug", "app.a"],
            &[
                (GAUGE, member(&[point(&["gone"])], None)),
                (SUM, member(&[point(&["x"]), point(&["b"])], Some(2))),
            ],
        ),
        // A sum twice: one sum with the points of both; its temporality is the last one
        // given (delta, 1), so the sum is kept whole but for "x" (first `user` counts).
        metric(
            &["app.b"],
            &[
                (SUM, member(&[point(&["c", "x"])], Some(2))),
                (SUM, member(&[point(&["x", "d"])], Some(1))),
            ],
        ),
        // A sum then a gauge: the gauge alone, whose temporality is none.
        metric(
            &["app.c"],
            &[
                (SUM, member(&[point(&["x"])], Some(2))),
                (GAUGE, member(&[point(&["e"])], None)),
            ],
        ),
    ]);
    let set = build(
        "policies:\n  - {id: no-debug, name: x, metric: {match: [{metric_field: name, exact: debug}], keep: false}}\n  - {id: no-x, name: x, metric: {match: [{datapoint_attribute: user, exact: x}, {aggregation_temporality: 1, negate: true}], keep: false}}\n",
    );
    let mut batch = Batch::decode(Signal::Metrics, bytes.clone()).unwrap();
    assert_eq!(batch.item_count(), 6);
    let out = process(&set, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (2, true));
    assert!(!batch.is_decoded(), "evaluated and cut without decoding");
    assert_eq!(batch.item_count(), 4);
    assert_eq!(
        names_and_users(&batch),
        [
            ("app.a".to_string(), vec!["b".to_string()]),
            ("app.b".to_string(), vec!["c".to_string(), "x".to_string()]),
            ("app.c".to_string(), vec!["e".to_string()]),
        ]
    );
    assert_eq!(set.entries[0].stats.counts(), (1, 0));
    assert_eq!(set.entries[1].stats.counts(), (1, 0));
    // Names, members and temporalities given twice are read in place.
    let raw = evaluate_metrics_encoded(&build(&set_doc_no_x()), &bytes).unwrap();
    assert_eq!(raw.keep, [true, false, true, true, false, true]);
    assert_eq!(raw.prost_decoded, 0);
}

fn set_doc_no_x() -> String {
    "policies:\n  - {id: no-x, name: x, metric: {match: [{datapoint_attribute: user, exact: x}], keep: false}}\n".into()
}

#[test]
fn a_point_whose_attribute_holds_two_values_goes_through_prost() {
    // A `KeyValue` with two values: prost merges them (two strings: the last one).
    let mut kv = Vec::new();
    len_field(&mut kv, 1, b"user");
    len_field(
        &mut kv,
        2,
        &any(any_value::Value::StringValue("a".into())).encode_to_vec(),
    );
    len_field(
        &mut kv,
        2,
        &any(any_value::Value::StringValue("x".into())).encode_to_vec(),
    );
    let mut odd = point(&[]);
    len_field(&mut odd, 7, &kv);
    let bytes = one_scope(&[
        metric(&["m"], &[(GAUGE, member(&[point(&["a"]), odd], None))]),
        metric(&["n"], &[(GAUGE, member(&[point(&["x"])], None))]),
    ]);
    let set = build(&set_doc_no_x());
    let raw = evaluate_metrics_encoded(&set, &bytes).unwrap();
    assert_eq!(raw.keep, [true, false, false]);
    assert_eq!(raw.prost_decoded, 1);
}

#[test]
fn a_metric_without_points_has_a_flag_of_its_own() {
    let bytes = one_scope(&[
        metric(&["debug"], &[]),
        metric(&["app"], &[(GAUGE, member(&[point(&["a"])], None))]),
        metric(&["debug"], &[(SUM, member(&[], Some(1)))]),
        metric(&["app"], &[]),
    ]);
    let set = build(
        "policies:\n  - {id: no-debug, name: x, metric: {match: [{metric_field: name, exact: debug}], keep: false}}\n",
    );
    let raw = evaluate_metrics_encoded(&set, &bytes).unwrap();
    assert_eq!(raw.keep, [false, true, false, true]);
    let mut batch = Batch::decode(Signal::Metrics, bytes).unwrap();
    let out = process(&set, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (2, true));
    assert!(batch.is_decoded(), "the decoded request is edited");
    let req = ExportMetricsServiceRequest::decode(batch.to_protobuf()).unwrap();
    let names: Vec<&str> = req.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["app", "app"]);
}

#[test]
fn shadow_mode_and_no_match_leave_the_batch_undecoded_and_unchanged() {
    assert_shadow_and_no_match_change_nothing(
        Signal::Metrics,
        &one_scope(&[
            metric(&["debug"], &[(GAUGE, member(&[point(&["a"])], None))]),
            metric(&["app"], &[(GAUGE, member(&[point(&["b"])], None))]),
        ]),
        "policies:\n  - {id: no-debug, name: x, metric: {match: [{metric_field: name, exact: debug}], keep: false}}\n",
        "policies:\n  - {id: no-x, name: x, metric: {match: [{metric_field: name, exact: x}], keep: false}}\n",
    );
}
