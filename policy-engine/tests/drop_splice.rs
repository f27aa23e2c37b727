//! A batch that only loses records keeps a byte encoding (copied out of the bytes it arrived
//! as), and that encoding holds exactly the records the policies keep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use weir_api::{Batch, Payload, Signal};
use weir_policy_contract::parse::parse_document;
use weir_policy_engine::run::process;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

fn request() -> ExportLogsServiceRequest {
    let record = |i: usize| LogRecord {
        time_unix_nano: i as u64 + 1,
        severity_text: if i.is_multiple_of(3) { "DEBUG" } else { "INFO" }.into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!("line {i}"))),
        }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                scope_logs: vec![
                    ScopeLogs {
                        log_records: (0..10).map(record).collect(),
                        ..Default::default()
                    },
                    // Only DEBUG records: the whole scope entry goes.
                    ScopeLogs {
                        log_records: vec![record(0), record(3)],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: (10..15).map(record).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}

fn set(doc: &str) -> PolicySet {
    PolicySet::build(parse_document(doc, "t").unwrap(), &StatsRegistry::new())
}

fn severities(p: &Payload) -> Vec<(u64, String)> {
    let Payload::Logs(r) = p else { panic!("logs") };
    r.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| (l.time_unix_nano, l.severity_text.clone()))
        .collect()
}

#[test]
fn a_drop_only_verdict_keeps_spliced_bytes_with_the_kept_records() {
    let bytes = Bytes::from(request().encode_to_vec());
    let mut batch = Batch::decode(Signal::Logs, bytes).unwrap();
    let policies = set(
        "policies:\n  - {id: no-debug, name: x, log: {match: [{log_field: severity_text, exact: DEBUG}], keep: none}}\n",
    );
    let out = process(&policies, &mut batch, false);
    // Records 0,3,6,9 and 12 of the first scope / second resource, plus the two of the
    // second scope: 7 DEBUG records out of 17.
    assert_eq!((out.dropped, out.changed), (7, true));
    assert_eq!(batch.item_count(), 10);
    let spliced = batch.original_bytes().expect("encoding kept").clone();
    let again = Batch::decode(Signal::Logs, spliced).unwrap();
    assert_eq!(again.payload(), batch.payload());
    let kept = severities(again.payload());
    assert_eq!(kept.len(), 10);
    assert!(kept.iter().all(|(_, s)| s == "INFO"));
    let Payload::Logs(r) = again.payload() else {
        unreachable!()
    };
    assert_eq!(
        r.resource_logs[0].scope_logs.len(),
        1,
        "the all-DEBUG scope is gone"
    );
}

#[test]
fn a_transforming_policy_still_re_encodes() {
    let bytes = Bytes::from(request().encode_to_vec());
    let mut batch = Batch::decode(Signal::Logs, bytes).unwrap();
    let policies = set(
        "policies:\n  - {id: tag, name: x, log: {match: [{log_field: severity_text, exact: INFO}], keep: all, transform: {add: [{log_attribute: seen, value: 'yes'}]}}}\n",
    );
    let out = process(&policies, &mut batch, false);
    assert_eq!((out.dropped, out.changed), (0, true));
    assert!(
        batch.original_bytes().is_none(),
        "changed records are encoded again"
    );
    assert_eq!(batch.item_count(), 17);
}

/// Gauges named `debug.*` and `app.*` of `points` points each, and, with `empty`, an `app.*`
/// metric without data.
fn metrics_request(
    points: usize,
    empty: bool,
) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    let gauge = |name: &str| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|i| NumberDataPoint {
                    time_unix_nano: i as u64 + 1,
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    let mut metrics = vec![
        gauge("debug.queue"),
        gauge("app.requests"),
        gauge("debug.cache"),
    ];
    if empty {
        metrics.push(Metric {
            name: "app.empty".into(),
            ..Default::default()
        });
    }
    opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric_names(p: &Payload) -> Vec<String> {
    let Payload::Metrics(r) = p else {
        panic!("metrics")
    };
    r.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.clone())
        .collect()
}

const DROP_DEBUG_METRICS: &str = "policies:\n  - {id: no-debug, name: x, metric: {match: [{metric_field: name, starts_with: debug.}], keep: false}}\n";

#[test]
fn a_metrics_drop_keeps_cut_bytes_with_the_kept_points() {
    let bytes = Bytes::from(metrics_request(4, false).encode_to_vec());
    let mut batch = Batch::decode(Signal::Metrics, bytes).unwrap();
    assert!(
        !batch.is_decoded(),
        "received metrics are checked, not decoded"
    );
    let out = process(&set(DROP_DEBUG_METRICS), &mut batch, false);
    assert_eq!((out.dropped, out.changed), (8, true));
    assert_eq!(batch.item_count(), 4);
    let cut = batch
        .original_bytes()
        .expect("the drop cut the bytes: nothing to encode again on export")
        .clone();
    let again = Batch::decode(Signal::Metrics, cut).unwrap();
    assert_eq!(again.payload(), batch.payload());
    assert_eq!(metric_names(again.payload()), ["app.requests"]);
}

#[test]
fn a_kept_metric_without_points_stays_and_the_batch_is_encoded_again() {
    // A metric without points gets a verdict of its own, which the cut does not number: the
    // decoded request is edited instead, and the kept empty metric stays.
    let bytes = Bytes::from(metrics_request(2, true).encode_to_vec());
    let mut batch = Batch::decode(Signal::Metrics, bytes).unwrap();
    let out = process(&set(DROP_DEBUG_METRICS), &mut batch, false);
    assert_eq!((out.dropped, out.changed), (4, true));
    assert!(batch.original_bytes().is_none());
    assert_eq!(metric_names(batch.payload()), ["app.requests", "app.empty"]);
}
