//! Log policies evaluated on the encoded request decide exactly as on prost's decoding of
//! it: same keep flags, dropped counts, transform lists, policy counters and output bytes,
//! over generated requests that use every attribute value type, nested lists, empty
//! strings and the unusual encodings protobuf allows (repeated singular fields, merged
//! messages, oneofs set twice, unknown fields and groups), against policies using every
//! log matcher kind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use weir_api::{Batch, Signal};
use weir_policy::evaluate::{evaluate_logs, process, LogVerdicts};
use weir_policy::parse::parse_document;
use weir_policy::raw_logs::evaluate_logs_encoded;
use weir_policy::set::PolicySet;
use weir_policy::stats::StatsRegistry;

/// xorshift64*: deterministic, seedable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

const WORDS: [&str; 9] = [
    "",
    "alpha",
    "beta",
    "ALPHA",
    "Gamma",
    "ERROR",
    "delta",
    "4bf9",
    "4bf92f3577b34da6a3ce929d0e0e4736",
];
const INTS: [i64; 6] = [-5, 0, 3, 4, 200, i64::MIN];
const DOUBLES: [f64; 5] = [0.0, 2.5, 3.0, -1.5, 200.0];
const KEYS: [&str; 11] = [
    "k", "n", "http", "flag", "b", "", "svc", "nest", "method", "x", "deeper",
];
const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(out: &mut Vec<u8>, number: u64, body: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    put_varint(out, number << 3);
    put_varint(out, v);
}

fn field(number: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    len_field(&mut out, number, body);
    out
}

