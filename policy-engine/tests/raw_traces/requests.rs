//! Spans built at the byte level, in the unusual encodings protobuf allows, for the
//! differential test of the evaluation on encoded requests; the shared `Gen` of
//! `raw_common` writes the values, scopes, resources and requests around them.

use opentelemetry_proto::tonic::trace::v1::{span, Span, Status};
use prost::Message;

use crate::raw_common::{
    field, len_field, put_varint, unknown_group, varint_field, Gen, Prost, TRACE_ID, WORDS,
};

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

/// The span generator (with its events and links).
impl Gen {
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
            self.append_odd_attribute(3, &mut bytes, prost);
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
        let mut prost = Prost::default();
        let events = (0..self.rng.pick(&[0, 0, 1, 2, 3]))
            .map(|_| self.event(&mut prost.events))
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
                5 | 6 => self.append_odd_attribute(9, &mut bytes, &mut prost.attributes),
                7 => self.prepend_odd_attribute(9, &mut bytes, &mut prost.attributes),
                8 => {
                    // An event and a link after the status.
                    let e = self.event(&mut prost.events);
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
                    unknown_group(&mut bytes);
                    prost.other = true;
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
        self.prost.push(prost);
        bytes
    }
}
