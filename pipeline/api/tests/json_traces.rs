#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OTLP/JSON traces: round trips, the spec's example style, enum names, errors.

use weir_api::fixtures::kv;
use weir_api::json;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value::Value, InstrumentationScope};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::span::{Event, Link};
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use weir_api::{Payload, Signal};

fn rich_traces() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("frontend".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tracer".into(),
                    ..Default::default()
                }),
                spans: vec![
                    Span {
                        trace_id: vec![0x5b; 16],
                        span_id: vec![0xee; 8],
                        trace_state: "vendor=abc".into(),
                        parent_span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
                        flags: 0x301,
                        name: "GET /cart".into(),
                        kind: 2,
                        start_time_unix_nano: 1_544_712_660_000_000_000,
                        end_time_unix_nano: 1_544_712_661_000_000_000,
                        attributes: vec![kv("http.status_code", Value::IntValue(500))],
                        dropped_attributes_count: 1,
                        events: vec![
                            Event {
                                time_unix_nano: 1_544_712_660_500_000_000,
                                name: "exception".into(),
                                attributes: vec![kv(
                                    "exception.message",
                                    Value::StringValue("boom".into()),
                                )],
                                dropped_attributes_count: 2,
                            },
                            Event::default(),
                        ],
                        dropped_events_count: 3,
                        links: vec![Link {
                            trace_id: vec![0xaa; 16],
                            span_id: vec![0xbb; 8],
                            trace_state: "k=v".into(),
                            attributes: vec![kv("link.kind", Value::StringValue("follows".into()))],
                            dropped_attributes_count: 4,
                            flags: 1,
                        }],
                        dropped_links_count: 5,
                        status: Some(Status {
                            message: "internal error".into(),
                            code: 2,
                        }),
                    },
                    Span {
                        status: Some(Status::default()),
                        ..Default::default()
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn traces_round_trip_keeps_every_field() {
    let request = rich_traces();
    let encoded = json::encode_traces(&request);
    assert_eq!(json::decode_traces(&encoded).unwrap(), request);
    // Through the signal-generic API too.
    let payload = Payload::Traces(request);
    let encoded = json::encode(&payload);
    assert_eq!(json::decode(Signal::Traces, &encoded).unwrap(), payload);
}

#[test]
fn traces_encoding_follows_the_otlp_json_rules() {
    let doc: serde_json::Value =
        serde_json::from_slice(&json::encode_traces(&rich_traces())).unwrap();
    let spans = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"];
    assert_eq!(
        spans[0],
        serde_json::json!({
            "traceId": "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b",
            "spanId": "eeeeeeeeeeeeeeee",
            "traceState": "vendor=abc",
            "parentSpanId": "0102030405060708",
            "flags": 769,
            "name": "GET /cart",
            "kind": 2,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "attributes": [{"key": "http.status_code", "value": {"intValue": "500"}}],
            "droppedAttributesCount": 1,
            "events": [
                {
                    "timeUnixNano": "1544712660500000000",
                    "name": "exception",
                    "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}],
                    "droppedAttributesCount": 2
                },
                {}
            ],
            "droppedEventsCount": 3,
            "links": [{
                "traceId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "spanId": "bbbbbbbbbbbbbbbb",
                "traceState": "k=v",
                "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}],
                "droppedAttributesCount": 4,
                "flags": 1
            }],
            "droppedLinksCount": 5,
            "status": {"message": "internal error", "code": 2}
        })
    );
    // A set but empty status stays an (empty) object.
    assert_eq!(spans[1], serde_json::json!({"status": {}}));
}

/// In the style of opentelemetry-proto's examples/trace.json.
const SPEC_STYLE_TRACE: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [ { "key": "service.name", "value": { "stringValue": "my.service" } } ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [ { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } } ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "1544712661000000000",
              "kind": 2,
              "attributes": [ { "key": "my.span.attr", "value": { "stringValue": "some value" } } ]
            }
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn decodes_the_spec_example_style() {
    let request = json::decode_traces(SPEC_STYLE_TRACE.as_bytes()).unwrap();
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        span.trace_id,
        [
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
    assert_eq!(
        span.span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
    assert_eq!(
        span.parent_span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73]
    );
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.kind, 2);
    assert_eq!(
        span.attributes,
        vec![kv("my.span.attr", Value::StringValue("some value".into()))]
    );
    // Re-encoding gives the canonical form: lower-case hex ids.
    let text = String::from_utf8(json::encode_traces(&request)).unwrap();
    assert!(
        text.contains(r#""traceId":"5b8efff798038103d269b633813fc60c""#),
        "{text}"
    );
}

#[test]
fn decodes_enum_names_and_snake_case() {
    let body = br#"{"resource_spans":[{"scope_spans":[{"spans":[
        {"kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_OK"},
         "trace_id":"", "parent_span_id":"eee19b7ec3c1b173",
         "start_time_unix_nano":"1","end_time_unix_nano":2,
         "dropped_events_count":1,"dropped_links_count":"2","trace_state":"a=b",
         "links":[{"trace_id":"5B8EFFF798038103D269B633813FC60C","span_id":"EEE19B7EC3C1B174",
                   "dropped_attributes_count":3,"flags":256}],
         "events":[{"time_unix_nano":"5","name":"e","dropped_attributes_count":1}]},
        {"kind":"SPAN_KIND_CONSUMER","status":{"code":2,"message":"m"}},
        {"kind":3,"status":{"code":"STATUS_CODE_UNSET"}}
    ]}]}]}"#;
    let request = json::decode_traces(body).unwrap();
    let spans = &request.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans[0].kind, 2);
    assert_eq!(spans[0].status.as_ref().unwrap().code, 1);
    assert!(spans[0].trace_id.is_empty());
    assert_eq!(spans[0].parent_span_id.len(), 8);
    assert_eq!(
        (spans[0].start_time_unix_nano, spans[0].end_time_unix_nano),
        (1, 2)
    );
    assert_eq!(
        (spans[0].dropped_events_count, spans[0].dropped_links_count),
        (1, 2)
    );
    assert_eq!(spans[0].trace_state, "a=b");
    assert_eq!(spans[0].links[0].trace_id.len(), 16);
    assert_eq!(spans[0].links[0].span_id.len(), 8);
    assert_eq!(spans[0].links[0].dropped_attributes_count, 3);
    assert_eq!(spans[0].links[0].flags, 256);
    assert_eq!(
        spans[0].events[0],
        Event {
            time_unix_nano: 5,
            name: "e".into(),
            attributes: vec![],
            dropped_attributes_count: 1
        }
    );
    assert_eq!(spans[1].kind, 5);
    assert_eq!(
        spans[1].status,
        Some(Status {
            message: "m".into(),
            code: 2
        })
    );
    assert_eq!(spans[2].kind, 3);
    assert_eq!(spans[2].status, Some(Status::default()));
}

