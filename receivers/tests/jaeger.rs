//! The `jaeger` receiver on loopback: Thrift binary over HTTP, the agent's UDP Thrift compact
//! and binary `emitBatch` packets, gRPC `PostSpans`, the Collector's translation checked
//! field by field, and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{metric_value, post, Recorder};
use weir_api::otlp::common::v1::{any_value::Value as V, KeyValue};
use weir_api::otlp::trace::v1::ResourceSpans;
use weir_api::{
    BuildContext, Component, ComponentId, Consumer, Payload, SignalConsumers, Telemetry,
};
use weir_receivers::jaeger::proto as jp;
use weir_receivers::jaeger::thrift::{Protocol, Value as T};
use weir_receivers::jaeger::{JaegerReceiver, JaegerReceiverFactory};

struct Running {
    receiver: Arc<JaegerReceiver>,
    recorder: Arc<Recorder>,
    telemetry: Telemetry,
}

impl Running {
    fn resource_spans(&self) -> Vec<ResourceSpans> {
        self.recorder
            .take()
            .into_iter()
            .flat_map(|b| match b.payload().clone() {
                Payload::Traces(t) => t.resource_spans,
                other => panic!("not traces: {other:?}"),
            })
            .collect()
    }

    async fn wait_batches(&self, n: usize) {
        for _ in 0..500 {
            if self.recorder.batches.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} batches did not arrive");
    }
}

async fn start(protocols: serde_json::Value) -> Running {
    let cfg = JaegerReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": protocols}),
            "receivers.jaeger",
        )
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let c: Arc<dyn Consumer> = recorder.clone();
    let ctx = BuildContext::for_component(ComponentId::parse("jaeger").unwrap());
    let telemetry = ctx.telemetry.clone();
    let receiver = cfg.build_receiver(
        &ctx,
        SignalConsumers {
            traces: Some(c),
            ..Default::default()
        },
    );
    receiver.start().await.unwrap();
    Running {
        receiver,
        recorder,
        telemetry,
    }
}

fn all_protocols() -> serde_json::Value {
    serde_json::json!({
        "grpc": {"endpoint": "127.0.0.1:0"},
        "thrift_http": {"endpoint": "127.0.0.1:0", "max_request_body_size": 65536},
        "thrift_compact": {"endpoint": "127.0.0.1:0"},
        "thrift_binary": {"endpoint": "127.0.0.1:0"},
    })
}

// ---- a small Thrift writer for the tests (binary and compact protocols) ----

