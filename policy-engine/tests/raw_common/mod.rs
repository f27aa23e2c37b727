//! What the differential tests of the evaluation on encoded requests (`raw_logs`,
//! `raw_traces`, `raw_metrics`) share: a seedable random source, byte-level protobuf
//! writers, the generators of attribute values, resources, scopes and requests (each suite
//! adds the generator of its own items: log records, spans, metrics), and the policy set
//! helpers. One copy, so a fix to the unusual encodings reaches every suite.

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use weir_api::{Batch, Signal};
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::run::{process, Outcome};
use weir_policy_engine::set::{PolicySet, Reads};
use weir_policy_engine::stats::StatsRegistry;

/// xorshift64*: deterministic, seedable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub(crate) fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

pub(crate) const WORDS: [&str; 9] = [
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
pub(crate) const INTS: [i64; 6] = [-5, 0, 3, 4, 200, i64::MIN];
pub(crate) const DOUBLES: [f64; 5] = [0.0, 2.5, 3.0, -1.5, 200.0];
pub(crate) const KEYS: [&str; 11] = [
    "k", "n", "http", "flag", "b", "", "svc", "nest", "method", "x", "deeper",
];
pub(crate) const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn len_field(out: &mut Vec<u8>, number: u64, body: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

pub(crate) fn varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    put_varint(out, number << 3);
    put_varint(out, v);
}

pub(crate) fn field(number: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    len_field(&mut out, number, body);
    out
}

/// An unknown group (field 101 holding a varint): prost skips it; the raw reader leaves
/// the item holding it to prost.
pub(crate) fn unknown_group(out: &mut Vec<u8>) {
    put_varint(out, 101 << 3 | 3);
    varint_field(out, 1, 5);
    put_varint(out, 101 << 3 | 4);
}

pub(crate) fn any(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

/// A request of one resource holding one scope holding `items` (records, spans or
/// metrics, field 2 of a scope).
pub(crate) fn one_scope(items: &[Vec<u8>]) -> Bytes {
    let scope: Vec<u8> = items.iter().flat_map(|i| field(2, i)).collect();
    Bytes::from(field(1, &field(2, &scope)))
}

/// Why an item's encoding needs prost: a merge of two occurrences of a message policies
/// read inside, or a group. The raw readers look inside attributes and events only when a
/// policy reads them, so those reasons count only then.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Prost {
    /// A reason outside attributes and events (a second body, a group).
    pub(crate) other: bool,
    /// A reason inside the item's own attributes.
    pub(crate) attributes: bool,
    /// A reason inside a span event's attributes.
    pub(crate) events: bool,
}

/// Builds requests at the byte level and notes, per item (log record, span, metric), why
/// its encoding needs prost. Each suite adds the generator of its own items in an `impl Gen`.
pub(crate) struct Gen {
    pub(crate) rng: Rng,
    /// Per item generated since the last [`Gen::expected_prost`], its reasons.
    pub(crate) prost: Vec<Prost>,
}

impl Gen {
    pub(crate) fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed),
            prost: Vec::new(),
        }
    }

    /// How many of the items generated since the last call the raw path must hand to
    /// prost, given what the set's policies read.
    pub(crate) fn expected_prost(&mut self, reads: Reads) -> usize {
        self.prost
            .drain(..)
            .filter(|p| p.other || (p.attributes && reads.attributes) || (p.events && reads.events))
            .count()
    }

    pub(crate) fn value(&mut self, depth: usize) -> AnyValue {
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

    pub(crate) fn key_values(&mut self, depth: usize) -> Vec<KeyValue> {
        (0..self.rng.below(4))
            .map(|_| KeyValue {
                key: self.rng.pick(&KEYS).into(),
                value: (!self.rng.chance(10)).then(|| self.value(depth)),
                ..Default::default()
            })
            .collect()
    }

    /// An encoded value holding a key-value list one level down.
    pub(crate) fn encoded_list(&mut self) -> Vec<u8> {
        any(any_value::Value::KvlistValue(KeyValueList {
            values: self.key_values(1),
        }))
        .encode_to_vec()
    }

    /// An attribute (a whole field `number`: 6 of a log record, 9 of a span, 3 of an event)
    /// in an unusual encoding; sets `prost` when prost must decide it.
    pub(crate) fn odd_attribute(&mut self, number: u64, prost: &mut bool) -> Vec<u8> {
        use any_value::Value as V;
        let key = self.rng.pick(&KEYS);
        let word = self.rng.pick(&WORDS);
        let string = any(V::StringValue(word.into())).encode_to_vec();
        let int = any(V::IntValue(self.rng.pick(&INTS))).encode_to_vec();
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
                let l = self.encoded_list();
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
                let lists = [self.encoded_list(), self.encoded_list()].concat();
                len_field(&mut kv, 2, &lists);
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
        field(number, &kv)
    }

    /// `odd_attribute` at the end of the encoded item `bytes`.
    pub(crate) fn append_odd_attribute(
        &mut self,
        number: u64,
        bytes: &mut Vec<u8>,
        prost: &mut bool,
    ) {
        let a = self.odd_attribute(number, prost);
        bytes.extend_from_slice(&a);
    }

    /// `odd_attribute` before everything else of the encoded item `bytes`: it becomes the
    /// first attribute.
    pub(crate) fn prepend_odd_attribute(
        &mut self,
        number: u64,
        bytes: &mut Vec<u8>,
        prost: &mut bool,
    ) {
        let a = self.odd_attribute(number, prost);
        *bytes = [a, std::mem::take(bytes)].concat();
    }

    /// `ordered` fields in order, with `extras` inserted at random places among them.
    pub(crate) fn interleave(&mut self, ordered: Vec<Vec<u8>>, extras: Vec<Vec<u8>>) -> Vec<u8> {
        let mut all = ordered;
        for e in extras {
            let at = self.rng.below(all.len() + 1);
            all.insert(at, e);
        }
        all.concat()
    }

    /// A resource or scope message given once, twice (its parts merged), or not at all.
    pub(crate) fn split<M: Message>(&mut self, whole: M, first: M, second: M) -> Vec<Vec<u8>> {
        match self.rng.below(5) {
            0 => vec![],
            1 => vec![
                field(1, &first.encode_to_vec()),
                field(1, &second.encode_to_vec()),
            ],
            _ => vec![field(1, &whole.encode_to_vec())],
        }
    }

    pub(crate) fn schema_urls(&mut self, number: u64) -> Vec<Vec<u8>> {
        (0..self.rng.pick(&[0, 1, 1, 2]))
            .map(|_| {
                let url = self
                    .rng
                    .pick(&["", "https://opentelemetry.io/schemas/1.21.0", "alpha"]);
                field(number, url.as_bytes())
            })
            .collect()
    }

    /// A scope's logs, spans or metrics (by `item`), its scope given in every way `split`
    /// knows, schema urls and sometimes an unknown field among the items.
    pub(crate) fn scope_items(&mut self, item: fn(&mut Gen) -> Vec<u8>) -> Vec<u8> {
        let items: Vec<Vec<u8>> = (0..self.rng.below(6))
            .map(|_| field(2, &item(self)))
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
        self.interleave(items, extras)
    }

    /// A resource's logs, spans or metrics: scopes of `item`s, its resource given in every
    /// way `split` knows, and schema urls.
    pub(crate) fn resource_items(&mut self, item: fn(&mut Gen) -> Vec<u8>) -> Vec<u8> {
        let scopes: Vec<Vec<u8>> = (0..self.rng.pick(&[0, 1, 1, 2, 3]))
            .map(|_| field(2, &self.scope_items(item)))
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

    /// An export request of one to three resources of `item`s, sometimes with an unknown
    /// field between them.
    pub(crate) fn request(&mut self, item: fn(&mut Gen) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.rng.below(3) + 1 {
            let resource = self.resource_items(item);
            len_field(&mut out, 1, &resource);
            if self.rng.chance(10) {
                varint_field(&mut out, 5, 1);
            }
        }
        out
    }
}

/// A policy set built from `doc`, which must compile without an error.
pub(crate) fn build(doc: &str) -> PolicySet {
    let set = PolicySet::build(parse_document(doc, "t").unwrap(), &StatsRegistry::new());
    for e in &set.entries {
        assert!(e.errors.is_empty(), "{}: {:?}\n{doc}", e.id, e.errors);
    }
    set
}

/// Each policy's id, hits, misses and shadow drops.
pub(crate) fn counters(set: &PolicySet) -> Vec<(String, u64, u64, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    set.entries
        .iter()
        .map(|e| {
            let (h, m) = e.stats.counts();
            (e.id.clone(), h, m, e.stats.shadow_drops.load(Relaxed))
        })
        .collect()
}

/// The labels that put a policy in shadow mode, as the start of a policy's flow mapping.
pub(crate) const SHADOW_LABELS: &str = "labels: {weir.shadow: \"true\"}, ";

/// Value tests of the matchers of both suites; each suite puts its own around them.
pub(crate) const VALUE_TESTS: [&str; 14] = [
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
];

/// One or two matchers as the items of a YAML flow list: each one of `targeted` (matchers
/// random pairs rarely make) `targeted_percent` of the time, else a random selector with a
/// random test.
pub(crate) fn random_matchers(
    rng: &mut Rng,
    targeted_percent: usize,
    targeted: &[&str],
    selectors: &[&str],
    tests: &[&str],
) -> String {
    let mut matchers = Vec::new();
    for _ in 0..rng.pick(&[1, 1, 2]) {
        matchers.push(if rng.chance(targeted_percent) {
            rng.pick(targeted).to_string()
        } else {
            format!("{{{}, {}}}", rng.pick(selectors), rng.pick(tests))
        });
    }
    matchers.join(", ")
}

/// Batches of `bytes` after `process`: one decoded before (through `decoded_set`), one left
/// as received (through `raw_set`). Asserts that both ways give the same outcome, output
/// bytes, item count and policy counters; returns the outcome and the raw way's batch.
pub(crate) fn process_both_ways(
    signal: Signal,
    bytes: &Bytes,
    decoded_set: &PolicySet,
    raw_set: &PolicySet,
    shadow: bool,
    what: &str,
) -> (Outcome, Batch) {
    let mut decoded_batch = Batch::decode(signal, bytes.clone()).unwrap();
    assert!(!decoded_batch.is_decoded(), "{what}: the check accepts it");
    decoded_batch.payload();
    let mut raw_batch = Batch::decode(signal, bytes.clone()).unwrap();
    let a = process(decoded_set, &mut decoded_batch, shadow);
    let b = process(raw_set, &mut raw_batch, shadow);
    assert_eq!(a, b, "{what}: outcome");
    assert_eq!(
        raw_batch.to_protobuf(),
        decoded_batch.to_protobuf(),
        "{what}: output bytes"
    );
    assert_eq!(raw_batch.item_count(), decoded_batch.item_count(), "{what}");
    assert_eq!(
        counters(raw_set),
        counters(decoded_set),
        "{what}: counters through process"
    );
    (b, raw_batch)
}

/// Shadow mode leaves the batch of `bytes` undecoded and unchanged although `drops_one` (a
/// policy document) drops one of its items, and so does `matches_none` outside shadow mode.
pub(crate) fn assert_shadow_and_no_match_change_nothing(
    signal: Signal,
    bytes: &Bytes,
    drops_one: &str,
    matches_none: &str,
) {
    let set = build(drops_one);
    let mut batch = Batch::decode(signal, bytes.clone()).unwrap();
    let out = process(&set, &mut batch, true);
    assert_eq!((out.dropped, out.changed), (1, false));
    assert!(!batch.is_decoded());
    assert_eq!(&batch.to_protobuf(), bytes);
    let none = build(matches_none);
    let out = process(&none, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (0, false));
    assert!(!batch.is_decoded());
    assert_eq!(&batch.to_protobuf(), bytes);
}
