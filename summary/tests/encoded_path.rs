//! A logs batch that still holds its protobuf bytes is summarised from them, in place: the
//! summary must be exactly the one of prost's decoding of the same bytes, for every shape of
//! record (bodies and attribute values of every type, nested lists, several resources,
//! scopes and services, records without times) and for encodings where prost merges
//! repeated fields (those records are read through prost). The batch stays undecoded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use weir_api::fixtures::kv;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValueList,
};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Batch, Payload, Signal};
use weir_summary::{MetadataConfig, MetadataHandle};

fn any(v: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn s(v: &str) -> Option<AnyValue> {
    any(Value::StringValue(v.into()))
}

fn resource(service: Option<&str>, extra: &str) -> Option<Resource> {
    let mut attributes = vec![kv("host.name", s(extra))];
    if let Some(name) = service {
        attributes.push(kv("service.name", s(name)));
    }
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LINES: &[&str] = &[
    "GET /api/v1/orders/1234 200 12ms ip=10.1.2.3",
    "cache lookup key=user:5521 hit=true took 31us",
    "Accepted password for fztu from 10.0.0.7 port 5523 ssh2",
    "payment declined for order 77 code=E12",
    "{\"event\":\"signup\",\"email\":\"bob@corp.com\"}",
    "connection from 192.168.1.20:5433 closed, 1234 bytes (1.2 KB) sent, <1 sec",
    "",
    "Üñíçødé line with ✓ marks",
];

fn value(rng: &mut Rng, depth: u32) -> Option<AnyValue> {
    match rng.below(if depth > 2 { 7 } else { 10 }) {
        0 => None,
        1 => Some(AnyValue { value: None }),
        2 => any(Value::BoolValue(rng.below(2) == 0)),
        3 => any(Value::IntValue(rng.next() as i64)),
        4 => any(Value::DoubleValue(rng.below(1000) as f64 / 7.0)),
        5 => any(Value::BytesValue(rng.next().to_le_bytes().to_vec())),
        6 => s(LINES[rng.below(LINES.len() as u64) as usize]),
        7 | 8 => any(Value::KvlistValue(KeyValueList {
            values: (0..rng.below(4))
                .map(|i| kv(&format!("k{i}"), value(rng, depth + 1)))
                .collect(),
        })),
        _ => any(Value::ArrayValue(ArrayValue {
            values: (0..rng.below(4))
                .filter_map(|_| value(rng, depth + 1))
                .collect(),
        })),
    }
}

fn record(rng: &mut Rng) -> LogRecord {
    let body = if rng.below(3) == 0 {
        value(rng, 0)
    } else {
        s(LINES[rng.below(LINES.len() as u64) as usize])
    };
    LogRecord {
        time_unix_nano: if rng.below(4) == 0 {
            0
        } else {
            1_700_000_000_000_000_000 + rng.below(5_000_000_000)
        },
        observed_time_unix_nano: rng.below(2) * 1_700_000_000_500_000_000,
        severity_number: rng.below(25) as i32,
        severity_text: ["", "INFO", "WARN", "ERROR", "debug"][rng.below(5) as usize].into(),
        body,
        attributes: (0..rng.below(6))
            .map(|i| {
                let key = ["http.method", "user.id", "region", "payload", "k"][i as usize % 5];
                kv(key, value(rng, 1))
            })
            .collect(),
        trace_id: rng.next().to_le_bytes().repeat(2),
        flags: rng.below(2) as u32,
        ..Default::default()
    }
}

fn request(seed: u64) -> ExportLogsServiceRequest {
    let mut rng = Rng(seed | 1);
    let services = [Some("checkout"), Some("cart"), None, Some("")];
    ExportLogsServiceRequest {
        resource_logs: (0..1 + rng.below(4))
            .map(|r| ResourceLogs {
                resource: if rng.below(5) == 0 {
                    None
                } else {
                    resource(services[rng.below(4) as usize], &format!("node-{r}"))
                },
                scope_logs: (0..rng.below(3) + 1)
                    .map(|_| ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            ..Default::default()
                        }),
                        log_records: (0..rng.below(40)).map(|_| record(&mut rng)).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

/// The summaries (JSON) of `bytes` read in place and of prost's decoding of them, under one
/// handle configuration; also whether the in-place batch stayed undecoded.
fn both(bytes: &[u8]) -> (String, String, bool) {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
    let encoded = {
        let mut b = Batch::decode(Signal::Logs, Bytes::copy_from_slice(bytes)).unwrap();
        b.context.received_at = at;
        b
    };
    let decoded = {
        let req = ExportLogsServiceRequest::decode(bytes).unwrap();
        let mut b = Batch::new(Payload::Logs(req));
        b.context.received_at = at;
        b
    };
    let summary = |b: &Batch| {
        let h = MetadataHandle::new(&MetadataConfig::default());
        h.observe(b);
        serde_json::to_string(&h.take()).unwrap()
    };
    let from_bytes = summary(&encoded);
    let undecoded = !encoded.is_decoded();
    (from_bytes, summary(&decoded), undecoded)
}

#[test]
fn in_place_summary_equals_the_decoded_one() {
    let mut records = 0;
    for seed in 1..=300u64 {
        let req = request(seed * 7919);
        records += req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum::<usize>();
        let (a, b, undecoded) = both(&req.encode_to_vec());
        assert!(undecoded, "seed {seed}: the summariser decoded the batch");
        assert_eq!(a, b, "seed {seed}");
    }
    assert!(records > 5_000, "{records}");
}

/// Appends field `number` (length-delimited) holding `body` to `out`.
fn field(out: &mut Vec<u8>, number: u32, body: &[u8]) {
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A request of one resource (service `merge`) and one scope whose records are `records`
/// (each the bytes of a `LogRecord`).
fn raw_request(records: &[Vec<u8>]) -> Vec<u8> {
    let mut scope = Vec::new();
    for r in records {
        field(&mut scope, 2, r);
    }
    let mut rl = Vec::new();
    field(
        &mut rl,
        1,
        &resource(Some("merge"), "n").unwrap().encode_to_vec(),
    );
    field(&mut rl, 2, &scope);
    let mut req = Vec::new();
    field(&mut req, 1, &rl);
    req
}

/// Removes the record sizes (`bytes` of volumes, templates and severity classes) but not
/// those of attributes.
fn strip_record_sizes(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let attribute = map.contains_key("distinct");
            if !attribute {
                map.remove("bytes");
            }
            map.values_mut().for_each(strip_record_sizes);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_record_sizes),
        _ => {}
    }
}

#[test]
fn records_prost_would_merge_are_summarised_as_prost_decodes_them() {
    let plain = LogRecord {
        body: s("user 42 logged in"),
        severity_text: "INFO".into(),
        attributes: vec![kv("a", s("x"))],
        ..Default::default()
    }
    .encode_to_vec();
    // Two bodies: prost merges the second AnyValue into the first (the string is replaced).
    let mut two_bodies = plain.clone();
    field(
        &mut two_bodies,
        5,
        &AnyValue {
            value: Some(Value::StringValue("user 43 logged out".into())),
        }
        .encode_to_vec(),
    );
    // A body whose key-value list occurs twice: prost appends the second list's entries.
    let list = |k: &str| {
        KeyValueList {
            values: vec![kv(k, s("v"))],
        }
        .encode_to_vec()
    };
    let mut any = Vec::new();
    field(&mut any, 6, &list("first"));
    field(&mut any, 6, &list("second"));
    let mut two_lists = Vec::new();
    field(&mut two_lists, 5, &any);
    // An attribute with two values, and a repeated severity text (the last one counts).
    let mut pair = Vec::new();
    field(&mut pair, 1, b"a");
    field(&mut pair, 2, &s("x").unwrap().encode_to_vec());
    field(&mut pair, 2, &s("y").unwrap().encode_to_vec());
    let mut two_values = Vec::new();
    field(&mut two_values, 6, &pair);
    field(&mut two_values, 3, b"WARN");
    field(&mut two_values, 3, b"ERROR");
    // A string member then an int member: the oneof keeps the last.
    let mut last_member = Vec::new();
    field(&mut last_member, 1, b"text");
    prost::encoding::encode_key(3, prost::encoding::WireType::Varint, &mut last_member);
    prost::encoding::encode_varint(7, &mut last_member);
    let mut oneof = Vec::new();
    field(&mut oneof, 5, &last_member);
    let records = [plain, two_bodies, two_lists, two_values, oneof];
    let wire: usize = records.iter().map(Vec::len).sum();
    let req = raw_request(&records);
    let (a, b, undecoded) = both(&req);
    assert!(undecoded);
    // Sizes differ by design: in place a record counts its bytes as received, prost's
    // re-encoding of a record with repeated fields is shorter. Everything else is equal.
    let (mut va, mut vb): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&a).unwrap(),
        serde_json::from_str(&b).unwrap(),
    );
    assert_eq!(va["services"]["merge"]["logs"]["volume"]["bytes"], wire);
    assert!(
        vb["services"]["merge"]["logs"]["volume"]["bytes"]
            .as_u64()
            .unwrap()
            < wire as u64
    );
    strip_record_sizes(&mut va);
    strip_record_sizes(&mut vb);
    assert_eq!(va, vb);
    // And what prost made of them is what was counted: two templates of `user <*> ...`
    // bodies and one ERROR record.
    let summary: serde_json::Value = serde_json::from_str(&a).unwrap();
    let logs = &summary["services"]["merge"]["logs"];
    assert_eq!(logs["volume"]["items"], 5, "{logs}");
    let text = logs.to_string();
    assert!(text.contains("logged out"), "{text}");
    assert!(text.contains(": first,second}"), "{text}");
    assert!(text.contains("{int}"), "{text}");
}

mod traces {
    use super::*;
    use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use weir_api::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

    const NAMES: &[&str] = &[
        "GET /api/v1/orders/{id}",
        "GET /users/alice@corp.com/cards",
        "SELECT orders",
        "SELECT * FROM users WHERE name = 'Jane Doe'",
        "cache.get",
        "",
    ];

    fn span(rng: &mut Rng, ids: &[[u8; 8]], i: usize) -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: ids[i].to_vec(),
            parent_span_id: match rng.below(3) {
                0 => vec![],
                1 => ids[rng.below(ids.len() as u64) as usize].to_vec(),
                _ => rng.next().to_le_bytes().to_vec(),
            },
            name: NAMES[rng.below(NAMES.len() as u64) as usize].into(),
            kind: rng.below(7) as i32,
            start_time_unix_nano: rng.below(3) * 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_000_000 + rng.below(2_000_000_000),
            attributes: (0..rng.below(5))
                .map(|i| {
                    kv(
                        ["http.route", "db.statement", "peer", "k"][i as usize % 4],
                        value(rng, 1),
                    )
                })
                .collect(),
            events: (0..rng.below(3))
                .map(|_| span::Event {
                    name: "exception".into(),
                    ..Default::default()
                })
                .collect(),
            links: (0..rng.below(2))
                .map(|_| span::Link {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    ..Default::default()
                })
                .collect(),
            status: match rng.below(4) {
                0 => None,
                n => Some(Status {
                    message: if n == 2 { "boom".into() } else { String::new() },
                    code: (n - 1) as i32,
                }),
            },
            ..Default::default()
        }
    }

    fn request(seed: u64) -> ExportTraceServiceRequest {
        let mut rng = Rng(seed | 1);
        let ids: Vec<[u8; 8]> = (0..30).map(|_| rng.next().to_le_bytes()).collect();
        let services = [Some("checkout"), Some("cart"), None];
        let mut next = 0;
        ExportTraceServiceRequest {
            resource_spans: (0..1 + rng.below(3))
                .map(|r| ResourceSpans {
                    resource: resource(services[rng.below(3) as usize], &format!("n{r}")),
                    scope_spans: (0..1 + rng.below(2))
                        .map(|_| ScopeSpans {
                            spans: (0..rng.below(10))
                                .map(|_| {
                                    next += 1;
                                    span(&mut rng, &ids, next % ids.len())
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

    #[test]
    fn in_place_span_summary_equals_the_decoded_one() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        for seed in 1..=300u64 {
            let bytes = request(seed * 104_729).encode_to_vec();
            let mut encoded = Batch::decode(Signal::Traces, Bytes::from(bytes.clone())).unwrap();
            encoded.context.received_at = at;
            let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
            let mut decoded = Batch::new(Payload::Traces(req));
            decoded.context.received_at = at;
            let summary = |b: &Batch| {
                let h = MetadataHandle::new(&MetadataConfig::default());
                h.observe(b);
                serde_json::to_string(&h.take()).unwrap()
            };
            let a = summary(&encoded);
            assert!(
                !encoded.is_decoded(),
                "seed {seed}: the summariser decoded the batch"
            );
            assert_eq!(a, summary(&decoded), "seed {seed}");
        }
    }

    #[test]
    fn merged_statuses_keep_the_last_code_as_prost_does() {
        let base = Span {
            span_id: vec![1; 8],
            name: "op".into(),
            status: Some(Status {
                message: String::new(),
                code: 2,
            }),
            ..Default::default()
        }
        .encode_to_vec();
        // A second status with a message and no code: the code stays ERROR after the merge.
        let mut twice = base.clone();
        field(
            &mut twice,
            15,
            &Status {
                message: "m".into(),
                code: 0,
            }
            .encode_to_vec(),
        );
        let mut scope = Vec::new();
        field(&mut scope, 2, &twice);
        let mut rs = Vec::new();
        field(&mut rs, 2, &scope);
        let mut req = Vec::new();
        field(&mut req, 1, &rs);
        let batch = Batch::decode(Signal::Traces, Bytes::from(req.clone())).unwrap();
        let h = MetadataHandle::new(&MetadataConfig::default());
        h.observe(&batch);
        let s = serde_json::to_value(h.take()).unwrap();
        let op = &s["services"]["unknown_service"]["traces"]["spans"]["op"];
        assert_eq!(op["status"]["error"], 1, "{op}");
        let decoded = ExportTraceServiceRequest::decode(req.as_slice()).unwrap();
        let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.status.as_ref().unwrap().code, 2);
    }
}
