//! Logs and traces batches are checked on receipt and decoded only when read. The check must
//! accept exactly what prost's decoder accepts, with the same item count: otherwise a valid
//! request would be refused, or a broken one would reach processors as an empty batch. These
//! tests compare the two on generated requests (every field type, unknown fields and groups,
//! deep nesting) and on thousands of corruptions of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use weir_api::{Batch, Payload, Signal};

mod common;
use common::Rng;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

/// A length-delimited field.
fn ld(out: &mut Vec<u8>, field: u64, body: &[u8]) {
    key(out, field, 2);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn vi(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn fixed32(out: &mut Vec<u8>, field: u64, v: u32) {
    key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn text(rng: &mut Rng) -> Vec<u8> {
    const WORDS: [&str; 6] = [
        "GET /healthz",
        "user",
        "déjà vu",
        "ошибка",
        "",
        "k8s.pod.name",
    ];
    WORDS[rng.below(WORDS.len() as u64) as usize]
        .as_bytes()
        .to_vec()
}

/// Unknown fields of every wire type, groups nested in groups included.
fn unknown(rng: &mut Rng, out: &mut Vec<u8>) {
    let field = 50 + rng.below(1000);
    match rng.below(5) {
        0 => vi(out, field, rng.next()),
        1 => fixed64(out, field, rng.next()),
        2 => fixed32(out, field, rng.next() as u32),
        3 => {
            let body = text(rng);
            ld(out, field, &body)
        }
        _ => {
            key(out, field, 3);
            vi(out, 1, 7);
            if rng.chance(50) {
                key(out, 2, 3);
                ld(out, 3, b"inside");
                key(out, 2, 4);
            }
            key(out, field, 4);
        }
    }
}

fn maybe_unknown(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(15) {
        unknown(rng, out);
    }
}

fn any_value(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let pick = if depth > 3 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match pick {
        0 => {
            let t = text(rng);
            ld(&mut v, 1, &t)
        }
        1 => vi(&mut v, 2, rng.below(2)),
        2 => vi(&mut v, 3, rng.next()),
        3 => fixed64(&mut v, 4, rng.next()),
        4 => ld(&mut v, 7, &rng.next().to_le_bytes()),
        5 => {
            let mut arr = Vec::new();
            for _ in 0..rng.below(3) {
                let item = any_value(rng, depth + 1);
                ld(&mut arr, 1, &item);
            }
            ld(&mut v, 5, &arr)
        }
        _ => {
            let mut kvs = Vec::new();
            for _ in 0..rng.below(3) {
                let kv = key_value(rng, depth + 1);
                ld(&mut kvs, 1, &kv);
            }
            ld(&mut v, 6, &kvs)
        }
    }
    maybe_unknown(rng, &mut v);
    v
}

fn key_value(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut kv = Vec::new();
    let k = text(rng);
    ld(&mut kv, 1, &k);
    let value = any_value(rng, depth);
    ld(&mut kv, 2, &value);
    if rng.chance(5) {
        vi(&mut kv, 3, rng.below(10));
    }
    maybe_unknown(rng, &mut kv);
    kv
}

fn attributes(rng: &mut Rng, out: &mut Vec<u8>, field: u64) {
    for _ in 0..rng.below(4) {
        let kv = key_value(rng, 0);
        ld(out, field, &kv);
    }
}

fn resource(rng: &mut Rng) -> Vec<u8> {
    let mut r = Vec::new();
    attributes(rng, &mut r, 1);
    vi(&mut r, 2, rng.below(3));
    if rng.chance(20) {
        let mut e = Vec::new();
        ld(&mut e, 1, b"https://opentelemetry.io/schemas/1.26.0");
        ld(&mut e, 2, b"service");
        ld(&mut e, 3, b"service.name");
        ld(&mut e, 4, b"service.version");
        ld(&mut r, 3, &e);
    }
    maybe_unknown(rng, &mut r);
    r
}

fn scope(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    ld(&mut s, 1, b"io.weir.test");
    ld(&mut s, 2, b"1.0.0");
    attributes(rng, &mut s, 3);
    vi(&mut s, 4, rng.below(2));
    maybe_unknown(rng, &mut s);
    s
}

fn log_record(rng: &mut Rng) -> Vec<u8> {
    let mut r = Vec::new();
    fixed64(&mut r, 1, rng.next());
    fixed64(&mut r, 11, rng.next());
    vi(&mut r, 2, rng.below(25));
    let t = text(rng);
    ld(&mut r, 3, &t);
    let body = any_value(rng, 0);
    ld(&mut r, 5, &body);
    attributes(rng, &mut r, 6);
    vi(&mut r, 7, rng.below(2));
    fixed32(&mut r, 8, 1);
    ld(&mut r, 9, &rng.next().to_le_bytes().repeat(2));
    ld(&mut r, 10, &rng.next().to_le_bytes());
    if rng.chance(20) {
        ld(&mut r, 12, b"app.login");
    }
    maybe_unknown(rng, &mut r);
    r
}

fn span(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    ld(&mut s, 1, &rng.next().to_le_bytes().repeat(2));
    ld(&mut s, 2, &rng.next().to_le_bytes());
    ld(&mut s, 3, b"rojo=00f067aa0ba902b7");
    ld(&mut s, 4, &rng.next().to_le_bytes());
    fixed32(&mut s, 16, 1);
    let name = text(rng);
    ld(&mut s, 5, &name);
    vi(&mut s, 6, rng.below(6));
    fixed64(&mut s, 7, rng.next());
    fixed64(&mut s, 8, rng.next());
    attributes(rng, &mut s, 9);
    vi(&mut s, 10, rng.below(2));
    for _ in 0..rng.below(3) {
        let mut e = Vec::new();
        fixed64(&mut e, 1, rng.next());
        ld(&mut e, 2, b"exception");
        attributes(rng, &mut e, 3);
        vi(&mut e, 4, 0);
        ld(&mut s, 11, &e);
    }
    vi(&mut s, 12, 0);
    for _ in 0..rng.below(2) {
        let mut l = Vec::new();
        ld(&mut l, 1, &[7; 16]);
        ld(&mut l, 2, &[8; 8]);
        ld(&mut l, 3, b"");
        attributes(rng, &mut l, 4);
        vi(&mut l, 5, 1);
        fixed32(&mut l, 6, 0x100);
        ld(&mut s, 13, &l);
    }
    vi(&mut s, 14, 0);
    let mut status = Vec::new();
    ld(&mut status, 2, b"deadline exceeded");
    vi(&mut status, 3, rng.below(3));
    ld(&mut s, 15, &status);
    maybe_unknown(rng, &mut s);
    s
}

/// A request of `signal` with 0-3 resources of 0-3 scopes of 0-4 items.
fn request(rng: &mut Rng, signal: Signal) -> Vec<u8> {
    let mut req = Vec::new();
    for _ in 0..rng.below(4) {
        let mut res = Vec::new();
        if rng.chance(80) {
            let r = resource(rng);
            ld(&mut res, 1, &r);
        }
        for _ in 0..rng.below(4) {
            let mut sc = Vec::new();
            let s = scope(rng);
            ld(&mut sc, 1, &s);
            for _ in 0..rng.below(5) {
                let item = match signal {
                    Signal::Logs => log_record(rng),
                    _ => span(rng),
                };
                ld(&mut sc, 2, &item);
            }
            ld(&mut sc, 3, b"https://opentelemetry.io/schemas/1.26.0");
            maybe_unknown(rng, &mut sc);
            ld(&mut res, 2, &sc);
        }
        ld(&mut res, 3, b"");
        maybe_unknown(rng, &mut res);
        ld(&mut req, 1, &res);
    }
    maybe_unknown(rng, &mut req);
    req
}

/// prost's verdict: the decoded request, or nothing.
fn prost_decode(signal: Signal, bytes: &[u8]) -> Option<Payload> {
    match signal {
        Signal::Logs => ExportLogsServiceRequest::decode(bytes)
            .ok()
            .map(Payload::Logs),
        Signal::Traces => ExportTraceServiceRequest::decode(bytes)
            .ok()
            .map(Payload::Traces),
        Signal::Metrics => unreachable!("metrics are decoded at once"),
    }
}

/// Asserts the check agrees with prost on `bytes`; returns whether prost accepted them.
fn assert_agrees(signal: Signal, bytes: &[u8], what: &str) -> bool {
    let expected = prost_decode(signal, bytes);
    let batch = Batch::decode(signal, Bytes::copy_from_slice(bytes));
    match (&expected, batch) {
        (Some(payload), Ok(batch)) => {
            assert!(
                !batch.is_decoded(),
                "{what}: prost accepts it but the check refused it (fell back to decoding)"
            );
            assert_eq!(
                batch.item_count(),
                payload.item_count(),
                "{what}: item count"
            );
            // Compared encoded: doubles may be NaN, which never equals itself.
            assert!(
                batch.payload().encode_to_vec() == payload.encode_to_vec(),
                "{what}: the lazily decoded payload differs from prost's"
            );
            true
        }
        (None, Err(e)) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("invalid OTLP {signal} protobuf: ")),
                "{what}: {message}"
            );
            false
        }
        (Some(_), Err(e)) => panic!("{what}: prost accepts it, Batch::decode refused: {e}"),
        (None, Ok(_)) => panic!("{what}: prost refuses it, the check accepted it"),
    }
}

