//! Log policies evaluated on the encoded request decide exactly as on prost's decoding of
//! it: same keep flags, dropped counts, transform lists, policy counters and output bytes,
//! over generated requests that use every attribute value type, nested lists, empty
//! strings and the unusual encodings protobuf allows (repeated singular fields, merged
//! messages, oneofs set twice, unknown fields and groups), against policies using every
//! log matcher kind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use weir_api::{Batch, Signal};
use weir_policy_engine::evaluate::{evaluate_logs, LogVerdicts};
use weir_policy_engine::raw_logs::evaluate_logs_encoded;
use weir_policy_engine::run::process;

mod raw_common;

use raw_common::{
    any, assert_shadow_and_no_match_change_nothing, build, counters, len_field, one_scope,
    process_both_ways, random_matchers, unknown_group, varint_field, Gen, Prost, Rng,
    SHADOW_LABELS, TRACE_ID, VALUE_TESTS, WORDS,
};

/// The log record generator: the shared `Gen` writes values, scopes, resources and
/// requests around it.
impl Gen {
    fn record(&mut self) -> Vec<u8> {
        let r = &mut self.rng;
        let record = LogRecord {
            time_unix_nano: r.next(),
            severity_number: r.below(25) as i32,
            severity_text: r.pick(&["", "INFO", "ERROR", "debug", "alpha"]).into(),
            trace_id: TRACE_ID[..r.pick(&[0, 16, 16])].to_vec(),
            span_id: TRACE_ID[8..8 + r.pick(&[0, 8])].to_vec(),
            event_name: r.pick(&["", "login", "alpha"]).into(),
            flags: r.below(3) as u32,
            ..Default::default()
        };
        let record = LogRecord {
            body: self.rng.chance(85).then(|| self.value(0)),
            attributes: self.key_values(0),
            ..record
        };
        let mut bytes = record.encode_to_vec();
        let mut has_body = record.body.is_some();
        let mut prost = Prost::default();
        let odd = if self.rng.chance(35) {
            self.rng.below(3) + 1
        } else {
            0
        };
        for _ in 0..odd {
            let word = self.rng.pick(&WORDS);
            match self.rng.below(10) {
                0 => len_field(&mut bytes, 3, word.as_bytes()),
                1 => len_field(&mut bytes, 9, &TRACE_ID[..self.rng.pick(&[0, 16])]),
                2 => len_field(&mut bytes, 12, word.as_bytes()),
                3 => {
                    // A body after the attributes; a second body is merged by prost. A
                    // body holding two key-value lists (merged too) reads as a list
                    // whatever the lists hold, so the raw reader keeps it.
                    prost.other |= has_body;
                    has_body = true;
                    let mut v = self.value(0).encode_to_vec();
                    if self.rng.chance(30) {
                        let first = self.encoded_list();
                        v = [first, v, self.encoded_list()].concat();
                    }
                    len_field(&mut bytes, 5, &v);
                }
                4 | 5 => self.append_odd_attribute(6, &mut bytes, &mut prost.attributes),
                6 => self.prepend_odd_attribute(6, &mut bytes, &mut prost.attributes),
                7 => {
                    // Unknown fields, and the reserved field 4.
                    varint_field(&mut bytes, 100, 7);
                    bytes.extend_from_slice(&[4 << 3 | 5, 1, 2, 3, 4]);
                }
                8 => {
                    unknown_group(&mut bytes);
                    prost.other = true;
                }
                _ => len_field(&mut bytes, 10, &TRACE_ID[..self.rng.pick(&[0, 8])]),
            }
        }
        self.prost.push(prost);
        bytes
    }
}

const SELECTORS: [&str; 19] = [
    "log_field: body",
    "log_field: severity_text",
    "log_field: trace_id",
    "log_field: span_id",
    "log_field: event_name",
    "log_field: resource_schema_url",
    "log_field: scope_schema_url",
    "log_attribute: k",
    "log_attribute: n",
    "log_attribute: [http, method]",
    "log_attribute: [nest, x, deeper]",
    "log_attribute: flag",
    "log_attribute: ['']",
    "log_attribute: [k, k]",
    "log_attribute: x",
    "resource_attribute: svc",
    "resource_attribute: [nest, k]",
    "scope_attribute: k",
    "scope_attribute: [nest, b]",
];

