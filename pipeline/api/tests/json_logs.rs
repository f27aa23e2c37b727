#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OTLP/JSON logs: round trips, the spec's example style, and errors with their locations.

use weir_api::fixtures::kv;
use weir_api::json::{self, JsonError, Problem};
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::common::v1::{
    any_value::Value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::resource::v1::Resource;

fn rich_logs() -> ExportLogsServiceRequest {
    let nested = Value::KvlistValue(KeyValueList {
        values: vec![
            kv("inner", Value::StringValue("x".into())),
            kv(
                "list",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::IntValue(-1)),
                        },
                        AnyValue { value: None },
                        AnyValue {
                            value: Some(Value::BoolValue(false)),
                        },
                    ],
                }),
            ),
        ],
    });
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("checkout".into()))],
                dropped_attributes_count: 2,
                entity_refs: vec![EntityRef {
                    schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
                    r#type: "service".into(),
                    id_keys: vec!["service.name".into()],
                    description_keys: vec!["service.version".into()],
                }],
            }),
            scope_logs: vec![
                ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "my.library".into(),
                        version: "1.0.0".into(),
                        attributes: vec![kv("scope.attr", Value::DoubleValue(0.5))],
                        dropped_attributes_count: 1,
                    }),
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: u64::MAX,
                            observed_time_unix_nano: 1_544_712_660_300_000_001,
                            severity_number: 17,
                            severity_text: "Error".into(),
                            body: Some(AnyValue {
                                value: Some(Value::StringValue(
                                    "quote \" backslash \\ newline \n tab \t nul \u{0} é ✓".into(),
                                )),
                            }),
                            attributes: vec![
                                kv("int.max", Value::IntValue(i64::MAX)),
                                kv("int.min", Value::IntValue(i64::MIN)),
                                kv("zero.int", Value::IntValue(0)),
                                kv("zero.double", Value::DoubleValue(0.0)),
                                kv("empty.string", Value::StringValue(String::new())),
                                kv("false", Value::BoolValue(false)),
                                kv("tiny", Value::DoubleValue(1.5e-300)),
                                kv("huge", Value::DoubleValue(-2.5e300)),
                                kv("inf", Value::DoubleValue(f64::INFINITY)),
                                kv("neg.inf", Value::DoubleValue(f64::NEG_INFINITY)),
                                kv("bytes", Value::BytesValue(vec![0, 1, 0xfe, 0xff, 0x3e])),
                                kv("empty.bytes", Value::BytesValue(Vec::new())),
                                kv("map", nested),
                                kv("strindex", Value::StringValueStrindex(7)),
                                KeyValue {
                                    key: "no.value".into(),
                                    value: None,
                                    key_strindex: 3,
                                },
                            ],
                            dropped_attributes_count: 4,
                            flags: 0x0000_0101,
                            trace_id: (1..=16).collect(),
                            span_id: vec![0xab; 8],
                            event_name: "checkout.failed".into(),
                        },
                        LogRecord::default(),
                    ],
                    schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                },
                ScopeLogs::default(),
            ],
            schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
        }],
    }
}

#[test]
fn logs_round_trip_keeps_every_field() {
    let request = rich_logs();
    let encoded = json::encode_logs(&request);
    let decoded = json::decode_logs(&encoded).unwrap();
    assert_eq!(decoded, request);
    // And the encoding is stable.
    assert_eq!(json::encode_logs(&decoded), encoded);
}

