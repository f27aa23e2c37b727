//! `retain_metric_points` (and `Batch::retain_items` on metrics batches) against the decoded
//! path: for many generated requests (all five metric types, exemplars, empty metrics,
//! scopes and resources, unknown fields, a oneof member given twice or overridden) and drop
//! patterns, the cut bytes must decode to exactly what dropping the points from the decoded
//! request and pruning gives, and equal its encoding byte for byte when the input is
//! prost's own canonical encoding. Malformed input gives an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use weir_api::metric_splice::{retain_metric_points, MetricSpliceError};
use weir_api::{Batch, Payload, Signal};

mod common;
use common::Rng;

fn attr(k: &str, v: String) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    }
}

fn exemplars(rng: &mut Rng) -> Vec<Exemplar> {
    (0..rng.below(3))
        .map(|i| Exemplar {
            filtered_attributes: vec![attr("e", i.to_string())],
            time_unix_nano: 7 + i,
            value: Some(exemplar::Value::AsInt(i as i64)),
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
        })
        .collect()
}

/// A metric of a random type with 0 to 4 points (`n` numbers them, so every point differs),
/// or, rarely, no data at all.
fn metric(rng: &mut Rng, n: &mut u64) -> Metric {
    let mut t = || {
        *n += 1;
        *n
    };
    let points = rng.below(5);
    let data = match rng.below(11) {
        0 | 1 => Some(Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|_| NumberDataPoint {
                    attributes: vec![attr("host", "h".repeat(rng.below(4) as usize))],
                    time_unix_nano: t(),
                    value: Some(number_data_point::Value::AsDouble(1.5)),
                    exemplars: exemplars(rng),
                    ..Default::default()
                })
                .collect(),
        })),
        2 | 3 => Some(Data::Sum(Sum {
            data_points: (0..points)
                .map(|_| NumberDataPoint {
                    time_unix_nano: t(),
                    value: Some(number_data_point::Value::AsInt(-3)),
                    exemplars: exemplars(rng),
                    flags: 1,
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 2,
            is_monotonic: rng.below(2) == 0,
        })),
        4 | 5 => Some(Data::Histogram(Histogram {
            data_points: (0..points)
                .map(|_| HistogramDataPoint {
                    time_unix_nano: t(),
                    count: 6,
                    sum: Some(10.0),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![1.0, 5.0],
                    exemplars: exemplars(rng),
                    min: Some(0.5),
                    max: Some(9.0),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 1,
        })),
        6 | 7 => Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: (0..points)
                .map(|_| ExponentialHistogramDataPoint {
                    time_unix_nano: t(),
                    count: 4,
                    scale: -2,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: -1,
                        bucket_counts: vec![1, 2],
                    }),
                    negative: (rng.below(2) == 0).then(Buckets::default),
                    exemplars: exemplars(rng),
                    zero_threshold: 0.001,
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: 2,
        })),
        8 | 9 => Some(Data::Summary(Summary {
            data_points: (0..points)
                .map(|_| SummaryDataPoint {
                    time_unix_nano: t(),
                    count: 3,
                    sum: 4.5,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.5,
                        value: 1.0,
                    }],
                    ..Default::default()
                })
                .collect(),
        })),
        _ => None,
    };
    Metric {
        name: format!("m{}", rng.below(1000)),
        description: if rng.below(2) == 0 {
            "d".into()
        } else {
            String::new()
        },
        unit: "1".into(),
        metadata: if rng.below(4) == 0 {
            vec![attr("meta", "x".into())]
        } else {
            Vec::new()
        },
        data,
    }
}