/// The value tests matchers pair with a selector: the shared ones, then bytes, bounds, ids and negations.
fn tests() -> Vec<&'static str> {
    [
        &["exact: alpha", "exact: ''", "regex: '^(al|ERR)'"][..],
        &VALUE_TESTS,
        &[
            "equals: {bytes_value: S/k=}",
            "gt: 3",
            "gte: {double_value: 2.5}",
            "lt: 0",
            "lte: {int_value: 200}",
            "exact: 4bf92f3577b34da6a3ce929d0e0e4736",
            "starts_with: 4bf9",
            "exact: alpha, negate: true",
            "exists: true, negate: true",
            "regex: '^4bf9.*36$'",
        ],
    ]
    .concat()
}

/// Matchers aimed at the hand-built encodings, which random pairs rarely hit.
const TARGETED: [&str; 7] = [
    "{log_attribute: flag, equals: true}",
    "{log_attribute: flag, equals: false}",
    "{log_attribute: flag, exists: true}",
    "{log_attribute: [nest, x], exact: alpha}",
    "{log_attribute: [nest, ''], gt: 0}",
    "{log_attribute: k, regex: '^(al|be)'}",
    "{log_attribute: [k, x], exists: true}",
];

const SAMPLE_KEYS: [&str; 5] = [
    "{log_field: trace_id}",
    "{log_attribute: k}",
    "{log_field: body}",
    "{resource_attribute: svc}",
    "{log_attribute: [http, method]}",
];

const TRANSFORMS: [&str; 4] = [
    "{add: [{log_attribute: seen, value: 'yes'}]}",
    "{remove: [{log_attribute: k}]}",
    "{redact: [{log_field: body, replacement: '***'}]}",
    "{rename: [{from_log_attribute: n, to: m}]}",
];

/// A policy document of `n` log policies: random matchers (one or two), keeps, sample keys,
/// shadow labels and, with `transforms`, transforms. Percentages always have a sample key
/// (without one they draw a random number, which no two evaluations share).
fn policies(rng: &mut Rng, n: usize, transforms: bool) -> String {
    let mut doc = String::from("policies:\n");
    for i in 0..n {
        let matchers = random_matchers(rng, 25, &TARGETED, &SELECTORS, &tests());
        let keep = rng.pick(&["none", "all", "all", "50%", "10%", "2/m", "1/s"]);
        let mut extra = String::new();
        if keep.ends_with('%') || (keep.contains('/') && rng.chance(50)) {
            extra.push_str(&format!(", sample_key: {}", rng.pick(&SAMPLE_KEYS)));
        }
        if transforms && rng.chance(40) {
            extra.push_str(&format!(", transform: {}", rng.pick(&TRANSFORMS)));
        }
        let labels = if rng.chance(15) { SHADOW_LABELS } else { "" };
        doc.push_str(&format!(
            "  - {{id: p{i:03}, name: x, {labels}log: {{match: [{matchers}], keep: '{keep}'{extra}}}}}\n"
        ));
    }
    doc
}

fn assert_same(raw: &LogVerdicts, decoded: &LogVerdicts, what: &str) {
    assert_eq!(raw.keep, decoded.keep, "{what}: keep flags");
    assert_eq!(raw.dropped, decoded.dropped, "{what}: dropped");
    assert_eq!(raw.transforms, decoded.transforms, "{what}: transforms");
    assert_eq!(
        raw.transform_policies, decoded.transform_policies,
        "{what}: transform policies"
    );
}

#[derive(Default)]
struct Totals {
    records: usize,
    kept: usize,
    dropped: usize,
    transformed: usize,
    prost_decoded: usize,
}

