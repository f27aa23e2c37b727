//! The `zipkin` receiver on a loopback port: the Collector's test data, v2 JSON and
//! protobuf, v1 JSON, compression, and hostile bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{gzip, post, send, Recorder};
use prost::Message;
use weir_api::otlp::common::v1::{any_value::Value as V, KeyValue};
use weir_api::otlp::trace::v1::{ResourceSpans, Span};
use weir_api::zipkin_proto as zp;
use weir_api::{BuildContext, Component, ComponentId, Consumer, Payload, SignalConsumers};
use weir_receivers::zipkin::{ZipkinReceiver, ZipkinReceiverFactory};

struct Running {
    receiver: Arc<ZipkinReceiver>,
    recorder: Arc<Recorder>,
}

impl Running {
    fn addr(&self) -> std::net::SocketAddr {
        self.receiver.address().unwrap()
    }

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
}

async fn start(extra: serde_json::Value) -> Running {
    let mut config = serde_json::json!({"endpoint": "127.0.0.1:0"});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let cfg = ZipkinReceiverFactory
        .parse_config(&config, "receivers.zipkin")
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let c: Arc<dyn Consumer> = recorder.clone();
    let consumers = SignalConsumers {
        traces: Some(c),
        ..Default::default()
    };
    let ctx = BuildContext::for_component(ComponentId::parse("zipkin").unwrap());
    let receiver = cfg.build_receiver(&ctx, consumers);
    receiver.start().await.unwrap();
    Running { receiver, recorder }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, V> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap()))
        .collect()
}

fn s(v: &str) -> V {
    V::StringValue(v.into())
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/testdata/zipkin/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn only_span(rs: &[ResourceSpans]) -> &Span {
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].scope_spans.len(), 1);
    assert_eq!(rs[0].scope_spans[0].spans.len(), 1);
    &rs[0].scope_spans[0].spans[0]
}

#[tokio::test]
async fn collector_sample3_translates_field_by_field() {
    let r = start(serde_json::json!({})).await;
    let a = post(
        r.addr(),
        "/api/v2/spans",
        "application/json",
        None,
        fixture("sample3.json"),
    )
    .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    let rs = r.resource_spans();
    // No local service name: an empty resource.
    assert_eq!(rs[0].resource.as_ref().unwrap().attributes, vec![]);
    let span = only_span(&rs);
    assert_eq!(span.trace_id, unhex("4d1e00c0db9010db86154a4ba6e91385"));
    assert_eq!(span.span_id, unhex("4d1e00c0db9010db"));
    assert_eq!(span.parent_span_id, unhex("86154a4ba6e91385"));
    assert_eq!(span.name, "get");
    assert_eq!(span.kind, 3, "CLIENT");
    assert_eq!(span.start_time_unix_nano, 1_472_470_996_199_000_000);
    assert_eq!(span.end_time_unix_nano, 1_472_470_996_406_000_000);
    // "ERROR" is not one of the status names the Collector knows: the code stays UNSET and
    // the description is kept.
    let st = span.status.clone().unwrap();
    assert_eq!((st.code, st.message.as_str()), (0, "Something failed"));
    assert_eq!(
        attrs(&span.attributes),
        BTreeMap::from([
            ("clnt/finagle.version".into(), s("6.45.0")),
            ("http.path".into(), s("/api")),
            ("net.host.ip".into(), s("7::80:807f")),
            ("net.peer.ip".into(), s("192.168.99.101")),
            ("net.peer.port".into(), V::IntValue(9000)),
            ("peer.service".into(), s("backend")),
        ])
    );
    let events: Vec<(u64, &str)> = span
        .events
        .iter()
        .map(|e| (e.time_unix_nano, e.name.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            (1_472_470_996_238_000_000, "foo"),
            (1_472_470_996_403_000_000, "bar")
        ]
    );
    r.receiver.shutdown().await;
}

#[tokio::test]
async fn collector_sample4_error_tag_sets_error_and_stays_an_attribute() {
    let r = start(serde_json::json!({})).await;
    let a = post(
        r.addr(),
        "/api/v2/spans",
        "application/json",
        None,
        fixture("sample4.json"),
    )
    .await;
    assert_eq!(a.status, 202);
    let rs = r.resource_spans();
    let span = only_span(&rs);
    let st = span.status.clone().unwrap();
    assert_eq!((st.code, st.message.as_str()), (2, ""));
    let at = attrs(&span.attributes);
    assert_eq!(at["error"], s("Non-basic error message"));
    assert!(!at.contains_key("peer.service"));
    assert_eq!(at.len(), 6, "{at:?}");
}