fn request(rng: &mut Rng) -> ExportMetricsServiceRequest {
    let mut n = 0;
    ExportMetricsServiceRequest {
        resource_metrics: (0..rng.below(4))
            .map(|r| ResourceMetrics {
                resource: (rng.below(3) > 0).then(|| Resource {
                    attributes: vec![attr("service.name", format!("svc-{r}"))],
                    ..Default::default()
                }),
                scope_metrics: (0..rng.below(4))
                    .map(|s| ScopeMetrics {
                        scope: (rng.below(2) == 0).then(|| InstrumentationScope {
                            name: format!("scope-{s}"),
                            ..Default::default()
                        }),
                        metrics: (0..rng.below(5)).map(|_| metric(rng, &mut n)).collect(),
                        schema_url: if s % 2 == 0 {
                            "https://s".into()
                        } else {
                            String::new()
                        },
                    })
                    .collect(),
                schema_url: "https://r".into(),
            })
            .collect(),
    }
}

fn put_field(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// An unknown field (number 50 or more) of a random wire type, or nothing.
fn unknown(rng: &mut Rng, out: &mut Vec<u8>) {
    let field = 50 + rng.below(2000) as u32;
    match rng.below(5) {
        0 => {
            prost::encoding::encode_key(field, prost::encoding::WireType::Varint, out);
            prost::encoding::encode_varint(rng.next(), out);
        }
        1 => {
            prost::encoding::encode_key(field, prost::encoding::WireType::SixtyFourBit, out);
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
        2 => {
            prost::encoding::encode_key(field, prost::encoding::WireType::ThirtyTwoBit, out);
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        3 => put_field(out, field, b"unknown"),
        _ => {}
    }
}

/// The data member's field number in `Metric`, and the member encoded with its points
/// apart: (the member's other fields, each point's encoding).
fn member(data: &Data) -> (u32, Vec<u8>, Vec<Vec<u8>>) {
    fn split<T: Message + Clone, P: Message>(
        m: &T,
        take: impl Fn(&mut T) -> Vec<P>,
    ) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut m = m.clone();
        let points = take(&mut m);
        (
            m.encode_to_vec(),
            points.iter().map(Message::encode_to_vec).collect(),
        )
    }
    let (field, (head, points)) = match data {
        Data::Gauge(g) => (5, split(g, |g| std::mem::take(&mut g.data_points))),
        Data::Sum(s) => (7, split(s, |s| std::mem::take(&mut s.data_points))),
        Data::Histogram(h) => (9, split(h, |h| std::mem::take(&mut h.data_points))),
        Data::ExponentialHistogram(h) => (10, split(h, |h| std::mem::take(&mut h.data_points))),
        Data::Summary(s) => (11, split(s, |s| std::mem::take(&mut s.data_points))),
    };
    (field, head, points)
}

/// `req` encoded by hand, with what prost's encoder never writes but its decoder reads:
/// unknown fields at every level, fields out of order, a data member split into two
/// occurrences (merged on decode) and a member of another type before the real one (replaced
/// on decode).
fn tweaked(req: &ExportMetricsServiceRequest, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        unknown(rng, &mut out);
        let mut r = Vec::new();
        for sm in &rm.scope_metrics {
            let mut s = Vec::new();
            for m in &sm.metrics {
                let mut mb = Vec::new();
                unknown(rng, &mut mb);
                if let Some(data) = &m.data {
                    if rng.below(3) == 0 {
                        // Replaced on decode: a member of another type first.
                        let other = match data {
                            Data::Gauge(_) => Data::Summary(Summary {
                                data_points: vec![SummaryDataPoint::default(); 2],
                            }),
                            _ => Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint::default(); 3],
                            }),
                        };
                        let (field, head, points) = member(&other);
                        let mut b = head;
                        for p in &points {
                            put_field(&mut b, 1, p);
                        }
                        put_field(&mut mb, field, &b);
                    }
                    let (field, head, points) = member(data);
                    let cut = rng.below(points.len() as u64 + 1) as usize;
                    let two = rng.below(2) == 0;
                    let mut first = head;
                    unknown(rng, &mut first);
                    for p in &points[..if two { cut } else { points.len() }] {
                        put_field(&mut first, 1, p);
                    }
                    put_field(&mut mb, field, &first);
                    if two {
                        let mut second = Vec::new();
                        for p in &points[cut..] {
                            put_field(&mut second, 1, p);
                        }
                        put_field(&mut mb, field, &second);
                    }
                }
                // The metric's other fields after its data.
                let mut rest = m.clone();
                rest.data = None;
                mb.extend(rest.encode_to_vec());
                put_field(&mut s, 2, &mb);
            }
            unknown(rng, &mut s);
            let mut head = sm.clone();
            head.metrics.clear();
            s.extend(head.encode_to_vec());
            put_field(&mut r, 2, &s);
        }
        let mut head = rm.clone();
        head.scope_metrics.clear();
        r.extend(head.encode_to_vec());
        unknown(rng, &mut r);
        put_field(&mut out, 1, &r);
    }
    unknown(rng, &mut out);
    out
}