#[test]
fn generated_requests_are_accepted_unread_with_prosts_item_count() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for signal in [Signal::Logs, Signal::Traces] {
        let mut items = 0;
        for case in 0..300 {
            let bytes = request(&mut rng, signal);
            assert!(assert_agrees(
                signal,
                &bytes,
                &format!("{signal} case {case}")
            ));
            items += prost_decode(signal, &bytes).unwrap().item_count();
        }
        // The generator must really produce items, or the counts above prove nothing.
        assert!(items > 500, "{signal}: only {items} items generated");
    }
}

#[test]
fn corrupted_requests_get_prosts_verdict() {
    let mut rng = Rng(0x0bad_f00d_1357_9bdf);
    let mut verdicts = [0usize; 2];
    for signal in [Signal::Logs, Signal::Traces] {
        for case in 0..300 {
            let original = request(&mut rng, signal);
            if original.is_empty() {
                continue;
            }
            for mutation in 0..25 {
                let mut bytes = original.clone();
                let at = rng.below(bytes.len() as u64) as usize;
                match rng.below(6) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes[at] = rng.next() as u8,
                    2 => bytes.truncate(at),
                    3 => bytes.insert(at, rng.next() as u8),
                    4 => {
                        bytes.remove(at);
                    }
                    _ => {
                        // Invalid UTF-8 or a continuation byte somewhere.
                        bytes[at] = [0xff, 0xc3, 0x80, 0xed][rng.below(4) as usize];
                    }
                }
                let ok = assert_agrees(signal, &bytes, &format!("{signal} {case}/{mutation}"));
                verdicts[usize::from(ok)] += 1;
            }
        }
    }
    // Both verdicts must be well represented for the comparison to mean anything.
    assert!(verdicts[0] > 2000 && verdicts[1] > 2000, "{verdicts:?}");
}