#[test]
fn errors_name_their_location() {
    let err = |body: &str| {
        json::decode_traces(body.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVERLESS"}]}]}]}"#),
        r#"resourceSpans[0].scopeSpans[0].spans[0].kind: unknown SpanKind name "SPAN_KIND_SERVERLESS""#
    );
    assert_eq!(
        err(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"links":[{},{"spanId":"xyz"}]}]}]}]}"#),
        r#"resourceSpans[0].scopeSpans[0].spans[0].links[1].spanId: invalid hex id "xyz" (expected 16 hex digits)"#
    );
    assert_eq!(
        err(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"parentSpanId":12}]}]}]}"#),
        "resourceSpans[0].scopeSpans[0].spans[0].parentSpanId: expected a hex string, got a number"
    );
    assert_eq!(
        err(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":{"code":true}}]}]}]}"#),
        "resourceSpans[0].scopeSpans[0].spans[0].status.code: expected an enum (an integer or a value name), got a boolean"
    );
    // A request of another signal is not an error: its fields are unknown here, so ignored.
    assert_eq!(
        json::decode_traces(br#"{"resourceLogs":[{}]}"#).unwrap(),
        ExportTraceServiceRequest::default()
    );
}

/// Cross-check with an independent implementation: opentelemetry-proto's own serde support
/// (its `with-serde` feature) reads what we write and writes what we read.
#[test]
fn agrees_with_opentelemetry_proto_serde() {
    let request = rich_traces();
    let theirs = serde_json::to_vec(&request).unwrap();
    assert_eq!(json::decode_traces(&theirs).unwrap(), request);
    let ours = json::encode_traces(&request);
    let read_by_them: ExportTraceServiceRequest = serde_json::from_slice(&ours).unwrap();
    assert_eq!(read_by_them, request);
}