#[test]
fn logs_encoding_follows_the_otlp_json_rules() {
    let request = rich_logs();
    let text = String::from_utf8(json::encode_logs(&request)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let record = &doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    // 64-bit integers as decimal strings, 32-bit ones and enums as numbers.
    assert_eq!(record["timeUnixNano"], "18446744073709551615");
    assert_eq!(record["observedTimeUnixNano"], "1544712660300000001");
    assert_eq!(record["severityNumber"], 17);
    assert_eq!(record["flags"], 257);
    assert_eq!(record["droppedAttributesCount"], 4);
    // Ids as lower-case hex.
    assert_eq!(record["traceId"], "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(record["spanId"], "abababababababab");
    assert_eq!(record["eventName"], "checkout.failed");
    let attrs = record["attributes"].as_array().unwrap();
    assert_eq!(
        attrs[0]["value"],
        serde_json::json!({"intValue": "9223372036854775807"})
    );
    assert_eq!(
        attrs[1]["value"],
        serde_json::json!({"intValue": "-9223372036854775808"})
    );
    // Oneof members are written even when they hold a default value.
    assert_eq!(attrs[2]["value"], serde_json::json!({"intValue": "0"}));
    assert_eq!(attrs[3]["value"], serde_json::json!({"doubleValue": 0.0}));
    assert_eq!(attrs[4]["value"], serde_json::json!({"stringValue": ""}));
    assert_eq!(attrs[5]["value"], serde_json::json!({"boolValue": false}));
    assert_eq!(
        attrs[8]["value"],
        serde_json::json!({"doubleValue": "Infinity"})
    );
    assert_eq!(
        attrs[9]["value"],
        serde_json::json!({"doubleValue": "-Infinity"})
    );
    assert_eq!(
        attrs[10]["value"],
        serde_json::json!({"bytesValue": "AAH+/z4="})
    );
    assert_eq!(
        attrs[14],
        serde_json::json!({"key": "no.value", "keyStrindex": 3})
    );
    // Default-valued fields are left out: the empty record is `{}`.
    assert_eq!(
        doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1],
        serde_json::json!({})
    );
    assert_eq!(
        doc["resourceLogs"][0]["scopeLogs"][1],
        serde_json::json!({})
    );
    assert_eq!(
        doc["resourceLogs"][0]["resource"]["entityRefs"][0],
        serde_json::json!({
            "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
            "type": "service",
            "idKeys": ["service.name"],
            "descriptionKeys": ["service.version"]
        })
    );
    // No snake_case name anywhere.
    assert!(
        !text.contains("_unix_nano") && !text.contains("log_records"),
        "{text}"
    );
}

#[test]
fn empty_request_encodes_as_empty_object() {
    assert_eq!(
        json::encode_logs(&ExportLogsServiceRequest::default()),
        b"{}"
    );
    assert_eq!(
        json::decode_logs(b"{}").unwrap(),
        ExportLogsServiceRequest::default()
    );
}

/// In the style of opentelemetry-proto's examples/logs.json: upper-case hex ids, int64 as
/// strings, every AnyValue kind.
const SPEC_STYLE_LOGS: &str = r#"{
  "resourceLogs": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } }
        ]
      },
      "scopeLogs": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }
            ]
          },
          "logRecords": [
            {
              "timeUnixNano": "1544712660300000000",
              "observedTimeUnixNano": "1544712660300000000",
              "severityNumber": 10,
              "severityText": "Information",
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "body": { "stringValue": "Example log record" },
              "attributes": [
                { "key": "string.attribute", "value": { "stringValue": "some string" } },
                { "key": "boolean.attribute", "value": { "boolValue": true } },
                { "key": "int.attribute", "value": { "intValue": "10" } },
                { "key": "double.attribute", "value": { "doubleValue": 637.704 } },
                { "key": "array.attribute",
                  "value": { "arrayValue": { "values": [
                    { "stringValue": "many" }, { "stringValue": "values" } ] } } },
                { "key": "map.attribute",
                  "value": { "kvlistValue": { "values": [
                    { "key": "some.map.key", "value": { "stringValue": "some value" } } ] } } }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn decodes_the_spec_example_style() {
    let request = json::decode_logs(SPEC_STYLE_LOGS.as_bytes()).unwrap();
    let rl = &request.resource_logs[0];
    assert_eq!(
        rl.resource.as_ref().unwrap().attributes[0],
        kv("service.name", Value::StringValue("my.service".into()))
    );
    let sl = &rl.scope_logs[0];
    let scope = sl.scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("my.library", "1.0.0")
    );
    let r = &sl.log_records[0];
    assert_eq!(r.time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(r.observed_time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(r.severity_number, 10);
    assert_eq!(r.severity_text, "Information");
    assert_eq!(
        r.trace_id,
        [
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
    assert_eq!(r.span_id, [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
    assert_eq!(
        r.body,
        Some(AnyValue {
            value: Some(Value::StringValue("Example log record".into()))
        })
    );
    assert_eq!(
        r.attributes,
        vec![
            kv("string.attribute", Value::StringValue("some string".into())),
            kv("boolean.attribute", Value::BoolValue(true)),
            kv("int.attribute", Value::IntValue(10)),
            kv("double.attribute", Value::DoubleValue(637.704)),
            kv(
                "array.attribute",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::StringValue("many".into()))
                        },
                        AnyValue {
                            value: Some(Value::StringValue("values".into()))
                        },
                    ]
                })
            ),
            kv(
                "map.attribute",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("some.map.key", Value::StringValue("some value".into()))]
                })
            ),
        ]
    );
}

