//! Logs, traces and metrics batches are checked on receipt and decoded only when read. The check must
//! accept exactly what prost's decoder accepts, with the same item count: otherwise a valid
//! request would be refused, or a broken one would reach processors as an empty batch. These
//! tests compare the two on generated requests (every field type, unknown fields and groups,
//! deep nesting) and on thousands of corruptions of them.
//! The protobuf writer and the request generator: lazy_decode/generate.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use weir_api::{Batch, Payload, Signal};

mod common;
#[path = "lazy_decode/generate.rs"]
mod generate;
use common::Rng;
use generate::{
    exp_histogram_point, fixed32, fixed64, histogram_point, key, ld, number_point, request,
    summary_point, unknown, vi,
};

/// prost's verdict: the decoded request, or nothing.
fn prost_decode(signal: Signal, bytes: &[u8]) -> Option<Payload> {
    match signal {
        Signal::Logs => ExportLogsServiceRequest::decode(bytes)
            .ok()
            .map(Payload::Logs),
        Signal::Traces => ExportTraceServiceRequest::decode(bytes)
            .ok()
            .map(Payload::Traces),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes)
            .ok()
            .map(Payload::Metrics),
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
    for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
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
    for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
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
    assert!(verdicts[0] > 3000 && verdicts[1] > 3000, "{verdicts:?}");
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
    for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
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
    assert!(checked > 225, "only {checked} of 300 stayed unread");
}

/// A metrics request of one resource entry with one scope entry holding `metrics`.
fn metrics_request(metrics: &[Vec<u8>]) -> Vec<u8> {
    let mut scope = Vec::new();
    for m in metrics {
        ld(&mut scope, 2, m);
    }
    let mut res = Vec::new();
    ld(&mut res, 2, &scope);
    let mut req = Vec::new();
    ld(&mut req, 1, &res);
    req
}

/// A metric whose data is the given (field, member body) list, in order.
fn metric_of(members: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut m = Vec::new();
    ld(&mut m, 1, b"system.cpu.time");
    for (field, body) in members {
        ld(&mut m, *field, body);
    }
    m
}

/// A data member of `points` copies of `point`.
fn member(point: &[u8], points: usize) -> Vec<u8> {
    let mut d = Vec::new();
    for _ in 0..points {
        ld(&mut d, 1, point);
    }
    d
}

#[test]
fn every_metric_shape_is_counted_by_its_points_unread() {
    let mut rng = Rng(0x3e7c_0001);
    let number = number_point(&mut rng);
    let histogram = histogram_point(&mut rng);
    let exp = exp_histogram_point(&mut rng);
    let summary = summary_point(&mut rng);
    let cases: Vec<(&str, Vec<Vec<u8>>, usize)> = vec![
        ("gauge", vec![metric_of(&[(5, member(&number, 3))])], 3),
        ("sum", vec![metric_of(&[(7, member(&number, 2))])], 2),
        (
            "histogram",
            vec![metric_of(&[(9, member(&histogram, 4))])],
            4,
        ),
        (
            "exponential histogram",
            vec![metric_of(&[(10, member(&exp, 5))])],
            5,
        ),
        ("summary", vec![metric_of(&[(11, member(&summary, 1))])], 1),
        ("no data", vec![metric_of(&[])], 0),
        ("empty gauge", vec![metric_of(&[(5, Vec::new())])], 0),
        (
            "two gauges merge",
            vec![metric_of(&[
                (5, member(&number, 2)),
                (5, member(&number, 3)),
            ])],
            5,
        ),
        (
            "a sum replaces a gauge",
            vec![metric_of(&[
                (5, member(&number, 2)),
                (7, member(&number, 3)),
            ])],
            3,
        ),
        (
            "gauge, sum, gauge: the last gauge alone",
            vec![metric_of(&[
                (5, member(&number, 2)),
                (7, member(&number, 3)),
                (5, member(&number, 4)),
            ])],
            4,
        ),
        (
            "summary then empty histogram",
            vec![metric_of(&[(11, member(&summary, 2)), (9, Vec::new())])],
            0,
        ),
        (
            "every shape, one metric each",
            vec![
                metric_of(&[(5, member(&number, 1))]),
                metric_of(&[(7, member(&number, 2))]),
                metric_of(&[(9, member(&histogram, 3))]),
                metric_of(&[(10, member(&exp, 4))]),
                metric_of(&[(11, member(&summary, 5))]),
            ],
            15,
        ),
    ];
    for (what, metrics, points) in cases {
        let bytes = metrics_request(&metrics);
        let batch = Batch::decode(Signal::Metrics, Bytes::from(bytes.clone())).unwrap();
        assert!(!batch.is_decoded(), "{what}: checked, not decoded");
        assert_eq!(batch.item_count(), points, "{what}");
        assert!(assert_agrees(Signal::Metrics, &bytes, what));
    }
}