fn any(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

/// Builds requests at the byte level and counts the records whose encoding needs prost.
struct Gen {
    rng: Rng,
    /// Records whose encoding the raw path must hand to prost (a merge of two occurrences
    /// of a message, or a group).
    expected_prost: usize,
}

impl Gen {
    fn value(&mut self, depth: usize) -> AnyValue {
        use any_value::Value as V;
        let r = &mut self.rng;
        match r.below(if depth < 2 { 10 } else { 8 }) {
            0 => AnyValue { value: None },
            1 => any(V::BoolValue(r.chance(50))),
            2 => any(V::IntValue(r.pick(&INTS))),
            3 => any(V::DoubleValue(r.pick(&DOUBLES))),
            4 => any(V::BytesValue(TRACE_ID[..r.pick(&[0, 2, 16])].to_vec())),
            5 => any(V::StringValueStrindex(r.below(4) as i32)),
            6 | 7 => any(V::StringValue(r.pick(&WORDS).into())),
            8 => any(V::ArrayValue(ArrayValue {
                values: (0..r.below(3)).map(|_| self.value(depth + 1)).collect(),
            })),
            _ => any(V::KvlistValue(KeyValueList {
                values: self.key_values(depth + 1),
            })),
        }
    }

    fn key_values(&mut self, depth: usize) -> Vec<KeyValue> {
        (0..self.rng.below(4))
            .map(|_| KeyValue {
                key: self.rng.pick(&KEYS).into(),
                value: (!self.rng.chance(10)).then(|| self.value(depth)),
                ..Default::default()
            })
            .collect()
    }

    /// An attribute (a whole field 6 of a record) in an unusual encoding; sets `prost` when
    /// prost must decide it.
    fn odd_attribute(&mut self, prost: &mut bool) -> Vec<u8> {
        use any_value::Value as V;
        let key = self.rng.pick(&KEYS);
        let word = self.rng.pick(&WORDS);
        let string = any(V::StringValue(word.into())).encode_to_vec();
        let int = any(V::IntValue(self.rng.pick(&INTS))).encode_to_vec();
        let list = |g: &mut Gen| {
            any(V::KvlistValue(KeyValueList {
                values: g.key_values(1),
            }))
            .encode_to_vec()
        };
        let mut kv = Vec::new();
        match self.rng.below(9) {
            // The key twice: the last one counts.
            0 => {
                len_field(&mut kv, 1, self.rng.pick(&KEYS).as_bytes());
                len_field(&mut kv, 1, key.as_bytes());
                len_field(&mut kv, 2, &string);
            }
            // The value twice: prost merges the two values.
            1 => {
                len_field(&mut kv, 1, key.as_bytes());
                len_field(&mut kv, 2, &string);
                len_field(&mut kv, 2, &int);
                *prost = true;
            }
            // Two oneof members: the last one counts.
            2 => {
                len_field(&mut kv, 1, key.as_bytes());
                let (a, b) = if self.rng.chance(50) {
                    (&string, &int)
                } else {
                    (&int, &string)
                };
                len_field(&mut kv, 2, &[a.as_slice(), b.as_slice()].concat());
            }
            // A list, then a string, or a string then a list.
            3 => {
                len_field(&mut kv, 1, key.as_bytes());
                let l = list(self);
                let v = if self.rng.chance(50) {
                    [l, string].concat()
                } else {
                    [string, l].concat()
                };
                len_field(&mut kv, 2, &v);
            }
            // Two key-value lists: prost merges them.
            4 => {
                len_field(&mut kv, 1, key.as_bytes());
                len_field(&mut kv, 2, &[list(self), list(self)].concat());
                *prost = true;
            }
            // A nested entry with its key twice, and one with no key.
            5 => {
                let mut inner = Vec::new();
                len_field(&mut inner, 1, self.rng.pick(&[b"x", b"k"]));
                len_field(&mut inner, 1, self.rng.pick(&[b"x", b"k"]));
                len_field(&mut inner, 2, &string);
                let mut keyless = Vec::new();
                len_field(&mut keyless, 2, &int);
                let mut list = Vec::new();
                len_field(&mut list, 1, &keyless);
                len_field(&mut list, 1, &inner);
                len_field(&mut kv, 1, self.rng.pick(&["nest", "k"]).as_bytes());
                len_field(&mut kv, 2, &field(6, &list));
            }
            // A nested entry with two values: prost merges them.
            6 => {
                let mut inner = Vec::new();
                len_field(&mut inner, 1, self.rng.pick(&KEYS).as_bytes());
                len_field(&mut inner, 2, &int);
                len_field(&mut inner, 2, &string);
                len_field(&mut kv, 1, key.as_bytes());
                len_field(&mut kv, 2, &field(6, &field(1, &inner)));
                *prost = true;
            }
            // key_strindex and a bool stored as 2, an unknown field inside the value.
            7 => {
                len_field(&mut kv, 1, b"flag");
                varint_field(&mut kv, 3, 4);
                let mut v = Vec::new();
                varint_field(&mut v, 2, 2);
                varint_field(&mut v, 15, 1);
                len_field(&mut kv, 2, &v);
            }
            // An empty value message, or a strindex value.
            _ => {
                len_field(&mut kv, 1, key.as_bytes());
                let mut v = Vec::new();
                if self.rng.chance(50) {
                    varint_field(&mut v, 8, 3);
                }
                len_field(&mut kv, 2, &v);
            }
        }
        field(6, &kv)
    }

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
        let mut prost = false;
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
                    prost |= has_body;
                    has_body = true;
                    let mut v = self.value(0).encode_to_vec();
                    if self.rng.chance(30) {
                        let list = |g: &mut Gen| {
                            any(any_value::Value::KvlistValue(KeyValueList {
                                values: g.key_values(1),
                            }))
                            .encode_to_vec()
                        };
                        v = [list(self), v, list(self)].concat();
                    }
                    len_field(&mut bytes, 5, &v);
                }
                4 | 5 => {
                    let a = self.odd_attribute(&mut prost);
                    bytes.extend_from_slice(&a);
                }
                6 => {
                    // Before everything else: it becomes the first attribute.
                    let a = self.odd_attribute(&mut prost);
                    bytes = [a, bytes].concat();
                }
                7 => {
                    // Unknown fields, and the reserved field 4.
                    varint_field(&mut bytes, 100, 7);
                    bytes.extend_from_slice(&[4 << 3 | 5, 1, 2, 3, 4]);
                }
                8 => {
                    // An unknown group: prost skips it; the raw reader leaves it to prost.
                    put_varint(&mut bytes, 101 << 3 | 3);
                    varint_field(&mut bytes, 1, 5);
                    put_varint(&mut bytes, 101 << 3 | 4);
                    prost = true;
                }
                _ => len_field(&mut bytes, 10, &TRACE_ID[..self.rng.pick(&[0, 8])]),
            }
        }
        if prost {
            self.expected_prost += 1;
        }
        bytes
    }

    /// `ordered` fields in order, with `extras` inserted at random places among them.
    fn interleave(&mut self, ordered: Vec<Vec<u8>>, extras: Vec<Vec<u8>>) -> Vec<u8> {
        let mut all = ordered;
        for e in extras {
            let at = self.rng.below(all.len() + 1);
            all.insert(at, e);
        }
        all.concat()
    }

    /// A resource or scope message given once, twice (its parts merged), or not at all.
    fn split<M: Message>(&mut self, whole: M, first: M, second: M) -> Vec<Vec<u8>> {
        match self.rng.below(5) {
            0 => vec![],
            1 => vec![
                field(1, &first.encode_to_vec()),
                field(1, &second.encode_to_vec()),
            ],
            _ => vec![field(1, &whole.encode_to_vec())],
        }
    }

    fn schema_urls(&mut self, number: u64) -> Vec<Vec<u8>> {
        (0..self.rng.pick(&[0, 1, 1, 2]))
            .map(|_| {
                let url = self
                    .rng
                    .pick(&["", "https://opentelemetry.io/schemas/1.21.0", "alpha"]);
                field(number, url.as_bytes())
            })
            .collect()
    }

    fn scope_logs(&mut self) -> Vec<u8> {
        let records: Vec<Vec<u8>> = (0..self.rng.below(6))
            .map(|_| field(2, &self.record()))
            .collect();
        let attributes = self.key_values(0);
        let name = self.rng.pick(&WORDS).to_string();
        let version = self.rng.pick(&["", "1.0"]).to_string();
        let m = self.rng.below(attributes.len() + 1);
        let whole = InstrumentationScope {
            name: name.clone(),
            version: version.clone(),
            attributes: attributes.clone(),
            dropped_attributes_count: 0,
        };
        let first = InstrumentationScope {
            name: self.rng.pick(&WORDS).into(),
            attributes: attributes[..m].to_vec(),
            ..Default::default()
        };
        let second = InstrumentationScope {
            name,
            version,
            attributes: attributes[m..].to_vec(),
            dropped_attributes_count: 1,
        };
        let mut extras = self.split(whole, first, second);
        extras.extend(self.schema_urls(3));
        if self.rng.chance(10) {
            extras.push({
                let mut u = Vec::new();
                varint_field(&mut u, 9, 1);
                u
            });
        }
        self.interleave(records, extras)
    }

    fn resource_logs(&mut self) -> Vec<u8> {
        let scopes: Vec<Vec<u8>> = (0..self.rng.pick(&[0, 1, 1, 2, 3]))
            .map(|_| field(2, &self.scope_logs()))
            .collect();
        let attributes = self.key_values(0);
        let m = self.rng.below(attributes.len() + 1);
        let whole = Resource {
            attributes: attributes.clone(),
            ..Default::default()
        };
        let first = Resource {
            attributes: attributes[..m].to_vec(),
            dropped_attributes_count: 2,
            ..Default::default()
        };
        let second = Resource {
            attributes: attributes[m..].to_vec(),
            ..Default::default()
        };
        let mut extras = self.split(whole, first, second);
        extras.extend(self.schema_urls(3));
        self.interleave(scopes, extras)
    }

    fn request(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.rng.below(3) + 1 {
            let rl = self.resource_logs();
            len_field(&mut out, 1, &rl);
            if self.rng.chance(10) {
                varint_field(&mut out, 5, 1);
            }
        }
        out
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

const TESTS: [&str; 27] = [
    "exact: alpha",
    "exact: ''",
    "regex: '^(al|ERR)'",
    "regex: 'a$'",
    "exists: true",
    "exists: false",
    "starts_with: al",
    "ends_with: ta",
    "contains: a",
    "contains: '4b'",
    "exact: ALPHA, case_insensitive: true",
    "contains: GAM, case_insensitive: true",
    "equals: beta",
    "equals: 200",
    "equals: 2.5",
    "equals: true",
    "equals: {hex_value: 4bf9}",
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
];

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
        let mut matchers = Vec::new();
        for _ in 0..rng.pick(&[1, 1, 2]) {
            matchers.push(if rng.chance(25) {
                rng.pick(&TARGETED).to_string()
            } else {
                format!("{{{}, {}}}", rng.pick(&SELECTORS), rng.pick(&TESTS))
            });
        }
        let keep = rng.pick(&["none", "all", "all", "50%", "10%", "2/m", "1/s"]);
        let mut extra = String::new();
        if keep.ends_with('%') || (keep.contains('/') && rng.chance(50)) {
            extra.push_str(&format!(", sample_key: {}", rng.pick(&SAMPLE_KEYS)));
        }
        if transforms && rng.chance(40) {
            extra.push_str(&format!(", transform: {}", rng.pick(&TRANSFORMS)));
        }
        let labels = if rng.chance(15) {
            "labels: {weir.shadow: \"true\"}, "
        } else {
            ""
        };
        doc.push_str(&format!(
            "  - {{id: p{i:03}, name: x, {labels}log: {{match: [{}], keep: '{keep}'{extra}}}}}\n",
            matchers.join(", ")
        ));
    }
    doc
}