fn v2_json_two_services() -> serde_json::Value {
    serde_json::json!([
        {"traceId": "00000000000000010000000000000002", "id": "000000000000000a",
         "name": "checkout", "kind": "SERVER", "timestamp": 1_700_000_000_000_001u64, "duration": 1500,
         "localEndpoint": {"serviceName": "shop", "ipv4": "10.0.0.1", "port": 8080},
         "tags": {"otel.library.name": "shop-lib", "otel.library.version": "1.2",
                  "host.name": "node-1", "telemetry.sdk.language": "python",
                  "otel.status_code": "STATUS_CODE_OK", "w3c.tracestate": "k=v",
                  "count": "42", "ratio": "2.5", "flag": "true", "text": "007x"}},
        {"traceId": "2", "id": "b", "parentId": "a", "name": "db",
         "timestamp": 1_700_000_000_000_100u64, "duration": 10,
         "localEndpoint": {"serviceName": "db"},
         "annotations": [{"timestamp": 1_700_000_000_000_105u64, "value": "retry|{\"n\":2,\"why\":\"busy|slow\"}|1"}],
         "tags": {"span.kind": "internal", "error": "true",
                  "otlp.link.0": "00000000000000000000000000000003|0000000000000004|s=1|{\"l\":true}|0"}},
        {"traceId": "2", "id": "c", "name": "no-time", "duration": 7,
         "localEndpoint": {"serviceName": "shop"}}
    ])
}

#[tokio::test]
async fn v2_json_groups_by_service_and_library_and_parses_string_tags() {
    let r = start(serde_json::json!({"parse_string_tags": true})).await;
    let body = serde_json::to_vec(&v2_json_two_services()).unwrap();
    let a = post(
        r.addr(),
        "/api/v2/spans",
        "application/json",
        Some("gzip"),
        gzip(&body),
    )
    .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    let rs = r.resource_spans();
    // Sorted by service name: db, then shop (its two spans in two scopes: "" sorts first).
    assert_eq!(rs.len(), 2);
    assert_eq!(
        attrs(&rs[0].resource.as_ref().unwrap().attributes),
        BTreeMap::from([("service.name".into(), s("db"))])
    );
    assert_eq!(
        attrs(&rs[1].resource.as_ref().unwrap().attributes),
        BTreeMap::from([("service.name".into(), s("shop"))])
    );
    let db = &rs[0].scope_spans[0].spans[0];
    assert_eq!(db.trace_id, unhex("00000000000000000000000000000002"));
    assert_eq!(db.span_id, unhex("000000000000000b"));
    assert_eq!(db.parent_span_id, unhex("000000000000000a"));
    assert_eq!(db.kind, 1, "INTERNAL from span.kind");
    assert_eq!(db.status.clone().unwrap().code, 2);
    assert_eq!(
        db.attributes,
        vec![],
        "error=true, span.kind and the link tag are consumed"
    );
    assert_eq!(db.events.len(), 1);
    assert_eq!(db.events[0].name, "retry");
    assert_eq!(db.events[0].time_unix_nano, 1_700_000_000_000_105_000);
    assert_eq!(db.events[0].dropped_attributes_count, 1);
    assert_eq!(
        attrs(&db.events[0].attributes),
        BTreeMap::from([("n".into(), V::IntValue(2)), ("why".into(), s("busy|slow"))])
    );
    assert_eq!(db.links.len(), 1);
    assert_eq!(
        db.links[0].trace_id,
        unhex("00000000000000000000000000000003")
    );
    assert_eq!(db.links[0].span_id, unhex("0000000000000004"));
    assert_eq!(db.links[0].trace_state, "s=1");
    assert_eq!(
        attrs(&db.links[0].attributes),
        BTreeMap::from([("l".into(), V::BoolValue(true))])
    );

    let shop = &rs[1];
    assert_eq!(shop.scope_spans.len(), 2);
    let no_time = &shop.scope_spans[0].spans[0];
    assert_eq!(shop.scope_spans[0].scope.clone().unwrap().name, "");
    assert_eq!(
        (no_time.start_time_unix_nano, no_time.end_time_unix_nano),
        (0, 7000)
    );
    assert_eq!(
        attrs(&no_time.attributes),
        BTreeMap::from([(
            "otel.zipkin.absentField.startTime".into(),
            V::BoolValue(true)
        )])
    );
    let scope = shop.scope_spans[1].scope.clone().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("shop-lib", "1.2")
    );
    let checkout = &shop.scope_spans[1].spans[0];
    assert_eq!(checkout.kind, 2);
    assert_eq!(checkout.trace_state, "k=v");
    assert_eq!(checkout.status.clone().unwrap().code, 1);
    assert_eq!(checkout.start_time_unix_nano, 1_700_000_000_000_001_000);
    assert_eq!(checkout.end_time_unix_nano, 1_700_000_000_001_501_000);
    // Resource conventions (host.name, telemetry.sdk.language) never become span attributes.
    assert_eq!(
        attrs(&checkout.attributes),
        BTreeMap::from([
            ("count".into(), V::IntValue(42)),
            ("flag".into(), V::BoolValue(true)),
            ("net.host.ip".into(), s("10.0.0.1")),
            ("net.host.port".into(), V::IntValue(8080)),
            ("ratio".into(), V::DoubleValue(2.5)),
            ("text".into(), s("007x")),
        ])
    );
}