#[test]
fn decodes_snake_case_names_enum_names_and_numbers_for_int64() {
    let body = br#"{"resource_logs":[{"schema_url":"s","scope_logs":[{"log_records":[{
        "time_unix_nano": 1544712660300000000,
        "observed_time_unix_nano": "7",
        "severity_number": "SEVERITY_NUMBER_WARN",
        "severity_text": "W",
        "dropped_attributes_count": "3",
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "",
        "event_name": "e",
        "attributes": [{"key": "k", "value": {"int_value": -5, "double_value": null}},
                       {"key": "b", "value": {"bytes_value": "AAH-_z4"}},
                       {"key": "d", "value": {"double_value": "NaN"}}]
    }]}]}]}"#;
    let request = json::decode_logs(body).unwrap();
    assert_eq!(request.resource_logs[0].schema_url, "s");
    let r = &request.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(r.time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(r.observed_time_unix_nano, 7);
    assert_eq!(r.severity_number, 13);
    assert_eq!(r.dropped_attributes_count, 3);
    assert_eq!(r.trace_id.len(), 16);
    assert!(r.span_id.is_empty());
    assert_eq!(r.event_name, "e");
    assert_eq!(r.attributes[0], kv("k", Value::IntValue(-5)));
    // URL-safe base64 without padding is accepted too.
    assert_eq!(
        r.attributes[1],
        kv("b", Value::BytesValue(vec![0, 1, 0xfe, 0xff, 0x3e]))
    );
    match &r.attributes[2].value.as_ref().unwrap().value {
        Some(Value::DoubleValue(d)) => assert!(d.is_nan()),
        other => panic!("expected NaN, got {other:?}"),
    }
}

#[test]
fn unknown_fields_and_nulls_are_ignored() {
    let body = br#"{"resourceLogs":[{
        "resource": {"attributes": [], "futureField": {"a": [1, 2]}, "droppedAttributesCount": null},
        "instrumentationLibraryLogs": [{"bogus": true}],
        "scopeLogs": [{"scope": null, "logRecords": [{"body": {"stringValue": "x", "newKind": 1},
            "somethingNew": "yes", "traceId": null}]}]
    }], "extra": 1}"#;
    let request = json::decode_logs(body).unwrap();
    let rl = &request.resource_logs[0];
    assert_eq!(rl.resource, Some(Resource::default()));
    assert_eq!(rl.scope_logs[0].scope, None);
    let r = &rl.scope_logs[0].log_records[0];
    assert!(r.trace_id.is_empty());
    assert_eq!(
        r.body,
        Some(AnyValue {
            value: Some(Value::StringValue("x".into()))
        })
    );
}

fn error_of(body: &str) -> String {
    json::decode_logs(body.as_bytes()).unwrap_err().to_string()
}

#[test]
fn bad_hex_id_names_its_location() {
    let body =
        r#"{"resourceLogs":[{"scopeLogs":[{},{"logRecords":[{},{},{},{"traceId":"zz"}]}]}]}"#;
    assert_eq!(
        error_of(body),
        r#"resourceLogs[0].scopeLogs[1].logRecords[3].traceId: invalid hex id "zz" (expected 32 hex digits)"#
    );
    let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"5B8EFFF798038103D269B633813FC60C"}]}]}]}"#;
    assert_eq!(
        error_of(body),
        r#"resourceLogs[0].scopeLogs[0].logRecords[0].spanId: invalid hex id "5B8EFFF798038103D269B633813FC60C" (expected 16 hex digits)"#
    );
}