/// A log record whose body is `depth` arrays deep around the innermost value `leaf`.
fn logs_with_body_depth(depth: usize, leaf: &[u8]) -> Vec<u8> {
    let mut value = leaf.to_vec();
    for _ in 0..depth {
        let mut array = Vec::new();
        ld(&mut array, 1, &value);
        let mut outer = Vec::new();
        ld(&mut outer, 5, &array);
        value = outer;
    }
    let mut record = Vec::new();
    ld(&mut record, 5, &value);
    logs_request(&record)
}

/// A logs request of one resource entry with one scope entry holding the log record
/// encoded as `record`.
fn logs_request(record: &[u8]) -> Vec<u8> {
    let mut scope = Vec::new();
    ld(&mut scope, 2, record);
    let mut res = Vec::new();
    ld(&mut res, 2, &scope);
    let mut req = Vec::new();
    ld(&mut req, 1, &res);
    req
}

#[test]
fn nesting_limit_is_prosts() {
    // The innermost value: a plain string, then with an unknown field, then with an unknown
    // group holding another group (skipping unknown fields spends the limit too).
    let mut plain = Vec::new();
    ld(&mut plain, 1, b"leaf");
    let mut with_unknown = plain.clone();
    vi(&mut with_unknown, 99, 1);
    let mut with_groups = plain.clone();
    key(&mut with_groups, 99, 3);
    key(&mut with_groups, 98, 3);
    key(&mut with_groups, 98, 4);
    key(&mut with_groups, 99, 4);
    for (name, leaf) in [
        ("plain", plain),
        ("unknown", with_unknown),
        ("groups", with_groups),
    ] {
        let verdicts: Vec<bool> = (40..52)
            .map(|depth| {
                let what = format!("{name} leaf, body {depth} arrays deep");
                assert_agrees(Signal::Logs, &logs_with_body_depth(depth, &leaf), &what)
            })
            .collect();
        // The limit falls inside the range tried: accepted below it, refused above.
        assert!(
            verdicts[0] && !verdicts[verdicts.len() - 1],
            "{name}: {verdicts:?}"
        );
    }
}