#[tokio::test]
async fn resource_conventions_move_to_the_resource_of_the_first_span() {
    let r = start(serde_json::json!({})).await;
    let body = serde_json::json!([
        {"traceId": "1", "id": "1", "name": "a", "timestamp": 1, "localEndpoint": {"serviceName": "svc"},
         "tags": {"host.name": "node-1", "k8s.pod.name": "p", "plain": "x"}}
    ]);
    let a = post(
        r.addr(),
        "/api/v2/spans",
        "application/json",
        None,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(a.status, 202);
    let rs = r.resource_spans();
    assert_eq!(
        attrs(&rs[0].resource.as_ref().unwrap().attributes),
        BTreeMap::from([
            ("host.name".into(), s("node-1")),
            ("k8s.pod.name".into(), s("p")),
            ("service.name".into(), s("svc")),
        ])
    );
    assert_eq!(
        attrs(&only_span(&rs).attributes),
        BTreeMap::from([("plain".into(), s("x"))])
    );
}

#[tokio::test]
async fn v2_protobuf_with_gzip_and_64_bit_trace_ids() {
    let r = start(serde_json::json!({})).await;
    let list = zp::ListOfSpans {
        spans: vec![zp::Span {
            trace_id: vec![0, 0, 0, 0, 0, 0, 0, 9],
            id: vec![0, 0, 0, 0, 0, 0, 0, 1],
            parent_id: vec![0, 0, 0, 0, 0, 0, 0, 1],
            kind: zp::Kind::Consumer as i32,
            name: "consume".into(),
            timestamp: 1_600_000_000_000_000,
            duration: 3,
            local_endpoint: Some(zp::Endpoint {
                service_name: "worker".into(),
                ipv6: vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                ..Default::default()
            }),
            remote_endpoint: Some(zp::Endpoint {
                service_name: "kafka".into(),
                ipv4: vec![10, 1, 2, 3],
                port: 9092,
                ..Default::default()
            }),
            annotations: vec![zp::Annotation {
                timestamp: 1_600_000_000_000_002,
                value: "ack".into(),
            }],
            tags: BTreeMap::from([("topic".into(), "orders".into())]),
            debug: true,
            shared: true,
        }],
    };
    let a = post(
        r.addr(),
        "/api/v2/spans",
        "application/x-protobuf",
        Some("gzip"),
        gzip(&list.encode_to_vec()),
    )
    .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    let rs = r.resource_spans();
    assert_eq!(
        attrs(&rs[0].resource.as_ref().unwrap().attributes),
        BTreeMap::from([("service.name".into(), s("worker"))])
    );
    let span = only_span(&rs);
    assert_eq!(span.trace_id, unhex("00000000000000000000000000000009"));
    assert_eq!(
        span.parent_span_id,
        Vec::<u8>::new(),
        "a parent equal to the span id is dropped"
    );
    assert_eq!(span.kind, 5);
    assert_eq!(span.start_time_unix_nano, 1_600_000_000_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_600_000_000_000_003_000);
    assert_eq!(span.events[0].name, "ack");
    assert_eq!(
        attrs(&span.attributes),
        BTreeMap::from([
            ("net.host.ip".into(), s("fe80::1")),
            ("net.peer.ip".into(), s("10.1.2.3")),
            ("net.peer.port".into(), V::IntValue(9092)),
            ("peer.service".into(), s("kafka")),
            ("topic".into(), s("orders")),
        ])
    );
}

#[tokio::test]
async fn v1_json_kind_endpoint_status_and_events() {
    let r = start(serde_json::json!({})).await;
    let ep = serde_json::json!({"serviceName": "frontend", "ipv4": "10.0.0.5", "port": 8080});
    let body = serde_json::json!([
        {"traceId": "0000000000000001", "id": "0000000000000002", "parentId": "0000000000000003",
         "name": "get /", "timestamp": 1_500_000_000_000_000u64, "duration": 2000,
         "annotations": [
            {"timestamp": 1_500_000_000_000_000u64, "value": "sr", "endpoint": ep},
            {"timestamp": 1_500_000_000_000_500u64, "value": "cache miss", "endpoint": ep},
            {"timestamp": 1_500_000_000_002_000u64, "value": "ss", "endpoint": ep}],
         "binaryAnnotations": [
            {"key": "http.status_code", "value": "503", "endpoint": ep},
            {"key": "lc", "value": "nginx"}]},
        {"traceId": "0000000000000001", "id": "0000000000000004", "name": "bare",
         "binaryAnnotations": [{"key": "lc", "value": "cron"}, {"key": "error", "value": "boom"}]}
    ]);
    let a = post(
        r.addr(),
        "/api/v1/spans",
        "application/json",
        None,
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    let rs = r.resource_spans();
    assert_eq!(rs.len(), 2);
    assert_eq!(
        attrs(&rs[0].resource.as_ref().unwrap().attributes),
        BTreeMap::from([
            ("ipv4".into(), s("10.0.0.5")),
            ("port".into(), s("8080")),
            ("service.name".into(), s("frontend")),
        ])
    );
    let get = only_span(&rs[..1]);
    assert_eq!(get.kind, 2, "SERVER from sr");
    assert_eq!(get.parent_span_id, unhex("0000000000000003"));
    assert_eq!(get.start_time_unix_nano, 1_500_000_000_000_000_000);
    assert_eq!(get.end_time_unix_nano, 1_500_000_000_002_000_000);
    assert_eq!(get.events.len(), 1);
    assert_eq!(get.events[0].name, "cache miss");
    assert_eq!(get.status.clone().unwrap().code, 2, "HTTP 503 is an error");
    assert_eq!(
        attrs(&get.attributes),
        BTreeMap::from([
            ("component".into(), s("nginx")),
            ("http.status_code".into(), s("503"))
        ])
    );
    // No endpoint: the local component names the service; no time: stamped now and marked.
    assert_eq!(
        attrs(&rs[1].resource.as_ref().unwrap().attributes),
        BTreeMap::from([("service.name".into(), s("cron"))])
    );
    let bare = only_span(&rs[1..]);
    assert_eq!(bare.status.clone().unwrap().code, 2);
    assert!(bare.start_time_unix_nano > 1_700_000_000_000_000_000);
    assert_eq!(
        attrs(&bare.attributes),
        BTreeMap::from([
            ("component".into(), s("cron")),
            (
                "otel.zipkin.absentField.startTime".into(),
                V::BoolValue(true)
            ),
        ])
    );
}

#[tokio::test]
async fn hostile_bodies_get_clear_errors_and_nothing_is_delivered() {
    let r = start(serde_json::json!({"max_request_body_size": 4096})).await;
    let addr = r.addr();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("/api/v2/spans", "application/json", b"[{not json".to_vec(), 400,
         "invalid Zipkin v2 JSON: key must be a string at line 1 column 3 (the body must be an array of spans)"),
        ("/api/v2/spans", "application/json", br#"{"spans":[]}"#.to_vec(), 400,
         "invalid Zipkin v2 JSON: invalid type: map, expected a sequence at line 1 column 0 (the body must be an array of spans)"),
        ("/api/v2/spans", "application/json", br#"[{"traceId":"xyz","id":"1"}]"#.to_vec(), 400,
         "invalid Zipkin v2 JSON: span 0: traceId \"xyz\" is not hex"),
        // A multi-byte character where the 64-bit halves split (it panicked the decoder).
        ("/api/v2/spans", "application/json", "[{\"traceId\":\"4d1e0\u{41c}\u{3dd}b9010db861385\",\"id\":\"1\"}]".as_bytes().to_vec(), 400,
         "invalid Zipkin v2 JSON: span 0: traceId \"4d1e0\u{41c}\u{3dd}b9010db861385\" is not hex"),
        // A sign is not a hex digit (u64::from_str_radix would take it).
        ("/api/v2/spans", "application/json", br#"[{"traceId":"1","id":"+1"}]"#.to_vec(), 400,
         "invalid Zipkin v2 JSON: span 0: id \"+1\" must be 1 to 16 hex digits"),
        ("/api/v2/spans", "application/json", br#"[{"traceId":"1","id":"1"},{"traceId":"1","id":"0"}]"#.to_vec(), 400,
         "invalid Zipkin v2 JSON: span 1: id is zero (a valid id is required)"),
        ("/api/v2/spans", "application/json", br#"[{"traceId":"1","id":"1","tags":{"n":1}}]"#.to_vec(), 400,
         "invalid Zipkin v2 JSON: span 0: tags.n: 1 is not a string"),
        ("/api/v2/spans", "application/json", br#"[{"traceId":"1","id":"1","localEndpoint":{"ipv4":"300.1.1.1"}}]"#.to_vec(), 400,
         "invalid Zipkin v2 JSON: span 0: localEndpoint: \"300.1.1.1\" is not an IP address"),
        ("/api/v2/spans", "application/json", br#"[{"traceId":"1","id":"1","annotations":[{"timestamp":1,"value":"e|{bad|0"}]}]"#.to_vec(), 400,
         "invalid Zipkin v2 span: span 0 (id 0000000000000001): annotation 0: attributes are not a JSON object: key must be a string at line 1 column 2"),
        ("/api/v2/spans", "application/x-protobuf", vec![0x0a, 0x05, 0x0a, 0x03, 1, 2, 3], 400,
         "invalid Zipkin v2 protobuf: span 0: trace_id has 3 bytes (8 or 16 expected)"),
        ("/api/v2/spans", "application/x-protobuf", vec![0x0a, 0xff, 0xff], 400,
         "invalid Zipkin v2 protobuf (zipkin.proto3.ListOfSpans): failed to decode Protobuf message: ListOfSpans.spans: invalid varint"),
        ("/api/v1/spans", "application/json", br#"[{"traceId":"12","id":"0000000000000001"}]"#.to_vec(), 400,
         "invalid Zipkin v1 JSON: span 0: traceId \"12\" must be 16 or 32 hex digits"),
        ("/api/v1/spans", "application/x-thrift", vec![1, 2, 3], 415,
         "415 Zipkin v1 Thrift is not supported by Weir; send v1 JSON or v2 JSON/protobuf"),
        ("/api/v2/spans", "application/json", vec![b' '; 5000], 413,
         "request body is larger than max_request_body_size (4096 bytes)"),
    ];
    for (path, ct, body, status, message) in cases {
        let a = post(addr, path, ct, None, body).await;
        assert_eq!(a.status, status, "{path} {ct}: {:?}", a.body);
        assert_eq!(String::from_utf8_lossy(&a.body).trim_end(), message);
    }
    // A gzip bomb stops at the limit.
    let bomb = gzip(&vec![b' '; 1 << 20]);
    let a = post(
        addr,
        "/api/v2/spans",
        "application/json",
        Some("gzip"),
        bomb,
    )
    .await;
    assert_eq!(a.status, 413);
    assert_eq!(
        String::from_utf8_lossy(&a.body).trim_end(),
        "decompressed request body is larger than max_request_body_size (4096 bytes)"
    );
    let a = send(addr, "GET", "/api/v2/spans", &[], vec![]).await;
    assert_eq!(a.status, 405);
    assert!(r.recorder.take().is_empty());
    // Still serving.
    let a = post(
        addr,
        "/api/v2/spans",
        "application/json",
        None,
        b"[]".to_vec(),
    )
    .await;
    assert_eq!(a.status, 202);
}

#[tokio::test]
async fn config_defaults_and_errors() {
    let cfg = ZipkinReceiverFactory
        .parse_config(&serde_json::Value::Null, "receivers.zipkin")
        .unwrap();
    let _ = cfg;
    let err = ZipkinReceiverFactory
        .parse_config(
            &serde_json::json!({"endpoint": "", "max_request_body_size": 0}),
            "receivers.zipkin",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("receivers.zipkin.endpoint: must not be empty"),
        "{err}"
    );
    assert!(
        err.contains("receivers.zipkin.max_request_body_size: must be greater than 0"),
        "{err}"
    );
    let err = ZipkinReceiverFactory
        .parse_config(
            &serde_json::json!({"parse_string_tag": true}),
            "receivers.zipkin",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("receivers.zipkin.parse_string_tag: unknown field"),
        "{err}"
    );
}