#[test]
fn invalid_json_is_a_syntax_error() {
    let err = json::decode_logs(b"{\"resourceLogs\": [").unwrap_err();
    assert!(matches!(err, JsonError::Syntax { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid JSON: EOF while parsing a list at line 1 column 18"
    );
    assert_eq!(err.location(), None);
    assert_eq!(
        error_of("not json"),
        "invalid JSON: expected ident at line 1 column 2"
    );
}

#[test]
fn wrong_types_name_expected_and_found() {
    assert_eq!(error_of("[]"), "request: expected an object, got an array");
    assert_eq!(
        error_of(r#"{"resourceLogs":{}}"#),
        "resourceLogs: expected an array, got an object"
    );
    assert_eq!(
        error_of(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":true}]}]}]}"#),
        "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: expected an integer (a number or a decimal string), got a boolean"
    );
    assert_eq!(
        error_of(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":5}]}]}]}"#),
        "resourceLogs[0].scopeLogs[0].logRecords[0].severityText: expected a string, got a number"
    );
    assert_eq!(
        error_of(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[null]}]}]}"#),
        "resourceLogs[0].scopeLogs[0].logRecords[0]: expected an object, got null"
    );
}

#[test]
fn bad_numbers_and_enums_are_named() {
    let err = json::decode_logs(
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"12abc"}]}]}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.location(),
        Some("resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano")
    );
    assert!(matches!(
        &err,
        JsonError::Invalid {
            problem: Problem::InvalidNumber { kind: "uint64", .. },
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        r#"resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: invalid uint64 "12abc""#
    );
    assert_eq!(
        error_of(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#),
        "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: invalid uint64 -1 (out of range)"
    );
    assert_eq!(
        error_of(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"flags":4294967296}]}]}]}"#),
        "resourceLogs[0].scopeLogs[0].logRecords[0].flags: invalid uint32 4294967296 (out of range)"
    );
    assert_eq!(
        error_of(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_LOUD"}]}]}]}"#
        ),
        r#"resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber: unknown SeverityNumber name "SEVERITY_NUMBER_LOUD""#
    );
}

#[test]
fn bad_base64_names_its_location() {
    assert_eq!(
        error_of(
            r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"a"},{"key":"b","value":{"bytesValue":"!!!"}}]}}]}"#
        ),
        r#"resourceLogs[0].resource.attributes[1].value.bytesValue: invalid base64 "!!!": Invalid symbol 33, offset 0."#
    );
}

#[test]
fn two_anyvalue_members_are_rejected() {
    assert_eq!(
        error_of(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a","intValue":"1"}}]}]}]}"#
        ),
        r#"resourceLogs[0].scopeLogs[0].logRecords[0].body.intValue: both "stringValue" and "intValue" are set, but only one of them is allowed"#
    );
}

#[test]
fn long_values_are_shortened_in_errors() {
    let long = "z".repeat(10_000);
    let body = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"spanId":"{long}"}}]}}]}}]}}"#
    );
    let message = error_of(&body);
    assert!(message.len() < 200, "{message}");
    assert!(
        message.contains(&format!("\"{}...\"", "z".repeat(64))),
        "{message}"
    );
}

/// Cross-check with an independent implementation: opentelemetry-proto's own serde support
/// (its `with-serde` feature) reads what we write and writes what we read. Infinities are left
/// out (it writes them as `null` and cannot read the `"Infinity"` that proto3 JSON
/// prescribes), and so is `stringValueStrindex` (it does not read it).
#[test]
fn agrees_with_opentelemetry_proto_serde() {
    let mut request = rich_logs();
    request.resource_logs[0].scope_logs[0].log_records[0]
        .attributes
        .retain(|kv| !kv.key.ends_with("inf") && kv.key != "strindex");
    assert_eq!(
        request.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .len(),
        12
    );
    let theirs = serde_json::to_vec(&request).unwrap();
    assert_eq!(json::decode_logs(&theirs).unwrap(), request);
    let ours = json::encode_logs(&request);
    let read_by_them: ExportLogsServiceRequest = serde_json::from_slice(&ours).unwrap();
    assert_eq!(read_by_them, request);
}

#[test]
fn quoted_values_are_escaped_in_errors() {
    // A newline or quote in a bad value must not break the one-line error (or forge a log line).
    assert_eq!(
        error_of(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"a\"b\nERROR fake"}]}]}]}"#
        ),
        r#"resourceLogs[0].scopeLogs[0].logRecords[0].traceId: invalid hex id "a\"b\nERROR fake" (expected 32 hex digits)"#
    );
    assert_eq!(
        error_of(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"flags":"1\n2"}]}]}]}"#),
        r#"resourceLogs[0].scopeLogs[0].logRecords[0].flags: invalid uint32 "1\n2""#
    );
}
