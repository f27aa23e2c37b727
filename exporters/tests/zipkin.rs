//! `zipkin` exporter round trip: OTLP in -> Weir's zipkin exporter (v2 JSON and protobuf) ->
//! Weir's own zipkin receiver on 127.0.0.1 -> OTLP out, compared field by field; plus the
//! exporter's config and its answers to a failing server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{build_exporter, free_port, wait_until};
use weir_api::fixtures::kv;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value::Value as V, InstrumentationScope, KeyValue};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use weir_api::{
    Batch, BuildContext, Component, ComponentId, ConsumeError, Consumer, Payload, SignalConsumers,
};
use weir_exporters::zipkin::{encode_json, to_zipkin};
use weir_receivers::zipkin::{ZipkinReceiver, ZipkinReceiverFactory};

#[derive(Default)]
struct Sink(Mutex<Vec<Batch>>);

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

fn s(v: &str) -> V {
    V::StringValue(v.into())
}

const T0: u64 = 1_700_000_000_123_456_000;

/// Spans of every kind and status, with attributes of each scalar type, events with and
/// without attributes, links and a trace state. Times are whole microseconds (Zipkin's unit).
fn input() -> ExportTraceServiceRequest {
    let kinds = [
        span::SpanKind::Unspecified,
        span::SpanKind::Internal,
        span::SpanKind::Server,
        span::SpanKind::Client,
        span::SpanKind::Producer,
        span::SpanKind::Consumer,
    ];
    let spans = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let i8 = i as u8;
            Span {
                trace_id: vec![0x10 + i8; 16],
                span_id: vec![0x20 + i8; 8],
                parent_span_id: if i == 0 { vec![] } else { vec![0x20; 8] },
                trace_state: if i == 2 {
                    "vendor=a".into()
                } else {
                    String::new()
                },
                name: format!("op-{i}"),
                kind: *kind as i32,
                start_time_unix_nano: T0 + i as u64 * 1000,
                end_time_unix_nano: T0 + i as u64 * 1000 + 250_000_000,
                attributes: vec![
                    kv("http.route", s("/pay")),
                    kv("retries", V::IntValue(i as i64)),
                    kv("cached", V::BoolValue(i % 2 == 0)),
                    kv("ratio", V::DoubleValue(0.25 + i as f64)),
                ],
                events: vec![
                    span::Event {
                        time_unix_nano: T0 + 5000,
                        name: "plain".into(),
                        ..Default::default()
                    },
                    span::Event {
                        time_unix_nano: T0 + 7000,
                        name: "with attrs".into(),
                        attributes: vec![kv("n", V::IntValue(3)), kv("who", s("a|b"))],
                        dropped_attributes_count: 2,
                    },
                ],
                links: if i == 3 {
                    vec![span::Link {
                        trace_id: vec![0xaa; 16],
                        span_id: vec![0xbb; 8],
                        trace_state: "l=1".into(),
                        attributes: vec![kv("link.kind", s("follows"))],
                        dropped_attributes_count: 1,
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                status: match i {
                    2 => Some(Status {
                        code: 1,
                        message: String::new(),
                    }),
                    3 => Some(Status {
                        code: 2,
                        message: "upstream timed out".into(),
                    }),
                    _ => None,
                },
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("checkout")),
                    kv("host.name", s("node-7")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "shop.tracer".into(),
                    version: "2.1".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn attr_map(kvs: &[KeyValue]) -> BTreeMap<String, V> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap()))
        .collect()
}

async fn receiver(sink: Arc<Sink>) -> Arc<ZipkinReceiver> {
    let cfg = ZipkinReceiverFactory
        .parse_config(
            &serde_json::json!({"endpoint": "127.0.0.1:0", "parse_string_tags": true}),
            "receivers.zipkin",
        )
        .unwrap();
    let c: Arc<dyn Consumer> = sink;
    let ctx = BuildContext::for_component(ComponentId::parse("zipkin").unwrap());
    let r = cfg.build_receiver(
        &ctx,
        SignalConsumers {
            traces: Some(c),
            ..Default::default()
        },
    );
    r.start().await.unwrap();
    r
}

async fn round_trip(format: &str) {
    let sink = Arc::new(Sink::default());
    let r = receiver(sink.clone()).await;
    let (exporter, _) = build_exporter(
        "zipkin",
        serde_json::json!({
            "endpoint": format!("http://{}/api/v2/spans", r.address().unwrap()),
            "format": format,
        }),
    );
    exporter.start().await.unwrap();
    let sent = input();
    exporter
        .consume(Batch::new(Payload::Traces(sent.clone())))
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !sink
            .0
            .lock()
            .unwrap()
            .is_empty())
        .await,
        "{format}: nothing arrived"
    );
    exporter.shutdown().await;
    r.shutdown().await;
    let batches = std::mem::take(&mut *sink.0.lock().unwrap());
    assert_eq!(batches.len(), 1, "{format}");
    let Payload::Traces(got) = batches[0].payload().clone() else {
        panic!("not traces")
    };
    assert_eq!(got.resource_spans.len(), 1, "{format}");
    let rs = &got.resource_spans[0];
    assert_eq!(
        attr_map(&rs.resource.as_ref().unwrap().attributes),
        attr_map(&sent.resource_spans[0].resource.as_ref().unwrap().attributes),
        "{format}: resource"
    );
    assert_eq!(rs.scope_spans.len(), 1);
    assert_eq!(
        rs.scope_spans[0].scope, sent.resource_spans[0].scope_spans[0].scope,
        "{format}: scope"
    );
    let want = &sent.resource_spans[0].scope_spans[0].spans;
    let have = &rs.scope_spans[0].spans;
    assert_eq!(have.len(), want.len(), "{format}: span count");
    for (w, h) in want.iter().zip(have) {
        let ctx = format!("{format} {}", w.name);
        assert_eq!(h.trace_id, w.trace_id, "{ctx}: trace id");
        assert_eq!(h.span_id, w.span_id, "{ctx}: span id");
        assert_eq!(h.parent_span_id, w.parent_span_id, "{ctx}: parent");
        assert_eq!(h.trace_state, w.trace_state, "{ctx}: trace state");
        assert_eq!(h.name, w.name, "{ctx}: name");
        assert_eq!(h.kind, w.kind, "{ctx}: kind");
        assert_eq!(
            h.start_time_unix_nano, w.start_time_unix_nano,
            "{ctx}: start"
        );
        assert_eq!(h.end_time_unix_nano, w.end_time_unix_nano, "{ctx}: end");
        assert_eq!(
            attr_map(&h.attributes),
            attr_map(&w.attributes),
            "{ctx}: attributes"
        );
        assert_eq!(h.status, w.status, "{ctx}: status");
        assert_eq!(h.events.len(), w.events.len(), "{ctx}: events");
        for (we, he) in w.events.iter().zip(&h.events) {
            assert_eq!(he.name, we.name, "{ctx}: event name");
            assert_eq!(he.time_unix_nano, we.time_unix_nano, "{ctx}: event time");
            assert_eq!(
                attr_map(&he.attributes),
                attr_map(&we.attributes),
                "{ctx}: event attrs"
            );
            assert_eq!(
                he.dropped_attributes_count, we.dropped_attributes_count,
                "{ctx}"
            );
        }
        assert_eq!(h.links.len(), w.links.len(), "{ctx}: links");
        for (wl, hl) in w.links.iter().zip(&h.links) {
            assert_eq!(
                (&hl.trace_id, &hl.span_id, &hl.trace_state),
                (&wl.trace_id, &wl.span_id, &wl.trace_state),
                "{ctx}: link"
            );
            assert_eq!(
                attr_map(&hl.attributes),
                attr_map(&wl.attributes),
                "{ctx}: link attrs"
            );
            assert_eq!(hl.dropped_attributes_count, wl.dropped_attributes_count);
        }
    }
}

