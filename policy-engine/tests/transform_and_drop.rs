//! A batch that loses records and has others changed in the same run: the changes land on
//! the records that stay, whatever resource and scope entry they sit in, and the entries
//! left empty are gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use weir_api::{Batch, Payload, Signal};
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::run::process;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

fn set(doc: &str) -> PolicySet {
    let set = PolicySet::build(parse_document(doc, "t").unwrap(), &StatsRegistry::new());
    assert!(set.entries.iter().all(|e| e.errors.is_empty()), "{set:?}");
    set
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(name: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![string("service.name", name)],
        ..Default::default()
    })
}

fn record(n: u64, severity: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: n,
        severity_text: severity.into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!("line {n}"))),
        }),
        ..Default::default()
    }
}

fn scope_logs(records: Vec<LogRecord>) -> ScopeLogs {
    ScopeLogs {
        log_records: records,
        ..Default::default()
    }
}

fn resource_logs(name: &str, scopes: Vec<ScopeLogs>) -> ResourceLogs {
    ResourceLogs {
        resource: resource(name),
        scope_logs: scopes,
        ..Default::default()
    }
}

/// Three resources: one mixed (a mixed scope, an all-DEBUG scope, an empty scope, another
/// mixed scope), one all-DEBUG, one mixed.
fn logs_request() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![
            resource_logs(
                "a",
                vec![
                    scope_logs(vec![
                        record(1, "INFO"),
                        record(2, "DEBUG"),
                        record(3, "INFO"),
                    ]),
                    scope_logs(vec![record(4, "DEBUG"), record(5, "DEBUG")]),
                    scope_logs(vec![]),
                    scope_logs(vec![record(6, "DEBUG"), record(7, "INFO")]),
                ],
            ),
            resource_logs("b", vec![scope_logs(vec![record(8, "DEBUG")])]),
            resource_logs(
                "c",
                vec![scope_logs(vec![record(9, "INFO"), record(10, "DEBUG")])],
            ),
        ],
    }
}

#[test]
fn logs_kept_records_are_transformed_and_dropped_ones_pruned_with_their_entries() {
    let bytes = Bytes::from(logs_request().encode_to_vec());
    let mut batch = Batch::decode(Signal::Logs, bytes).unwrap();
    let policies = set(concat!(
        "policies:\n",
        "  - {id: no-debug, name: x, log: {match: [{log_field: severity_text, exact: DEBUG}], keep: none}}\n",
        "  - {id: tag, name: y, log: {match: [{log_field: severity_text, exact: INFO}], keep: all, transform: {add: [{log_attribute: seen, value: 'yes'}]}}}\n",
    ));
    let out = process(&policies, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (6, true));

    let tagged = |n: u64| LogRecord {
        attributes: vec![string("seen", "yes")],
        ..record(n, "INFO")
    };
    let expected = ExportLogsServiceRequest {
        resource_logs: vec![
            resource_logs(
                "a",
                vec![
                    scope_logs(vec![tagged(1), tagged(3)]),
                    scope_logs(vec![tagged(7)]),
                ],
            ),
            resource_logs("c", vec![scope_logs(vec![tagged(9)])]),
        ],
    };
    assert_eq!(batch.payload(), &Payload::Logs(expected.clone()));
    assert!(
        batch.original_bytes().is_none(),
        "changed records are encoded again"
    );
    assert_eq!(
        ExportLogsServiceRequest::decode(batch.to_protobuf()).unwrap(),
        expected
    );
}

/// A span whose trace id carries the given randomness in its last 7 bytes (all of one byte).
fn span(n: u8, name: &str, randomness: u8) -> Span {
    let mut trace_id = vec![n; 9];
    trace_id.extend_from_slice(&[randomness; 7]);
    Span {
        trace_id,
        span_id: vec![n; 8],
        name: name.into(),
        ..Default::default()
    }
}

fn scope_spans(spans: Vec<Span>) -> ScopeSpans {
    ScopeSpans {
        spans,
        ..Default::default()
    }
}

fn resource_spans(name: &str, scopes: Vec<ScopeSpans>) -> ResourceSpans {
    ResourceSpans {
        resource: resource(name),
        scope_spans: scopes,
        ..Default::default()
    }
}

/// `op` spans with randomness 0xff are kept at 50% and those with 0x00 dropped; `other`
/// spans match no policy.
fn traces_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                "a",
                vec![
                    scope_spans(vec![
                        span(1, "op", 0xff),
                        span(2, "op", 0x00),
                        span(3, "other", 0x00),
                    ]),
                    scope_spans(vec![span(4, "op", 0x00)]),
                    scope_spans(vec![]),
                    scope_spans(vec![span(5, "op", 0x00), span(6, "op", 0xff)]),
                ],
            ),
            resource_spans("b", vec![scope_spans(vec![span(7, "op", 0x00)])]),
            resource_spans("c", vec![scope_spans(vec![span(8, "op", 0xff)])]),
        ],
    }
}

#[test]
fn traces_kept_spans_get_their_tracestate_and_dropped_ones_are_pruned_with_their_entries() {
    let bytes = Bytes::from(traces_request().encode_to_vec());
    let mut batch = Batch::decode(Signal::Traces, bytes).unwrap();
    let policies = set(
        "policies:\n  - {id: half, name: x, trace: {match: [{trace_field: name, exact: op}], keep: {percentage: 50}}}\n",
    );
    let out = process(&policies, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (4, true));

    let sampled = |n: u8| Span {
        trace_state: "ot=th:8".into(),
        ..span(n, "op", 0xff)
    };
    let expected = ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                "a",
                vec![
                    scope_spans(vec![sampled(1), span(3, "other", 0x00)]),
                    scope_spans(vec![sampled(6)]),
                ],
            ),
            resource_spans("c", vec![scope_spans(vec![sampled(8)])]),
        ],
    };
    assert_eq!(batch.payload(), &Payload::Traces(expected.clone()));
    assert!(
        batch.original_bytes().is_none(),
        "rewritten spans are encoded again"
    );
    assert_eq!(
        ExportTraceServiceRequest::decode(batch.to_protobuf()).unwrap(),
        expected
    );
}

#[test]
fn a_transform_without_drops_keeps_empty_entries_as_they_came() {
    // Nothing is dropped: the batch is changed in place and its entries are left as they
    // are, the empty scope entry included.
    let bytes = Bytes::from(logs_request().encode_to_vec());
    let mut batch = Batch::decode(Signal::Logs, bytes).unwrap();
    let policies = set(
        "policies:\n  - {id: tag, name: y, log: {match: [{log_field: severity_text, exact: INFO}], keep: all, transform: {add: [{log_attribute: seen, value: 'yes'}]}}}\n",
    );
    let out = process(&policies, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (0, true));
    let Payload::Logs(r) = batch.payload() else {
        panic!("logs")
    };
    assert_eq!(r.resource_logs.len(), 3);
    assert_eq!(r.resource_logs[0].scope_logs.len(), 4);
    assert!(r.resource_logs[0].scope_logs[2].log_records.is_empty());
    assert_eq!(batch.item_count(), 10);
}