/// The decoded path: decode, drop the points, prune, as `Batch` did before the byte cut.
fn expected(bytes: &[u8], keep: &[bool]) -> ExportMetricsServiceRequest {
    let mut req = ExportMetricsServiceRequest::decode(bytes).unwrap();
    let mut i = 0;
    let mut flag = || {
        let k = keep.get(i).copied().unwrap_or(true);
        i += 1;
        k
    };
    for m in req
        .resource_metrics
        .iter_mut()
        .flat_map(|rm| &mut rm.scope_metrics)
        .flat_map(|sm| &mut sm.metrics)
    {
        match &mut m.data {
            None => {}
            Some(Data::Gauge(g)) => g.data_points.retain(|_| flag()),
            Some(Data::Sum(s)) => s.data_points.retain(|_| flag()),
            Some(Data::Histogram(h)) => h.data_points.retain(|_| flag()),
            Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|_| flag()),
            Some(Data::Summary(s)) => s.data_points.retain(|_| flag()),
        }
    }
    let mut p = Payload::Metrics(req);
    p.prune_empty();
    match p {
        Payload::Metrics(r) => r,
        _ => unreachable!(),
    }
}

fn patterns(n: usize, rng: &mut Rng) -> Vec<Vec<bool>> {
    let mut out = vec![vec![true; n], vec![false; n]];
    for _ in 0..4 {
        let len = if rng.below(4) == 0 {
            rng.below(n as u64 + 1) as usize
        } else {
            n
        };
        let percent = rng.below(101);
        out.push((0..len).map(|_| rng.below(100) < percent).collect());
    }
    out
}

/// Checks every pattern on `bytes`; `canonical`: the bytes are prost's encoding, so the
/// result must be byte for byte the encoding of the expected request. Returns the number
/// of (pattern) cases checked.
fn check(bytes: &[u8], canonical: bool, rng: &mut Rng) -> usize {
    let points = Batch::decode(Signal::Metrics, Bytes::copy_from_slice(bytes))
        .unwrap()
        .item_count();
    let mut cases = 0;
    for keep in patterns(points, rng) {
        let want = expected(bytes, &keep);
        let got = retain_metric_points(bytes, &keep).unwrap();
        let decoded = ExportMetricsServiceRequest::decode(got.bytes.as_slice()).unwrap();
        assert_eq!(
            decoded, want,
            "cut bytes decode to the decoded path's request"
        );
        let want_points = Payload::Metrics(want.clone()).item_count();
        assert_eq!(got.points, want_points, "kept point count");
        if canonical {
            assert_eq!(got.bytes, want.encode_to_vec(), "byte for byte");
        }
        // Through the batch: once with the payload read first (both forms edited), once
        // as received (checked, never decoded: only the bytes change).
        for decoded_first in [true, false] {
            let b = Batch::decode(Signal::Metrics, Bytes::copy_from_slice(bytes)).unwrap();
            assert!(!b.is_decoded(), "checked on receipt, not decoded");
            if decoded_first {
                let _ = b.payload();
            }
            let mut b = b;
            assert_eq!(b.is_decoded(), decoded_first);
            assert!(b.retain_items(&keep));
            assert_eq!(b.item_count(), want_points);
            assert_eq!(b.is_decoded(), decoded_first, "the cut needs no decode");
            assert_eq!(
                b.original_bytes().map(|b| b.to_vec()),
                Some(got.bytes.clone()),
                "the batch holds the cut bytes"
            );
            assert_eq!(b.payload(), &Payload::Metrics(want.clone()));
        }
        cases += 1;
    }
    cases
}