#[test]
fn malformed_shapes_prost_refuses_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("field number 0", vec![0x02, 0x00]),
        ("wire type 6", vec![0x0e]),
        ("wire type 7", vec![0x0f]),
        ("end group with no group open", vec![0x0c]),
        ("group closed with another number", {
            let mut v = Vec::new();
            key(&mut v, 90, 3);
            key(&mut v, 91, 4);
            v
        }),
        ("group never closed", {
            let mut v = Vec::new();
            key(&mut v, 90, 3);
            v
        }),
        ("resource entry as a varint", {
            let mut v = Vec::new();
            vi(&mut v, 1, 5);
            v
        }),
        ("length past the end", vec![0x0a, 0x05, 0x12]),
        ("11-byte varint", {
            let mut v = vec![0xf8, 0x07]; // field 127, varint
            v.extend_from_slice(&[0xff; 10]);
            v.push(0x01);
            v
        }),
        ("varint over 64 bits", {
            let mut v = vec![0xf8, 0x07];
            v.extend_from_slice(&[0xff; 9]);
            v.push(0x02);
            v
        }),
        ("severity text not UTF-8", {
            let mut record = Vec::new();
            ld(&mut record, 3, &[0x66, 0xff, 0x66]);
            logs_request(&record)
        }),
        ("time as a varint", {
            let mut record = Vec::new();
            vi(&mut record, 1, 5);
            logs_request(&record)
        }),
    ];
    for (what, bytes) in cases {
        assert!(
            !assert_agrees(Signal::Logs, &bytes, what),
            "{what} was accepted"
        );
    }
    // Bytes fields may hold anything, string fields in unknown fields too.
    let mut record = Vec::new();
    ld(&mut record, 9, &[0xff, 0xfe]);
    ld(&mut record, 77, &[0xff, 0xfe]);
    assert!(assert_agrees(
        Signal::Logs,
        &logs_request(&record),
        "binary trace id"
    ));
}

#[test]
fn unread_batches_drop_items_without_decoding() {
    let mut rng = Rng(42);
    let mut checked = 0;
    for signal in [Signal::Logs, Signal::Traces] {
        for _ in 0..100 {
            let bytes = request(&mut rng, signal);
            let mut batch = Batch::decode(signal, Bytes::from(bytes.clone())).unwrap();
            let n = batch.item_count();
            let keep: Vec<bool> = (0..n).map(|_| rng.chance(50)).collect();
            let kept = keep.iter().filter(|k| **k).count();
            assert!(batch.retain_items(&keep));
            if !batch.is_decoded() {
                checked += 1;
            }
            assert_eq!(batch.item_count(), kept);
            // The same drop on a batch that was read first.
            let mut read = Batch::decode(signal, Bytes::from(bytes)).unwrap();
            let _ = read.payload();
            assert!(read.retain_items(&keep));
            assert!(batch.payload().encode_to_vec() == read.payload().encode_to_vec());
            assert_eq!(read.item_count(), kept);
        }
    }
    // Requests with groups cannot be spliced and are decoded instead; the rest must not be.
    assert!(checked > 150, "only {checked} of 200 stayed unread");
}