/// Evaluates generated requests with both paths and compares everything; returns totals
/// so the caller can check that the run meant something.
fn differential(seed: u64, transforms: bool) -> Totals {
    let mut rng = Rng(seed);
    let mut gen = Gen::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut t = Totals::default();
    let mut expected_prost = 0;
    for round in 0..12 {
        let n = 6 + rng.below(20);
        let doc = policies(&mut rng, n, transforms);
        // Two sets per evaluation path: verdicts, then process. Rate limiters and counters
        // are stateful, so each path has its own and both see the same sequence.
        let (raw_set, decoded_set) = (build(&doc), build(&doc));
        let (raw_proc, decoded_proc) = (build(&doc), build(&doc));
        for case in 0..15 {
            let what = format!("seed {seed} round {round} case {case}");
            let bytes = Bytes::from(gen.request(Gen::record));
            expected_prost += gen.expected_prost(raw_set.logs.reads);
            let req = ExportLogsServiceRequest::decode(bytes.clone()).unwrap();
            let now = std::time::Instant::now();
            let decoded = evaluate_logs(&decoded_set, &req, now);
            let raw = evaluate_logs_encoded(&raw_set, &bytes, now).expect("readable request");
            assert_same(&raw, &decoded, &what);
            assert_eq!(
                counters(&raw_set),
                counters(&decoded_set),
                "{what}: counters"
            );
            t.records += raw.keep.len();
            t.dropped += raw.dropped;
            t.kept += raw.keep.len() - raw.dropped;
            t.transformed += raw.transforms.iter().filter(|r| r.1 > 0).count();
            t.prost_decoded += raw.prost_decoded;

            // The same through `process`: one batch decoded first, one left as received.
            let (_, raw_batch) =
                process_both_ways(Signal::Logs, &bytes, &decoded_proc, &raw_proc, false, &what);
            if raw.transform_policies.is_empty() {
                assert!(!raw_batch.is_decoded(), "{what}: drops only never decode");
            }
        }
    }
    assert_eq!(
        t.prost_decoded, expected_prost,
        "exactly the records with merged messages (in what a policy reads) or groups go through prost"
    );
    t
}

#[test]
fn raw_evaluation_equals_decoded_evaluation_for_drop_policies() {
    for seed in [0x1234_5678_9abc_def1, 0xdead_beef_cafe_f00d, 7] {
        let t = differential(seed, false);
        assert!(t.records > 1000, "too few records: {}", t.records);
        assert!(t.dropped > t.records / 20, "dropped {}", t.dropped);
        assert!(t.kept > t.records / 5, "kept {}", t.kept);
        assert!(t.prost_decoded > 10, "prost decoded {}", t.prost_decoded);
        assert!(t.prost_decoded < t.records / 5);
    }
}

#[test]
fn raw_evaluation_equals_decoded_evaluation_with_transforms() {
    for seed in [0x0bad_c0de_0bad_c0de, 42] {
        let t = differential(seed, true);
        assert!(t.records > 1000, "too few records: {}", t.records);
        assert!(
            t.transformed > t.records / 20,
            "transformed {}",
            t.transformed
        );
        assert!(t.dropped > t.records / 20, "dropped {}", t.dropped);
    }
}