#[test]
fn cut_metrics_match_the_decoded_path_byte_for_byte() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut cases, mut points, mut dropped_metrics) = (0, 0, 0);
    for _ in 0..400 {
        let req = request(&mut rng);
        let bytes = req.encode_to_vec();
        points += Payload::Metrics(req.clone()).item_count();
        dropped_metrics += req
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter(|m| {
                let one = ExportMetricsServiceRequest {
                    resource_metrics: vec![ResourceMetrics {
                        scope_metrics: vec![ScopeMetrics {
                            metrics: vec![(*m).clone()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                Payload::Metrics(one).item_count() == 0
            })
            .count();
        cases += check(&bytes, true, &mut rng);
    }
    assert_eq!(cases, 2400);
    // The generator reaches what it is meant to: many points, and metrics with none.
    assert!(points > 3000, "{points} points");
    assert!(dropped_metrics > 100, "{dropped_metrics} empty metrics");
}

#[test]
fn cut_metrics_match_the_decoded_path_with_unknown_fields_and_oneof_merges() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut cases = 0;
    for _ in 0..400 {
        let req = request(&mut rng);
        let bytes = tweaked(&req, &mut rng);
        // The hand encoding decodes to the generated request (unknown fields skipped, the
        // split member merged, the overridden one replaced).
        assert_eq!(
            ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap(),
            req
        );
        cases += check(&bytes, false, &mut rng);
    }
    assert_eq!(cases, 2400);
}

#[test]
fn unknown_fields_of_what_stays_are_copied() {
    // One gauge of two points; field 99 (varint 7) inside the metric and inside the request.
    let metric = Metric {
        name: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: (1..=2)
                .map(|t| NumberDataPoint {
                    time_unix_nano: t,
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    let mut m = metric.encode_to_vec();
    m.extend_from_slice(&[0x98, 0x06, 0x07]);
    let mut s = Vec::new();
    put_field(&mut s, 2, &m);
    let mut r = Vec::new();
    put_field(&mut r, 2, &s);
    let mut req = Vec::new();
    put_field(&mut req, 1, &r);
    req.extend_from_slice(&[0x98, 0x06, 0x07]);
    let got = retain_metric_points(&req, &[false, true]).unwrap();
    assert_eq!(got.points, 1);
    assert_eq!(
        got.bytes
            .windows(3)
            .filter(|w| *w == [0x98, 0x06, 0x07])
            .count(),
        2
    );
    let decoded = ExportMetricsServiceRequest::decode(got.bytes.as_slice()).unwrap();
    let Some(Data::Gauge(g)) = &decoded.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        panic!("a gauge")
    };
    assert_eq!(g.data_points.len(), 1);
    assert_eq!(g.data_points[0].time_unix_nano, 2);
}

#[test]
fn dropping_every_point_leaves_an_empty_request() {
    let mut rng = Rng(11);
    let req = loop {
        let r = request(&mut rng);
        if Payload::Metrics(r.clone()).item_count() > 5 {
            break r;
        }
    };
    let n = Payload::Metrics(req.clone()).item_count();
    let got = retain_metric_points(&req.encode_to_vec(), &vec![false; n]).unwrap();
    assert_eq!(got.points, 0);
    assert!(got.bytes.is_empty());
}

fn error(bytes: &[u8]) -> MetricSpliceError {
    retain_metric_points(bytes, &[false]).unwrap_err()
}

#[test]
fn malformed_input_is_an_error_naming_what_and_where() {
    // Request field 1 as a varint.
    let e = error(&[0x08, 0x01]);
    assert_eq!(e.offset, 0);
    assert_eq!(
        e.what,
        "a resource entry (request field 1) is not length-delimited"
    );
    assert_eq!(
        e.to_string(),
        "cannot cut data points out of the OTLP metrics request: a resource entry (request \
         field 1) is not length-delimited (at byte 0)"
    );
    // A resource entry claiming 5 bytes with 1 left.
    let e = error(&[0x0a, 0x05, 0x12]);
    assert_eq!(
        (e.offset, e.what),
        (0, "a length-delimited field runs past its message")
    );
    // Inside the resource entry (from byte 2): a scope entry cut short.
    let e = error(&[0x0a, 0x02, 0x12, 0x03]);
    assert_eq!(
        (e.offset, e.what),
        (2, "a length-delimited field runs past its message")
    );
    // A group at the top level.
    let e = error(&[0x0b, 0x0c]);
    assert_eq!(
        e.what,
        "a group (deprecated wire types 3 and 4) is not supported"
    );
    // Wire type 7; field number 0; a key over 32 bits; a varint of 11 bytes.
    assert_eq!(
        error(&[0x0f]).what,
        "a field key has wire type 6 or 7, which do not exist"
    );
    assert_eq!(
        error(&[0x02, 0x00]).what,
        "a field key has field number 0 or is over 32 bits"
    );
    assert_eq!(
        error(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).what,
        "a field key has field number 0 or is over 32 bits"
    );
    assert_eq!(
        error(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).what,
        "a varint field is not a valid varint"
    );
    // A fixed64 unknown field cut short.
    assert_eq!(
        error(&[0x09, 1, 2, 3]).what,
        "a fixed-size field runs past its message"
    );
    // A gauge (metric field 5) as a varint, at byte 6.
    let e = error(&[0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0x28, 0x01]);
    assert_eq!(e.offset, 6);
    assert!(e.what.starts_with("a metric's data"), "{}", e.what);
    // A gauge whose point (field 1) is a varint, at byte 8.
    let e = error(&[0x0a, 0x08, 0x12, 0x06, 0x12, 0x04, 0x2a, 0x02, 0x08, 0x01]);
    assert_eq!(
        (e.offset, e.what),
        (
            8,
            "a data point (field 1 of a metric's data) is not length-delimited"
        )
    );
}

#[test]
fn truncated_and_corrupted_requests_never_panic() {
    let mut rng = Rng(0xdead_beef);
    let (mut ok, mut refused, mut compared) = (0, 0, 0);
    for _ in 0..60 {
        let req = request(&mut rng);
        let bytes = tweaked(&req, &mut rng);
        let n = Payload::Metrics(req).item_count();
        let keep: Vec<bool> = (0..n).map(|_| rng.below(2) == 0).collect();
        let mut inputs: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(1 + bytes.len() / 40)
            .map(|len| bytes[..len].to_vec())
            .collect();
        for _ in 0..40 {
            let mut b = bytes.clone();
            if b.is_empty() {
                break;
            }
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next() as u8;
            inputs.push(b);
        }
        for input in inputs {
            match retain_metric_points(&input, &keep) {
                Ok(got) => {
                    ok += 1;
                    // Where prost reads the input too, both paths agree.
                    if ExportMetricsServiceRequest::decode(input.as_slice()).is_ok() {
                        assert_eq!(
                            ExportMetricsServiceRequest::decode(got.bytes.as_slice()).unwrap(),
                            expected(&input, &keep)
                        );
                        compared += 1;
                    }
                }
                Err(e) => {
                    refused += 1;
                    assert!(e.offset <= input.len());
                }
            }
        }
    }
    // Both outcomes are reached, and many accepted inputs are compared.
    assert!(
        ok > 500 && refused > 500 && compared > 500,
        "{ok} {refused} {compared}"
    );
}
