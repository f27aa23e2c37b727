//! Unit tests of the batches: verdicts, replacements and views of logs, spans and metrics.

use super::*;
use crate::otlp::common::v1::{any_value, AnyValue};
use crate::otlp::logs::v1::LogRecord;
use crate::otlp::logs::v1::{ResourceLogs, ScopeLogs};

fn record(body: &str, severity: i32) -> LogRecord {
    LogRecord {
        severity_number: severity,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    }
}

/// Two resources with two and one records.
fn bytes() -> Vec<u8> {
    let scope = |records: Vec<LogRecord>| ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            scope(vec![record("a", 5), record("b", 9)]),
            scope(vec![record("c", 13)]),
        ],
    }
    .encode_to_vec()
}

fn bodies(request: &ExportLogsServiceRequest) -> Vec<String> {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            _ => String::new(),
        })
        .collect()
}

#[test]
fn untouched_batch_answers_unchanged() {
    let b = bytes();
    let mut logs = Logs::from_protobuf(&b);
    assert_eq!(logs.len().unwrap(), 3);
    logs.retain_view(|_| true).unwrap();
    assert_eq!(logs.finish(), Answer::Unchanged);
}

#[test]
fn view_decisions_become_verdicts_in_canonical_order() {
    let b = bytes();
    let mut logs = Logs::from_protobuf(&b);
    let mut seen = Vec::new();
    logs.retain_view(|r| {
        seen.push((r.body_str().unwrap_or(""), r.severity_number()));
        r.severity_number() >= 9
    })
    .unwrap();
    assert_eq!(seen, [("a", 5), ("b", 9), ("c", 13)]);
    // A second rule combines with the first.
    logs.retain(|r| r.severity_number != 13).unwrap();
    assert_eq!(logs.finish(), Answer::Verdicts(vec![0, 1, 0]));
}

#[test]
fn edits_answer_a_replacement_without_the_dropped_records() {
    let b = bytes();
    let mut logs = Logs::from_protobuf(&b);
    logs.retain_view(|r| r.body_str() != Some("b")).unwrap();
    logs.for_each_mut(|r| r.severity_text = "X".into()).unwrap();
    let Answer::Replacement(out) = logs.finish() else {
        panic!("expected a replacement")
    };
    let out = ExportLogsServiceRequest::decode(out.as_slice()).unwrap();
    assert_eq!(bodies(&out), ["a", "c"]);
    assert_eq!(out.resource_logs.len(), 2);
    assert_eq!(
        out.resource_logs[1].scope_logs[0].log_records[0].severity_text,
        "X"
    );
}

#[test]
fn dropping_a_whole_resource_prunes_it_from_the_replacement() {
    let b = bytes();
    let mut logs = Logs::from_protobuf(&b);
    logs.retain_view(|r| r.body_str() == Some("c")).unwrap();
    logs.request_mut().unwrap();
    let Answer::Replacement(out) = logs.finish() else {
        panic!("expected a replacement")
    };
    let out = ExportLogsServiceRequest::decode(out.as_slice()).unwrap();
    assert_eq!(out.resource_logs.len(), 1);
    assert_eq!(bodies(&out), ["c"]);
}

#[test]
fn malformed_bytes_are_an_error_not_a_panic() {
    let b = [0x0a, 0xff, 0xff, 0x01];
    let mut logs = Logs::from_protobuf(&b);
    assert!(logs.retain_view(|_| true).is_err());
    assert!(logs.len().is_err());
    assert!(logs.request().is_err());
}