fn type_id(v: &T, p: Protocol) -> u8 {
    match (p, v) {
        (Protocol::Binary, T::Bool(_)) => 2,
        (Protocol::Binary, T::Byte(_)) => 3,
        (Protocol::Binary, T::Double(_)) => 4,
        (Protocol::Binary, T::I16(_)) => 6,
        (Protocol::Binary, T::I32(_)) => 8,
        (Protocol::Binary, T::I64(_)) => 10,
        (Protocol::Binary, T::Binary(_)) => 11,
        (Protocol::Binary, T::Struct(_)) => 12,
        (Protocol::Binary, T::Map(_)) => 13,
        (Protocol::Binary, T::List(_)) => 15,
        (Protocol::Compact, T::Bool(b)) => {
            if *b {
                1
            } else {
                2
            }
        }
        (Protocol::Compact, T::Byte(_)) => 3,
        (Protocol::Compact, T::I16(_)) => 4,
        (Protocol::Compact, T::I32(_)) => 5,
        (Protocol::Compact, T::I64(_)) => 6,
        (Protocol::Compact, T::Double(_)) => 7,
        (Protocol::Compact, T::Binary(_)) => 8,
        (Protocol::Compact, T::List(_)) => 9,
        (Protocol::Compact, T::Map(_)) => 11,
        (Protocol::Compact, T::Struct(_)) => 12,
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn write_struct(out: &mut Vec<u8>, fields: &[(i16, T)], p: Protocol) {
    let mut last = 0i16;
    for (id, v) in fields {
        match p {
            Protocol::Binary => {
                out.push(type_id(v, p));
                out.extend_from_slice(&id.to_be_bytes());
                write_value(out, v, p);
            }
            Protocol::Compact => {
                let delta = id - last;
                if (1..=15).contains(&delta) {
                    out.push(((delta as u8) << 4) | type_id(v, p));
                } else {
                    out.push(type_id(v, p));
                    zigzag(out, i64::from(*id));
                }
                last = *id;
                if !matches!(v, T::Bool(_)) {
                    write_value(out, v, p);
                }
            }
        }
    }
    out.push(0);
}

fn write_value(out: &mut Vec<u8>, v: &T, p: Protocol) {
    match (p, v) {
        (_, T::Bool(b)) => out.push(match p {
            Protocol::Binary => u8::from(*b),
            Protocol::Compact => {
                if *b {
                    1
                } else {
                    2
                }
            }
        }),
        (_, T::Byte(b)) => out.push(*b as u8),
        (Protocol::Binary, T::I16(i)) => out.extend_from_slice(&i.to_be_bytes()),
        (Protocol::Binary, T::I32(i)) => out.extend_from_slice(&i.to_be_bytes()),
        (Protocol::Binary, T::I64(i)) => out.extend_from_slice(&i.to_be_bytes()),
        (Protocol::Binary, T::Double(d)) => out.extend_from_slice(&d.to_be_bytes()),
        (Protocol::Compact, T::I16(i)) => zigzag(out, i64::from(*i)),
        (Protocol::Compact, T::I32(i)) => zigzag(out, i64::from(*i)),
        (Protocol::Compact, T::I64(i)) => zigzag(out, *i),
        (Protocol::Compact, T::Double(d)) => out.extend_from_slice(&d.to_le_bytes()),
        (Protocol::Binary, T::Binary(b)) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        (Protocol::Compact, T::Binary(b)) => {
            varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        (_, T::Struct(f)) => write_struct(out, f, p),
        (Protocol::Binary, T::List(items)) => {
            out.push(items.first().map_or(12, |i| type_id(i, p)));
            out.extend_from_slice(&(items.len() as i32).to_be_bytes());
            for i in items {
                write_value(out, i, p);
            }
        }
        (Protocol::Compact, T::List(items)) => {
            let t = items.first().map_or(12, |i| type_id(i, p));
            let t = if t == 2 { 1 } else { t };
            if items.len() < 15 {
                out.push(((items.len() as u8) << 4) | t);
            } else {
                out.push(0xf0 | t);
                varint(out, items.len() as u64);
            }
            for i in items {
                write_value(out, i, p);
            }
        }
        (_, T::Map(_)) => unreachable!("no maps in jaeger.thrift"),
    }
}

fn s(v: &str) -> T {
    T::Binary(v.as_bytes().to_vec())
}

fn tag(key: &str, value: T) -> T {
    let (vtype, field) = match &value {
        T::Binary(_) => (0, 3),
        T::Double(_) => (1, 4),
        T::Bool(_) => (2, 5),
        T::I64(_) => (3, 6),
        _ => unreachable!(),
    };
    T::Struct(vec![(1, s(key)), (2, T::I32(vtype)), (field, value)])
}

const START_US: i64 = 1_700_000_000_000_000;

/// A batch: process `svc` with hostname and jaeger.version tags; a server root span and a
/// client child (error tag, status description, a log, a FOLLOWS_FROM reference), sampled.
fn batch_fields(svc: &str) -> Vec<(i16, T)> {
    let process = T::Struct(vec![
        (1, s(svc)),
        (
            2,
            T::List(vec![
                tag("hostname", s("node-3")),
                tag("jaeger.version", s("Go-2.30.0")),
                tag("ip", s("10.0.0.3")),
            ]),
        ),
    ]);
    let root = T::Struct(vec![
        (1, T::I64(0x22)),
        (2, T::I64(0x11)),
        (3, T::I64(1)),
        (4, T::I64(0)),
        (5, s("GET /checkout")),
        (7, T::I32(1)),
        (8, T::I64(START_US)),
        (9, T::I64(2500)),
        (
            10,
            T::List(vec![
                tag("span.kind", s("server")),
                tag("http.status_code", T::I64(404)),
                tag("ratio", T::Double(0.5)),
            ]),
        ),
    ]);
    let child = T::Struct(vec![
        (1, T::I64(0x22)),
        (2, T::I64(0x11)),
        (3, T::I64(2)),
        (4, T::I64(1)),
        (5, s("SELECT")),
        (
            6,
            T::List(vec![T::Struct(vec![
                (1, T::I32(1)),
                (2, T::I64(0x99)),
                (3, T::I64(0)),
                (4, T::I64(7)),
            ])]),
        ),
        (7, T::I32(0)),
        (8, T::I64(START_US + 100)),
        (9, T::I64(1000)),
        (
            10,
            T::List(vec![
                tag("span.kind", s("client")),
                tag("error", T::Bool(true)),
                tag("otel.status_description", s("deadlock")),
                tag("db.system", s("postgresql")),
            ]),
        ),
        (
            11,
            T::List(vec![T::Struct(vec![
                (1, T::I64(START_US + 600)),
                (
                    2,
                    T::List(vec![tag("event", s("retry")), tag("attempt", T::I64(2))]),
                ),
            ])]),
        ),
    ]);
    vec![(1, process), (2, T::List(vec![root, child]))]
}

fn encode_batch(svc: &str, p: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    write_struct(&mut out, &batch_fields(svc), p);
    out
}

/// An agent `emitBatch` oneway call.
fn agent_packet(svc: &str, p: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    match p {
        Protocol::Binary => {
            out.extend_from_slice(&(0x8001_0004u32 as i32).to_be_bytes());
            write_value(&mut out, &s("emitBatch"), p);
            out.extend_from_slice(&7i32.to_be_bytes());
        }
        Protocol::Compact => {
            out.push(0x82);
            out.push((4 << 5) | 1);
            varint(&mut out, 7);
            write_value(&mut out, &s("emitBatch"), p);
        }
    }
    write_struct(&mut out, &[(1, T::Struct(batch_fields(svc)))], p);
    out
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, V> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap()))
        .collect()
}

fn sv(v: &str) -> V {
    V::StringValue(v.into())
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// Checks the translation of [`batch_fields`] (the Thrift dialect).
fn check_thrift_batch(rs: &[ResourceSpans], svc: &str) {
    assert_eq!(rs.len(), 1);
    assert_eq!(
        attrs(&rs[0].resource.as_ref().unwrap().attributes),
        BTreeMap::from([
            ("host.name".into(), sv("node-3")),
            ("ip".into(), sv("10.0.0.3")),
            ("opencensus.exporterversion".into(), sv("Jaeger-Go-2.30.0")),
            ("service.name".into(), sv(svc)),
        ])
    );
    let spans = &rs[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 2);
    let (root, child) = (&spans[0], &spans[1]);
    let trace = unhex("00000000000000110000000000000022");
    assert_eq!(root.trace_id, trace);
    assert_eq!(root.span_id, unhex("0000000000000001"));
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.name, "GET /checkout");
    assert_eq!(root.kind, 2);
    assert_eq!(root.flags, 1, "sampled");
    assert_eq!(root.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(root.end_time_unix_nano, 1_700_000_000_002_500_000);
    // 404 on a server span leaves the status unset.
    assert_eq!(root.status, None);
    assert_eq!(
        attrs(&root.attributes),
        BTreeMap::from([
            ("http.status_code".into(), V::IntValue(404)),
            ("ratio".into(), V::DoubleValue(0.5)),
        ])
    );
    assert_eq!(child.parent_span_id, unhex("0000000000000001"));
    assert_eq!(child.kind, 3);
    assert_eq!(child.flags, 0);
    let st = child.status.clone().unwrap();
    assert_eq!((st.code, st.message.as_str()), (2, "deadlock"));
    assert_eq!(
        attrs(&child.attributes),
        BTreeMap::from([("db.system".into(), sv("postgresql"))])
    );
    assert_eq!(child.events.len(), 1);
    assert_eq!(child.events[0].name, "retry");
    assert_eq!(child.events[0].time_unix_nano, 1_700_000_000_000_600_000);
    assert_eq!(
        attrs(&child.events[0].attributes),
        BTreeMap::from([("attempt".into(), V::IntValue(2))])
    );
    assert_eq!(child.links.len(), 1);
    assert_eq!(
        child.links[0].trace_id,
        unhex("00000000000000000000000000000099")
    );
    assert_eq!(child.links[0].span_id, unhex("0000000000000007"));
    assert_eq!(
        attrs(&child.links[0].attributes),
        BTreeMap::from([("opentracing.ref_type".into(), sv("follows_from"))])
    );
}

#[tokio::test]
async fn thrift_http_binary_batch_translates_field_by_field() {
    let r = start(all_protocols()).await;
    let addr = r.receiver.thrift_http_address().unwrap();
    let a = post(
        addr,
        "/api/traces",
        "application/x-thrift",
        None,
        encode_batch("checkout", Protocol::Binary),
    )
    .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    check_thrift_batch(&r.resource_spans(), "checkout");
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn agent_udp_compact_and_binary_packets_arrive() {
    let r = start(all_protocols()).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(
        &agent_packet("compact-svc", Protocol::Compact),
        r.receiver.thrift_compact_address().unwrap(),
    )
    .await
    .unwrap();
    r.wait_batches(1).await;
    check_thrift_batch(&r.resource_spans(), "compact-svc");
    udp.send_to(
        &agent_packet("binary-svc", Protocol::Binary),
        r.receiver.thrift_binary_address().unwrap(),
    )
    .await
    .unwrap();
    r.wait_batches(1).await;
    check_thrift_batch(&r.resource_spans(), "binary-svc");
    // Garbage and a binary packet sent to the compact port are dropped and counted.
    let compact = r.receiver.thrift_compact_address().unwrap();
    udp.send_to(b"\x82\x21garbage", compact).await.unwrap();
    udp.send_to(&agent_packet("x", Protocol::Binary), compact)
        .await
        .unwrap();
    let series = "weir_receiver_refused_requests_total{receiver=\"jaeger\",transport=\"udp\",signal=\"traces\"}";
    for _ in 0..500 {
        if metric_value(&r.telemetry, series) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        metric_value(&r.telemetry, series),
        2,
        "{}",
        r.telemetry.encode()
    );
    assert!(r.recorder.take().is_empty());
    r.receiver.shutdown().await;
}

fn kv(key: &str, v_type: i32) -> jp::KeyValue {
    jp::KeyValue {
        key: key.into(),
        v_type,
        ..Default::default()
    }
}

#[tokio::test]
async fn grpc_post_spans_translates_with_scope_tracestate_and_span_processes() {
    let r = start(all_protocols()).await;
    let url = format!("http://{}", r.receiver.grpc_address().unwrap());
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    let t = |s: i64, n: i32| {
        Some(jp::Time {
            seconds: s,
            nanos: n,
        })
    };
    let trace: Vec<u8> = (1..=16).collect();
    let request = jp::PostSpansRequest {
        batch: Some(jp::ProtoBatch {
            process: Some(jp::ProtoProcess {
                service_name: "api".into(),
                tags: vec![jp::KeyValue {
                    v_str: "eu".into(),
                    ..kv("region", 0)
                }],
            }),
            spans: vec![
                jp::ProtoSpan {
                    trace_id: trace.clone(),
                    span_id: vec![0, 0, 0, 0, 0, 0, 0, 5],
                    operation_name: "handle".into(),
                    references: vec![jp::ProtoSpanRef {
                        trace_id: trace.clone(),
                        span_id: vec![0, 0, 0, 0, 0, 0, 0, 4],
                        ref_type: 0,
                    }],
                    flags: 1,
                    start_time: t(1_700_000_000, 123_456_789),
                    duration: t(0, 5_000),
                    tags: vec![
                        jp::KeyValue {
                            v_str: "producer".into(),
                            ..kv("span.kind", 0)
                        },
                        jp::KeyValue {
                            v_str: "ok".into(),
                            ..kv("otel.status_code", 0)
                        },
                        jp::KeyValue {
                            v_str: "lib".into(),
                            ..kv("otel.scope.name", 0)
                        },
                        jp::KeyValue {
                            v_str: "1.0".into(),
                            ..kv("otel.scope.version", 0)
                        },
                        jp::KeyValue {
                            v_str: "a=b".into(),
                            ..kv("w3c.tracestate", 0)
                        },
                        jp::KeyValue {
                            v_binary: vec![1, 2],
                            ..kv("blob", 4)
                        },
                    ],
                    logs: vec![jp::ProtoLog {
                        timestamp: t(1_700_000_000, 200_000_000),
                        fields: vec![jp::KeyValue {
                            v_str: "sent".into(),
                            ..kv("event", 0)
                        }],
                    }],
                    ..Default::default()
                },
                jp::ProtoSpan {
                    trace_id: trace.clone(),
                    span_id: vec![0, 0, 0, 0, 0, 0, 0, 6],
                    operation_name: "own-process".into(),
                    process: Some(jp::ProtoProcess {
                        service_name: "worker".into(),
                        tags: vec![],
                    }),
                    start_time: t(1_700_000_001, 0),
                    ..Default::default()
                },
            ],
        }),
    };
    client.ready().await.unwrap();
    let response: tonic::Response<jp::PostSpansResponse> = client
        .unary(
            tonic::Request::new(request),
            http::uri::PathAndQuery::from_static("/jaeger.api_v2.CollectorService/PostSpans"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(response.into_inner(), jp::PostSpansResponse {});
    let rs = r.resource_spans();
    assert_eq!(rs.len(), 2);
    assert_eq!(
        attrs(&rs[0].resource.as_ref().unwrap().attributes),
        BTreeMap::from([
            ("region".into(), sv("eu")),
            ("service.name".into(), sv("api"))
        ])
    );
    let scope = rs[0].scope_spans[0].scope.clone().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("lib", "1.0")
    );
    let span = &rs[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, trace);
    assert_eq!(span.parent_span_id, vec![0, 0, 0, 0, 0, 0, 0, 4]);
    assert!(span.links.is_empty(), "the parent reference is not a link");
    assert_eq!(span.kind, 4);
    assert_eq!(span.status.clone().unwrap().code, 1);
    assert_eq!(span.trace_state, "a=b");
    assert_eq!(span.flags, 1);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_123_456_789);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_123_461_789);
    assert_eq!(
        attrs(&span.attributes),
        BTreeMap::from([("blob".into(), V::BytesValue(vec![1, 2]))])
    );
    assert_eq!(span.events[0].name, "sent");
    assert_eq!(
        attrs(&rs[1].resource.as_ref().unwrap().attributes),
        BTreeMap::from([("service.name".into(), sv("worker"))])
    );
    assert_eq!(rs[1].scope_spans[0].spans[0].name, "own-process");

    // A span id of the wrong length: INVALID_ARGUMENT naming it.
    let bad = jp::PostSpansRequest {
        batch: Some(jp::ProtoBatch {
            spans: vec![jp::ProtoSpan {
                trace_id: trace.clone(),
                span_id: vec![1, 2, 3],
                ..Default::default()
            }],
            process: None,
        }),
    };
    client.ready().await.unwrap();
    let err = client
        .unary::<_, jp::PostSpansResponse, _>(
            tonic::Request::new(bad),
            http::uri::PathAndQuery::from_static("/jaeger.api_v2.CollectorService/PostSpans"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "invalid jaeger.api_v2.PostSpansRequest: batch.spans[0].span_id has 3 bytes (8 expected)"
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn hostile_thrift_http_bodies_get_clear_errors() {
    let r = start(all_protocols()).await;
    let addr = r.receiver.thrift_http_address().unwrap();
    let mut missing = Vec::new();
    write_struct(
        &mut missing,
        &[
            (1, T::Struct(vec![(1, s("svc"))])),
            (
                2,
                T::List(vec![T::Struct(vec![
                    (1, T::I64(1)),
                    (2, T::I64(0)),
                    (3, T::I64(1)),
                    (4, T::I64(0)),
                ])]),
            ),
        ],
        Protocol::Binary,
    );
    let mut wrong_type = Vec::new();
    write_struct(&mut wrong_type, &[(1, T::I64(5))], Protocol::Binary);
    let cases: Vec<(&str, Vec<u8>, u16, String)> = vec![
        ("application/x-thrift", b"\x0c\x00\x01\x0b\x00\x01\x7f\xff\xff\xff".to_vec(), 400,
         "invalid Thrift (binary) jaeger.Batch: string length 2147483647 is more than the 0 bytes left at byte 10".into()),
        ("application/x-thrift", missing, 400,
         "invalid jaeger.Batch: Batch.spans[0].operationName: missing (required)".into()),
        ("application/x-thrift", wrong_type, 400,
         "invalid jaeger.Batch: Batch.process: expected struct, got i64".into()),
        ("application/x-thrift", vec![0x0c; 200], 400,
         "invalid Thrift (binary) jaeger.Batch: nesting deeper than 32 at byte 99".into()),
        ("application/json", b"{}".to_vec(), 415,
         "415 unsupported media type \"application/json\", supported: [application/x-thrift, application/vnd.apache.thrift.binary]".into()),
        ("application/x-thrift", vec![0; 70000], 413,
         "request body is larger than max_request_body_size (65536 bytes)".into()),
    ];
    for (ct, body, status, message) in cases {
        let a = post(addr, "/api/traces", ct, None, body).await;
        assert_eq!(a.status, status, "{:?}", a.body);
        assert_eq!(String::from_utf8_lossy(&a.body).trim_end(), message);
    }
    let a = post(addr, "/api/other", "application/x-thrift", None, vec![]).await;
    assert_eq!(a.status, 404);
    assert!(r.recorder.take().is_empty());
}

#[test]
fn config_defaults_and_errors() {
    let err = JaegerReceiverFactory
        .parse_config(&serde_json::json!({}), "receivers.jaeger")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "receivers.jaeger.protocols: must specify at least one protocol (grpc, thrift_http, thrift_compact, thrift_binary)");
    let err = JaegerReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": {"thrift_compact": {"workers": 0, "max_packet_size": 70000}, "thrift_udp": null}}),
            "receivers.jaeger",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("receivers.jaeger.protocols.thrift_udp: unknown field"),
        "{err}"
    );
    let err = JaegerReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": {"thrift_compact": {"workers": 0, "max_packet_size": 70000}}}),
            "receivers.jaeger",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("receivers.jaeger.protocols.thrift_compact.workers: must be greater than 0"),
        "{err}"
    );
    assert!(
        err.contains(
            "receivers.jaeger.protocols.thrift_compact.max_packet_size: must be at most 65535"
        ),
        "{err}"
    );
    // Null sections mean "on, with the defaults".
    assert!(JaegerReceiverFactory
        .parse_config(
            &serde_json::json!({"protocols": {"grpc": null, "thrift_http": null, "thrift_compact": null, "thrift_binary": null}}),
            "receivers.jaeger",
        )
        .is_ok());
}

/// Bytes written by Apache Thrift's own (Python) encoders decode as the IDL says.
#[test]
fn apache_thrift_encodings_decode() {
    let dir = format!("{}/tests/testdata/jaeger", env!("CARGO_MANIFEST_DIR"));
    let read = |n: &str| std::fs::read(format!("{dir}/{n}")).unwrap();
    let decoded = [
        weir_receivers::jaeger::decode_thrift_http(&read("batch_binary.bin")).unwrap(),
        weir_receivers::jaeger::decode_agent_packet(&read("agent_compact.bin"), Protocol::Compact)
            .unwrap(),
        weir_receivers::jaeger::decode_agent_packet(&read("agent_binary.bin"), Protocol::Binary)
            .unwrap(),
    ];
    for req in decoded {
        let rs = &req.resource_spans;
        assert_eq!(rs.len(), 1);
        assert_eq!(
            attrs(&rs[0].resource.as_ref().unwrap().attributes),
            BTreeMap::from([
                ("host.name".into(), sv("h")),
                ("service.name".into(), sv("svc"))
            ])
        );
        let span = &rs[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id, unhex("00000000000000010000000000000002"));
        assert_eq!(span.span_id, unhex("0000000000000003"));
        assert_eq!(
            span.parent_span_id,
            unhex("0000000000000009"),
            "from the CHILD_OF reference"
        );
        assert!(span.links.is_empty());
        assert_eq!(span.name, "op");
        assert_eq!(span.kind, 3);
        assert_eq!(span.flags, 1);
        assert_eq!(span.status.clone().unwrap().code, 2);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_000_010_000);
        assert_eq!(
            attrs(&span.attributes),
            BTreeMap::from([
                ("b".into(), V::BytesValue(vec![1, 2])),
                ("n".into(), V::IntValue(7)),
                ("r".into(), V::DoubleValue(0.5)),
            ])
        );
        assert_eq!(span.events[0].name, "e");
        assert_eq!(span.events[0].time_unix_nano, 1_700_000_000_000_005_000);
    }
}

/// Agent packets that are not an `emitBatch` with a batch say so.
#[test]
fn agent_packets_without_a_batch_or_of_another_call_are_errors() {
    // compact: oneway call "emitBatch", seq 1, arguments struct with no fields.
    let mut p = vec![0x82, (4 << 5) | 1, 1, 9];
    p.extend_from_slice(b"emitBatch");
    p.push(0);
    assert_eq!(
        weir_receivers::jaeger::decode_agent_packet(&p, Protocol::Compact).unwrap_err(),
        "invalid emitBatch call: emitBatch.batch: missing (required)"
    );
    let mut z = vec![0x82, (4 << 5) | 1, 1, 15];
    z.extend_from_slice(b"emitZipkinBatch");
    z.push(0);
    assert_eq!(
        weir_receivers::jaeger::decode_agent_packet(&z, Protocol::Compact).unwrap_err(),
        "unsupported agent call \"emitZipkinBatch\" (only emitBatch is taken)"
    );
}