#[test]
fn malformed_metrics_are_refused_as_prost_refuses_them() {
    let point_with = |build: &dyn Fn(&mut Vec<u8>)| {
        let mut p = Vec::new();
        build(&mut p);
        metrics_request(&[metric_of(&[(9, member(&p, 1))])])
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("gauge as a varint", {
            let mut m = Vec::new();
            vi(&mut m, 5, 1);
            metrics_request(&[m])
        }),
        ("metric name not UTF-8", {
            let mut m = Vec::new();
            ld(&mut m, 1, &[0x63, 0xc3]);
            metrics_request(&[m])
        }),
        ("unit not UTF-8", {
            let mut m = Vec::new();
            ld(&mut m, 3, &[0xed, 0xa0, 0x80]);
            metrics_request(&[m])
        }),
        (
            "packed bucket counts of 7 bytes",
            point_with(&|p| ld(p, 6, &[1; 7])),
        ),
        ("bucket count as fixed32", point_with(&|p| fixed32(p, 6, 1))),
        ("bounds as a varint", point_with(&|p| vi(p, 7, 1))),
        ("count as a varint", point_with(&|p| vi(p, 4, 1))),
        ("flags as fixed64", point_with(&|p| fixed64(p, 10, 1))),
        ("exemplar span id as a varint", {
            let mut e = Vec::new();
            vi(&mut e, 4, 1);
            point_with(&|p| ld(p, 8, &e))
        }),
        ("exponential buckets with a cut varint", {
            let mut b = Vec::new();
            ld(&mut b, 2, &[0x01, 0x80]);
            let mut p = Vec::new();
            ld(&mut p, 8, &b);
            metrics_request(&[metric_of(&[(10, member(&p, 1))])])
        }),
        ("exponential buckets counts as fixed64", {
            let mut b = Vec::new();
            fixed64(&mut b, 2, 1);
            let mut p = Vec::new();
            ld(&mut p, 8, &b);
            metrics_request(&[metric_of(&[(10, member(&p, 1))])])
        }),
        ("quantile as a varint", {
            let mut q = Vec::new();
            vi(&mut q, 1, 1);
            let mut p = Vec::new();
            ld(&mut p, 6, &q);
            metrics_request(&[metric_of(&[(11, member(&p, 1))])])
        }),
        ("number value as fixed32", {
            let mut p = Vec::new();
            fixed32(&mut p, 4, 1);
            metrics_request(&[metric_of(&[(5, member(&p, 1))])])
        }),
        ("a point cut short", {
            let mut bytes = metrics_request(&[metric_of(&[(5, member(&[0x11, 1, 2], 1))])]);
            bytes.truncate(bytes.len() - 1);
            bytes
        }),
    ];
    for (what, bytes) in cases {
        assert!(
            !assert_agrees(Signal::Metrics, &bytes, what),
            "{what} was accepted"
        );
    }
    // What prost accepts: packed and unpacked repeated numbers, empty packed bodies, unknown
    // fields of every wire type anywhere, binary exemplar ids.
    let mut rng = Rng(7);
    let mut p = Vec::new();
    ld(&mut p, 6, &[]);
    fixed64(&mut p, 6, 3);
    ld(&mut p, 7, &[0; 16]);
    fixed64(&mut p, 7, 2.5f64.to_bits());
    let mut e = Vec::new();
    ld(&mut e, 4, &[0xff, 0xfe]);
    ld(&mut p, 8, &e);
    unknown(&mut rng, &mut p);
    unknown(&mut rng, &mut p);
    let mut b = Vec::new();
    ld(&mut b, 2, &[0x01, 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    vi(&mut b, 2, 9);
    let mut x = Vec::new();
    ld(&mut x, 9, &b);
    key(&mut x, 300, 3);
    key(&mut x, 300, 4);
    let bytes = metrics_request(&[
        metric_of(&[(9, member(&p, 2))]),
        metric_of(&[(10, member(&x, 3))]),
    ]);
    assert!(assert_agrees(Signal::Metrics, &bytes, "accepted shapes"));
    assert_eq!(
        Batch::decode(Signal::Metrics, Bytes::from(bytes))
            .unwrap()
            .item_count(),
        5
    );
}

#[test]
fn metrics_nesting_limit_is_prosts() {
    // A gauge point's attribute value `depth` arrays deep: request, resource, scope, metric,
    // gauge, point, key-value and any-value use 8 levels before the arrays.
    let verdicts: Vec<bool> = (40..52)
        .map(|depth| {
            let mut value = Vec::new();
            ld(&mut value, 1, b"leaf");
            for _ in 0..depth {
                let mut array = Vec::new();
                ld(&mut array, 1, &value);
                let mut outer = Vec::new();
                ld(&mut outer, 5, &array);
                value = outer;
            }
            let mut kv = Vec::new();
            ld(&mut kv, 1, b"k");
            ld(&mut kv, 2, &value);
            let mut p = Vec::new();
            ld(&mut p, 7, &kv);
            let bytes = metrics_request(&[metric_of(&[(5, member(&p, 1))])]);
            assert_agrees(Signal::Metrics, &bytes, &format!("{depth} arrays deep"))
        })
        .collect();
    assert!(verdicts[0] && !verdicts[verdicts.len() - 1], "{verdicts:?}");
}