#[tokio::test]
async fn round_trip_through_weirs_zipkin_receiver_json() {
    round_trip("json").await;
}

#[tokio::test]
async fn round_trip_through_weirs_zipkin_receiver_proto() {
    round_trip("proto").await;
}

#[test]
fn json_encoding_follows_the_collectors_rules() {
    let mut req = input();
    // A resource named by faas.name, and a span that has net.peer.* and peer.service.
    req.resource_spans[0].resource = Some(Resource {
        attributes: vec![kv("faas.name", s("resize")), kv("cloud.region", s("eu-1"))],
        ..Default::default()
    });
    let span = &mut req.resource_spans[0].scope_spans[0].spans[3];
    span.attributes.push(kv("peer.service", s("payments")));
    span.attributes.push(kv("net.peer.ip", s("10.9.8.7")));
    span.attributes.push(kv("net.peer.port", V::IntValue(443)));
    span.start_time_unix_nano = T0 + 499;
    span.end_time_unix_nano = T0 + 499 + 1_500;
    let spans = to_zipkin(&Payload::Traces(req), "unused").unwrap();
    let json: serde_json::Value = serde_json::from_slice(&encode_json(&spans)).unwrap();
    let client = &json[3];
    assert_eq!(
        client,
        &serde_json::json!({
            "traceId": "13131313131313131313131313131313",
            "id": "2323232323232323",
            "parentId": "2020202020202020",
            "name": "op-3",
            "kind": "CLIENT",
            "timestamp": 1_700_000_000_123_456u64,
            "duration": 2,
            "localEndpoint": {"serviceName": "resize"},
            "remoteEndpoint": {"serviceName": "payments", "ipv4": "10.9.8.7", "port": 443},
            "annotations": [
                {"timestamp": 1_700_000_000_123_461u64, "value": "plain"},
                {"timestamp": 1_700_000_000_123_463u64, "value": "with attrs|{\"n\":3,\"who\":\"a|b\"}|2"}
            ],
            "tags": {
                "cached": "false",
                "cloud.region": "eu-1",
                "error": "true",
                "http.route": "/pay",
                "otel.library.name": "shop.tracer",
                "otel.library.version": "2.1",
                "otel.status_code": "Error",
                "otel.status_description": "upstream timed out",
                "otlp.link.0": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|bbbbbbbbbbbbbbbb|l=1|{\"link.kind\":\"follows\"}|1",
                "otlp.service.name.source": "faas.name",
                "ratio": "3.25",
                "retries": "3"
            }
        })
    );
    assert_eq!(json[1]["tags"]["span.kind"], "internal");
    assert!(json[1].get("kind").is_none());
    assert_eq!(json[2]["tags"]["w3c.tracestate"], "vendor=a");
    assert_eq!(json[2]["tags"]["otel.status_code"], "Ok");
    assert!(json[0]["tags"].get("otel.status_code").is_none());
    // No service name at all: default_service_name.
    let mut bare = input();
    bare.resource_spans[0].resource = None;
    let spans = to_zipkin(&Payload::Traces(bare), "<missing service name>").unwrap();
    assert_eq!(
        spans[0].local_endpoint.service_name,
        "<missing service name>"
    );
    // An empty span id fails the batch, as in the Collector.
    let mut broken = input();
    broken.resource_spans[0].scope_spans[0].spans[1].span_id = vec![];
    assert_eq!(
        to_zipkin(&Payload::Traces(broken), "x").unwrap_err(),
        "SpanID is invalid"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_max_elapsed_time_then_reported() {
    // Nobody listens: retried (20 ms apart) until max_elapsed_time, then reported.
    let port = free_port();
    let (exporter, telemetry) = build_exporter(
        "zipkin",
        serde_json::json!({
            "endpoint": format!("http://127.0.0.1:{port}/api/v2/spans"),
            "retry_on_failure": {"initial_interval": "20ms", "max_interval": "20ms", "max_elapsed_time": "300ms"},
            "sending_queue": {"enabled": false},
        }),
    );
    exporter.start().await.unwrap();
    let err = exporter
        .consume(Batch::new(Payload::Traces(input())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot send"), "{err}");
    exporter.shutdown().await;
    let _ = telemetry;
}

#[test]
fn config_requires_an_endpoint_and_knows_the_formats() {
    let mut registry = weir_api::Registry::new();
    weir_exporters::register(&mut registry);
    let f = registry.exporters.get("zipkin").unwrap();
    let err = f
        .parse(&serde_json::json!({}), "exporters.zipkin")
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "exporters.zipkin.endpoint: is required");
    let err = f
        .parse(
            &serde_json::json!({"endpoint": "http://h:9411/api/v2/spans", "format": "thrift"}),
            "exporters.zipkin",
        )
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with(
            "exporters.zipkin.format: unknown variant `thrift`, expected `json` or `proto`"
        ),
        "{err}"
    );
    assert!(f
        .parse(
            &serde_json::json!({"endpoint": "https://h:9411/api/v2/spans", "format": "proto", "default_service_name": "svc", "timeout": "2s"}),
            "exporters.zipkin"
        )
        .is_ok());
}