fn build(doc: &str) -> PolicySet {
    let set = PolicySet::build(parse_document(doc, "t").unwrap(), &StatsRegistry::new());
    for e in &set.entries {
        assert!(e.errors.is_empty(), "{}: {:?}\n{doc}", e.id, e.errors);
    }
    set
}

fn counters(set: &PolicySet) -> Vec<(String, u64, u64, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    set.entries
        .iter()
        .map(|e| {
            let (h, m) = e.stats.counts();
            (e.id.clone(), h, m, e.stats.shadow_drops.load(Relaxed))
        })
        .collect()
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
    let mut gen = Gen {
        rng: Rng(seed ^ 0x9e37_79b9_7f4a_7c15),
        expected_prost: 0,
    };
    let mut t = Totals::default();
    for round in 0..12 {
        let n = 6 + rng.below(20);
        let doc = policies(&mut rng, n, transforms);
        // Two sets per evaluation path: verdicts, then process. Rate limiters and counters
        // are stateful, so each path has its own and both see the same sequence.
        let (raw_set, decoded_set) = (build(&doc), build(&doc));
        let (raw_proc, decoded_proc) = (build(&doc), build(&doc));
        for case in 0..15 {
            let what = format!("seed {seed} round {round} case {case}");
            let bytes = Bytes::from(gen.request());
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
            let mut decoded_batch = Batch::decode(Signal::Logs, bytes.clone()).unwrap();
            assert!(!decoded_batch.is_decoded(), "{what}: the check accepts it");
            decoded_batch.payload();
            let mut raw_batch = Batch::decode(Signal::Logs, bytes.clone()).unwrap();
            let a = process(&decoded_proc, &mut decoded_batch, false);
            let b = process(&raw_proc, &mut raw_batch, false);
            assert_eq!(a, b, "{what}: outcome");
            assert_eq!(
                raw_batch.to_protobuf(),
                decoded_batch.to_protobuf(),
                "{what}: output bytes"
            );
            assert_eq!(raw_batch.item_count(), decoded_batch.item_count(), "{what}");
            if raw.transform_policies.is_empty() {
                assert!(!raw_batch.is_decoded(), "{what}: drops only never decode");
            }
            assert_eq!(
                counters(&raw_proc),
                counters(&decoded_proc),
                "{what}: counters through process"
            );
        }
    }
    assert_eq!(
        t.prost_decoded, gen.expected_prost,
        "exactly the records with merged messages or groups go through prost"
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

fn one_scope(records: &[Vec<u8>]) -> Bytes {
    let scope: Vec<u8> = records.iter().flat_map(|r| field(2, r)).collect();
    Bytes::from(field(1, &field(2, &scope)))
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
    let bytes = one_scope(&[record_with(&["DEBUG"], &[]), record_with(&["INFO"], &[])]);
    let set = build(
        "policies:\n  - {id: no-debug, name: x, log: {match: [{log_field: severity_text, exact: DEBUG}], keep: none}}\n",
    );
    let mut batch = Batch::decode(Signal::Logs, bytes.clone()).unwrap();
    let out = process(&set, &mut batch, true);
    assert_eq!((out.dropped, out.changed), (1, false));
    assert!(!batch.is_decoded());
    assert_eq!(batch.to_protobuf(), bytes);
    let none = build(
        "policies:\n  - {id: no-warn, name: x, log: {match: [{log_field: severity_text, exact: WARN}], keep: none}}\n",
    );
    let out = process(&none, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (0, false));
    assert!(!batch.is_decoded());
    assert_eq!(batch.to_protobuf(), bytes);
}