/// Attributes no policy reads are not read: a record whose only irregularity is inside
/// them (a value prost merges) is decided in place, as it decides on prost's decoding; once
/// a policy reads attributes, the same records go through prost.
#[test]
fn attributes_no_policy_reads_are_not_read() {
    let severity_only = "policies:\n  - {id: a, name: x, log: {match: [{log_field: severity_text, exact: INFO}], keep: none}}\n  - {id: b, name: x, log: {match: [{resource_attribute: svc, exists: true}], keep: '50%', sample_key: {log_field: trace_id}}}\n";
    let with_attributes = format!(
        "{severity_only}  - {{id: c, name: x, log: {{match: [{{log_attribute: k, exists: true}}], keep: all}}}}\n"
    );
    for (doc, reads_attributes) in [(severity_only.to_string(), false), (with_attributes, true)] {
        let (raw_set, decoded_set) = (build(&doc), build(&doc));
        assert_eq!(raw_set.logs.reads.attributes, reads_attributes);
        let mut gen = Gen::new(99);
        let (mut prost, mut expected, mut by_attributes, mut all) = (0, 0, 0, 0);
        for case in 0..200 {
            let bytes = Bytes::from(gen.request(Gen::record));
            by_attributes += gen
                .prost
                .iter()
                .filter(|p| p.attributes && !p.other)
                .count();
            all += gen.prost.iter().filter(|p| p.attributes || p.other).count();
            expected += gen.expected_prost(raw_set.logs.reads);
            let req = ExportLogsServiceRequest::decode(bytes.clone()).unwrap();
            let now = std::time::Instant::now();
            let decoded = evaluate_logs(&decoded_set, &req, now);
            let raw = evaluate_logs_encoded(&raw_set, &bytes, now).unwrap();
            assert_same(&raw, &decoded, &format!("case {case}"));
            assert_eq!(counters(&raw_set), counters(&decoded_set), "case {case}");
            prost += raw.prost_decoded;
        }
        assert!(
            by_attributes > 20,
            "records with merged attribute values: {by_attributes}"
        );
        assert_eq!(prost, expected);
        let skipped = if reads_attributes { 0 } else { by_attributes };
        assert_eq!(prost, all - skipped, "through prost");
    }
}

fn record_with(severity: &[&str], attributes: &[(&str, &str)]) -> Vec<u8> {
    let mut r = Vec::new();
    for s in severity {
        len_field(&mut r, 3, s.as_bytes());
    }
    for (k, v) in attributes {
        let mut kv = Vec::new();
        len_field(&mut kv, 1, k.as_bytes());
        let value = any(any_value::Value::StringValue(v.to_string())).encode_to_vec();
        len_field(&mut kv, 2, &value);
        len_field(&mut r, 6, &kv);
    }
    r
}

#[test]
fn a_drop_only_set_cuts_the_bytes_without_decoding() {
    let bytes = one_scope(&[
        record_with(&["DEBUG", "INFO"], &[("user", "a")]),
        record_with(&["INFO", "DEBUG"], &[("user", "b")]),
        record_with(&["INFO"], &[("user", "c"), ("user", "x")]),
        record_with(&["INFO"], &[("user", "x"), ("user", "d")]),
    ]);
    let set = build(
        "policies:\n  - {id: no-debug, name: x, log: {match: [{log_field: severity_text, exact: DEBUG}], keep: none}}\n  - {id: no-x, name: x, log: {match: [{log_attribute: user, exact: x}], keep: none}}\n",
    );
    let mut batch = Batch::decode(Signal::Logs, bytes).unwrap();
    let out = process(&set, &mut batch, false);
    // The last severity_text counts (record 2 is DEBUG), and the first `user` attribute
    // (record 4 is x).
    assert_eq!((out.dropped, out.changed), (2, true));
    assert!(!batch.is_decoded(), "evaluated and cut without decoding");
    assert_eq!(batch.item_count(), 2);
    let kept = ExportLogsServiceRequest::decode(batch.to_protobuf()).unwrap();
    let users: Vec<String> = kept.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| match &r.attributes[0].value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(users, ["a", "c"]);
    assert_eq!(set.entries[0].stats.counts(), (1, 0));
    assert_eq!(set.entries[1].stats.counts(), (1, 0));
}

#[test]
fn shadow_mode_and_no_match_leave_the_batch_undecoded_and_unchanged() {
    assert_shadow_and_no_match_change_nothing(
        Signal::Logs,
        &one_scope(&[record_with(&["DEBUG"], &[]), record_with(&["INFO"], &[])]),
        "policies:\n  - {id: no-debug, name: x, log: {match: [{log_field: severity_text, exact: DEBUG}], keep: none}}\n",
        "policies:\n  - {id: no-warn, name: x, log: {match: [{log_field: severity_text, exact: WARN}], keep: none}}\n",
    );
}
