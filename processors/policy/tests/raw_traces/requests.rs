//! Trace export requests built at the byte level, in the unusual encodings protobuf allows,
//! for the differential test of the evaluation on encoded requests.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, Span, Status};
use prost::Message;

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
pub(crate) const OTHER_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
/// Tracestates: none, `rv` and `th` in every combination, an inconsistent pair (rv < th), an
/// invalid rv, and other vendors' entries.
pub(crate) const TRACE_STATES: [&str; 10] = [
    "",
    "",
    "ot=rv:8a3f2c1b4d5e6f",
    "ot=th:c",
    "ot=th:8;rv:ffffffffffffff",
    "vendor=x,ot=rv:00000000000001",
    "congo=t61rcWkgMzE",
    "ot=th:4;rv:2000000000000",
    "ot=th:f;rv:10000000000000",
    "alpha",
];
pub(crate) const SPAN_NAMES: [&str; 6] = ["", "alpha", "GET /items", "beta", "ERROR", "4bf9"];
pub(crate) const EVENT_NAMES: [&str; 4] = ["alpha", "exception", "", "beta"];

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

pub(crate) fn any(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

/// Builds requests at the byte level and counts the spans whose encoding needs prost.
pub(crate) struct Gen {
    pub(crate) rng: Rng,
    /// Spans whose encoding the raw path must hand to prost (a merge of two occurrences of
    /// a message policies read inside, or a group).
    pub(crate) expected_prost: usize,
}

impl Gen {
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

    /// An attribute (a whole field `number`: 9 of a span, 3 of an event) in an unusual
    /// encoding; sets `prost` when prost must decide it.
    pub(crate) fn odd_attribute(&mut self, number: u64, prost: &mut bool) -> Vec<u8> {
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
        field(number, &kv)
    }

    pub(crate) fn trace_id(&mut self) -> Vec<u8> {
        match self.rng.below(10) {
            0 => vec![],
            1..=3 => TRACE_ID.to_vec(),
            4 => OTHER_ID.to_vec(),
            _ => {
                let (a, b) = (self.rng.next(), self.rng.next());
                [a.to_be_bytes(), b.to_be_bytes()].concat()
            }
        }
    }

    /// An event, sometimes with its name twice or an unusual attribute.
    pub(crate) fn event(&mut self, prost: &mut bool) -> Vec<u8> {
        let event = span::Event {
            time_unix_nano: self.rng.next(),
            name: self.rng.pick(&EVENT_NAMES).into(),
            attributes: self.key_values(0),
            dropped_attributes_count: self.rng.below(2) as u32,
        };
        let mut bytes = event.encode_to_vec();
        if self.rng.chance(20) {
            len_field(&mut bytes, 2, self.rng.pick(&EVENT_NAMES).as_bytes());
        }
        if self.rng.chance(10) {
            let a = self.odd_attribute(3, prost);
            bytes.extend_from_slice(&a);
        }
        if self.rng.chance(10) {
            varint_field(&mut bytes, 9, 1);
        }
        bytes
    }

    /// A link, sometimes with its trace id twice and unknown fields.
    pub(crate) fn link(&mut self) -> Vec<u8> {
        let link = span::Link {
            trace_id: self.trace_id(),
            span_id: OTHER_ID[..self.rng.pick(&[0, 8])].to_vec(),
            trace_state: self.rng.pick(&TRACE_STATES).into(),
            attributes: self.key_values(0),
            dropped_attributes_count: 0,
            flags: self.rng.below(0x300) as u32,
        };
        let mut bytes = link.encode_to_vec();
        if self.rng.chance(25) {
            let id = self.trace_id();
            len_field(&mut bytes, 1, &id);
            varint_field(&mut bytes, 20, 3);
        }
        bytes
    }

    pub(crate) fn span(&mut self) -> Vec<u8> {
        let mut prost = false;
        let events = (0..self.rng.pick(&[0, 0, 1, 2, 3]))
            .map(|_| self.event(&mut prost))
            .collect::<Vec<_>>();
        let links = (0..self.rng.pick(&[0, 0, 1, 2]))
            .map(|_| self.link())
            .collect::<Vec<_>>();
        let r = &mut self.rng;
        let span = Span {
            span_id: TRACE_ID[8..8 + r.pick(&[0, 8, 8])].to_vec(),
            trace_state: r.pick(&TRACE_STATES).into(),
            parent_span_id: OTHER_ID[..r.pick(&[0, 8])].to_vec(),
            name: r.pick(&SPAN_NAMES).into(),
            kind: r.below(6) as i32,
            start_time_unix_nano: r.next(),
            end_time_unix_nano: r.next(),
            dropped_attributes_count: r.below(2) as u32,
            dropped_events_count: r.below(2) as u32,
            dropped_links_count: r.below(2) as u32,
            status: r.chance(70).then(|| Status {
                message: r.pick(&WORDS).into(),
                code: r.below(3) as i32,
            }),
            flags: r.below(0x300) as u32,
            ..Default::default()
        };
        let span = Span {
            trace_id: self.trace_id(),
            attributes: self.key_values(0),
            ..span
        };
        // Events and links go in by hand, so their odd encodings stay.
        let mut bytes = span.encode_to_vec();
        for e in &events {
            len_field(&mut bytes, 11, e);
        }
        for l in &links {
            len_field(&mut bytes, 13, l);
        }
        let odd = if self.rng.chance(40) {
            self.rng.below(3) + 1
        } else {
            0
        };
        for _ in 0..odd {
            match self.rng.below(12) {
                0 => len_field(&mut bytes, 5, self.rng.pick(&SPAN_NAMES).as_bytes()),
                1 => {
                    // A second kind; a varint beyond 32 bits keeps its low 32 bits.
                    let k = self.rng.below(6) as u64;
                    let k = if self.rng.chance(30) { k | 1 << 35 } else { k };
                    varint_field(&mut bytes, 6, k);
                }
                2 => {
                    let id = self.trace_id();
                    let number = self.rng.pick(&[1, 2, 4]);
                    len_field(&mut bytes, number, &id[..id.len().min(8 * number as usize)]);
                }
                3 => len_field(&mut bytes, 3, self.rng.pick(&TRACE_STATES).as_bytes()),
                4 => {
                    // A status again: merged with the first, field by field.
                    let mut status = Vec::new();
                    match self.rng.below(4) {
                        0 => varint_field(&mut status, 3, self.rng.below(3) as u64),
                        1 => len_field(&mut status, 2, b"again"),
                        2 => {
                            varint_field(&mut status, 3, self.rng.below(3) as u64);
                            varint_field(&mut status, 3, self.rng.below(3) as u64);
                        }
                        _ => {}
                    }
                    len_field(&mut bytes, 15, &status);
                }
                5 | 6 => {
                    let a = self.odd_attribute(9, &mut prost);
                    bytes.extend_from_slice(&a);
                }
                7 => {
                    // Before everything else: it becomes the first attribute.
                    let a = self.odd_attribute(9, &mut prost);
                    bytes = [a, bytes].concat();
                }
                8 => {
                    // An event and a link after the status.
                    let e = self.event(&mut prost);
                    len_field(&mut bytes, 11, &e);
                    let l = self.link();
                    len_field(&mut bytes, 13, &l);
                }
                9 => {
                    // Unknown fields of every wire type.
                    varint_field(&mut bytes, 100, 7);
                    put_varint(&mut bytes, 17 << 3 | 5);
                    bytes.extend_from_slice(&[1, 2, 3, 4]);
                    len_field(&mut bytes, 18, b"unknown");
                }
                10 => {
                    // An unknown group: prost skips it; the raw reader leaves it to prost.
                    put_varint(&mut bytes, 101 << 3 | 3);
                    varint_field(&mut bytes, 1, 5);
                    put_varint(&mut bytes, 101 << 3 | 4);
                    prost = true;
                }
                _ => {
                    // A kind and a status in front, overridden by the ones after.
                    let mut front = Vec::new();
                    varint_field(&mut front, 6, self.rng.below(6) as u64);
                    len_field(&mut front, 15, &field(2, b"first"));
                    bytes = [front, bytes].concat();
                }
            }
        }
        if prost {
            self.expected_prost += 1;
        }
        bytes
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

    pub(crate) fn scope_spans(&mut self) -> Vec<u8> {
        let spans: Vec<Vec<u8>> = (0..self.rng.below(6))
            .map(|_| field(2, &self.span()))
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
        self.interleave(spans, extras)
    }

    pub(crate) fn resource_spans(&mut self) -> Vec<u8> {
        let scopes: Vec<Vec<u8>> = (0..self.rng.pick(&[0, 1, 1, 2, 3]))
            .map(|_| field(2, &self.scope_spans()))
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

    pub(crate) fn request(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.rng.below(3) + 1 {
            let rs = self.resource_spans();
            len_field(&mut out, 1, &rs);
            if self.rng.chance(10) {
                varint_field(&mut out, 5, 1);
            }
        }
        out
    }
}
