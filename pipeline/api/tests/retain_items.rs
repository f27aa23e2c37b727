//! `Batch::retain_items` on batches that still hold their bytes: the spliced encoding must
//! decode to exactly what dropping the items from the decoded request gives, for many shapes
//! of request (several resources and scopes, empty scopes, unknown fields) and drop patterns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
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

fn logs_request(rng: &mut Rng) -> ExportLogsServiceRequest {
    let mut n = 0u64;
    ExportLogsServiceRequest {
        resource_logs: (0..rng.below(4))
            .map(|r| ResourceLogs {
                resource: (rng.below(3) > 0).then(|| Resource {
                    attributes: vec![attr("service.name", format!("svc-{r}"))],
                    ..Default::default()
                }),
                scope_logs: (0..rng.below(4))
                    .map(|s| ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: format!("scope-{s}"),
                            ..Default::default()
                        }),
                        log_records: (0..rng.below(6))
                            .map(|_| {
                                n += 1;
                                LogRecord {
                                    time_unix_nano: n,
                                    severity_number: rng.below(24) as i32,
                                    body: Some(AnyValue {
                                        value: Some(any_value::Value::StringValue(
                                            "x".repeat(rng.below(300) as usize),
                                        )),
                                    }),
                                    attributes: vec![attr("n", n.to_string())],
                                    ..Default::default()
                                }
                            })
                            .collect(),
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

fn traces_request(rng: &mut Rng) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: (0..rng.below(4))
            .map(|r| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attr("service.name", format!("svc-{r}"))],
                    ..Default::default()
                }),
                scope_spans: (0..rng.below(4))
                    .map(|_| ScopeSpans {
                        spans: (0..rng.below(6))
                            .map(|i| Span {
                                name: format!("span-{i}"),
                                trace_id: vec![r as u8; 16],
                                span_id: vec![i as u8; 8],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

/// What dropping gives on the decoded form: retain, then prune empty entries.
fn expected(payload: &Payload, keep: &[bool]) -> Payload {
    let mut p = payload.clone();
    let mut i = 0;
    let mut flag = || {
        let k = keep.get(i).copied().unwrap_or(true);
        i += 1;
        k
    };
    match &mut p {
        Payload::Logs(r) => {
            for rl in &mut r.resource_logs {
                for sl in &mut rl.scope_logs {
                    sl.log_records.retain(|_| flag());
                }
            }
        }
        Payload::Traces(r) => {
            for rs in &mut r.resource_spans {
                for ss in &mut rs.scope_spans {
                    ss.spans.retain(|_| flag());
                }
            }
        }
        Payload::Metrics(_) => unreachable!(),
    }
    p.prune_empty();
    p
}

fn check(signal: Signal, bytes: Vec<u8>, rng: &mut Rng) {
    let bytes = Bytes::from(bytes);
    let original = Batch::decode(signal, bytes.clone()).unwrap();
    let n = original.item_count();
    // Drop nothing, everything, and random patterns (some shorter than the item count).
    let mut patterns = vec![vec![true; n], vec![false; n]];
    for _ in 0..4 {
        let len = if rng.below(4) == 0 {
            rng.below(n as u64 + 1) as usize
        } else {
            n
        };
        patterns.push((0..len).map(|_| rng.below(2) == 0).collect());
    }
    for keep in patterns {
        let want = expected(original.payload(), &keep);
        let mut b = original.clone();
        assert!(b.retain_items(&keep));
        assert_eq!(b.payload(), &want, "payload after retain_items");
        let spliced = b.original_bytes().expect("spliced bytes kept").clone();
        let again = Batch::decode(signal, spliced.clone()).unwrap();
        assert_eq!(
            again.payload(),
            &want,
            "spliced bytes decode to the retained request"
        );
        let kept = (0..n)
            .filter(|i| keep.get(*i).copied().unwrap_or(true))
            .count();
        assert_eq!(b.item_count(), kept);
        // A request re-encoded from the decoded form has the same length (no unknown fields
        // here, canonical encoding on both sides).
        assert_eq!(spliced.len(), want.encoded_len());
    }
}

#[test]
fn spliced_logs_decode_to_the_retained_request() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let req = logs_request(&mut rng);
        check(Signal::Logs, req.encode_to_vec(), &mut rng);
    }
}

#[test]
fn spliced_traces_decode_to_the_retained_request() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..300 {
        let req = traces_request(&mut rng);
        check(Signal::Traces, req.encode_to_vec(), &mut rng);
    }
}

#[test]
fn dropping_everything_leaves_an_empty_request() {
    let mut rng = Rng(7);
    let req = loop {
        let r = logs_request(&mut rng);
        if r.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .any(|s| !s.log_records.is_empty())
        {
            break r;
        }
    };
    let mut b = Batch::decode(Signal::Logs, Bytes::from(req.encode_to_vec())).unwrap();
    let n = b.item_count();
    assert!(b.retain_items(&vec![false; n]));
    assert_eq!(b.item_count(), 0);
    assert_eq!(b.original_bytes().map(|b| b.len()), Some(0));
}

#[test]
fn unknown_fields_of_kept_entries_survive_the_splice() {
    // Field 99 (varint 7) appended inside the first scope entry: prost skips it on decode,
    // the splice copies it with the scope entry, and the result still decodes the same.
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..3)
                    .map(|i| LogRecord {
                        time_unix_nano: i + 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let scope = req.resource_logs[0].scope_logs[0].clone();
    let mut scope_bytes = scope.encode_to_vec();
    scope_bytes.extend_from_slice(&[0x98, 0x06, 0x07]); // key (99 << 3 | 0), value 7
    let mut resource_bytes = vec![0x12];
    prost::encoding::encode_varint(scope_bytes.len() as u64, &mut resource_bytes);
    resource_bytes.extend_from_slice(&scope_bytes);
    let mut request = vec![0x0a];
    prost::encoding::encode_varint(resource_bytes.len() as u64, &mut request);
    request.extend_from_slice(&resource_bytes);

    let mut b = Batch::decode(Signal::Logs, Bytes::from(request)).unwrap();
    assert!(b.retain_items(&[true, false, true]));
    let spliced = b.original_bytes().unwrap().clone();
    assert!(
        spliced.windows(3).any(|w| w == [0x98, 0x06, 0x07]),
        "unknown field kept"
    );
    let again = Batch::decode(Signal::Logs, spliced).unwrap();
    assert_eq!(again.payload(), b.payload());
    assert_eq!(again.item_count(), 2);
}

#[test]
fn a_metrics_batch_built_in_memory_is_edited_in_memory() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    let gauge = |name: &str, points: u64| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|t| NumberDataPoint {
                    time_unix_nano: t,
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    let mut b = Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge("a", 2), gauge("b", 1)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }));
    assert!(b.retain_items(&[true, false, false]));
    assert!(b.original_bytes().is_none());
    assert_eq!(b.item_count(), 1);
    let Payload::Metrics(r) = b.payload() else {
        panic!("metrics")
    };
    let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 1, "b was left without points");
    assert_eq!(metrics[0], gauge("a", 1));
}
