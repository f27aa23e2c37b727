//! The SDK's context views, complete span view, per-point metrics helpers and series merge,
//! through the real `wasm` stage with the example guests built for wasm32: exact outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, status::StatusCode, ResourceSpans, ScopeSpans};
use weir_api::otlp::trace::v1::{Span, Status};
use weir_api::{Payload, Signal};

fn module(name: &str) -> String {
    example_wasm(name).display().to_string()
}

#[tokio::test]
async fn severity_filter_drops_debug_of_one_service_only() {
    let h = harness(
        json!({"module": module("severity_filter"),
               "config": {"min_severity": 9, "service": "svc-0"}}),
        Signal::Logs,
    );
    // logs_batch puts the first half under service svc-0, the second under svc-1.
    let out = h
        .run(logs_batch(vec![
            record("a-debug", 5),
            record("a-info", 9),
            record("b-debug", 5),
            record("b-info", 9),
        ]))
        .await;
    assert_eq!(log_bodies(&out[0]), ["a-info", "b-debug", "b-info"]);
    assert_eq!(out[0].item_count(), 3);
}

fn int_attr(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn point(attributes: Vec<KeyValue>, time: u64, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn metrics_batch(metrics: Vec<Metric>) -> weir_api::Batch {
    encoded(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "api")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

#[tokio::test]
async fn metric_tidy_drops_prefixes_removes_an_attribute_and_merges_series() {
    let h = harness(
        json!({"module": module("metric_tidy"),
               "config": {"drop_prefixes": ["debug."], "remove_attributes": ["host.id"]}}),
        Signal::Metrics,
    );
    let requests = Metric {
        name: "requests".into(),
        data: Some(Data::Sum(Sum {
            data_points: vec![
                point(vec![attr("host.id", "a"), int_attr("code", 200)], 10, 5),
                point(vec![attr("host.id", "b"), int_attr("code", 200)], 20, 7),
                point(vec![attr("host.id", "a"), int_attr("code", 500)], 10, 1),
            ],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let temperature = Metric {
        name: "temperature".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![
                point(vec![attr("host.id", "a")], 30, 20),
                point(vec![attr("host.id", "b")], 40, 25),
            ],
        })),
        ..Default::default()
    };
    let histogram_point = |host: &str, counts: Vec<u64>| HistogramDataPoint {
        attributes: vec![attr("host.id", host)],
        count: counts.iter().sum(),
        sum: Some(10.0),
        bucket_counts: counts,
        explicit_bounds: vec![100.0],
        time_unix_nano: 50,
        ..Default::default()
    };
    let latency = Metric {
        name: "latency".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![
                histogram_point("a", vec![1, 2]),
                histogram_point("b", vec![3, 4]),
            ],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    };
    let debug = Metric {
        name: "debug.queue".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(vec![], 1, 1); 4],
        })),
        ..Default::default()
    };
    let out = h
        .run(metrics_batch(vec![requests, debug, temperature, latency]))
        .await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].item_count(), 4);
    let Payload::Metrics(r) = out[0].payload() else {
        unreachable!()
    };
    let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["requests", "temperature", "latency"]);
    let Some(Data::Sum(s)) = &metrics[0].data else {
        panic!("sum")
    };
    let sums: Vec<_> = s
        .data_points
        .iter()
        .map(|p| (p.attributes.clone(), p.value, p.time_unix_nano))
        .collect();
    assert_eq!(
        sums,
        [
            (
                vec![int_attr("code", 200)],
                Some(number_data_point::Value::AsInt(12)),
                20
            ),
            (
                vec![int_attr("code", 500)],
                Some(number_data_point::Value::AsInt(1)),
                10
            ),
        ]
    );
    let Some(Data::Gauge(g)) = &metrics[1].data else {
        panic!("gauge")
    };
    assert_eq!(g.data_points.len(), 1);
    assert_eq!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsInt(25))
    );
    let Some(Data::Histogram(hist)) = &metrics[2].data else {
        panic!("histogram")
    };
    assert_eq!(hist.data_points.len(), 1);
    assert_eq!(hist.data_points[0].bucket_counts, [4, 6]);
    assert_eq!(hist.data_points[0].count, 10);
    assert_eq!(hist.data_points[0].sum, Some(20.0));
    assert!(hist.data_points[0].attributes.is_empty());
    // The resource survives the replacement.
    assert_eq!(
        r.resource_metrics[0].resource.as_ref().unwrap().attributes,
        [attr("service.name", "api")]
    );
    assert_eq!(h.failures("malformed_output"), 0);
}

#[tokio::test]
async fn metric_tidy_answers_by_verdicts_when_there_is_nothing_to_merge() {
    let h = harness(
        json!({"module": module("metric_tidy"),
               "config": {"drop_prefixes": ["debug."], "remove_attributes": ["host.id"]}}),
        Signal::Metrics,
    );
    let gauge = |name: &str, n: usize| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(vec![attr("q", "x")], 1, 1); n],
        })),
        ..Default::default()
    };
    let out = h
        .run(metrics_batch(vec![
            gauge("a", 2),
            gauge("debug.x", 3),
            gauge("b", 1),
        ]))
        .await;
    assert_eq!(out[0].item_count(), 3);
    let Payload::Metrics(r) = out[0].payload() else {
        unreachable!()
    };
    let names: Vec<&str> = r.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

fn trace(low: u64) -> [u8; 16] {
    let mut id = [7u8; 16];
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

fn timed(name: &str, trace_id: [u8; 16], millis: u64) -> Span {
    Span {
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + millis * 1_000_000,
        ..span(name, trace_id)
    }
}

#[tokio::test]
async fn tail_keeper_keeps_error_slow_and_exception_traces_and_samples_the_rest() {
    let h = harness(
        json!({"module": module("tail_keeper"),
               "config": {"slow_ms": 500, "sample_percent": 10, "always_keep": ["payments"]}}),
        Signal::Traces,
    );
    let error = Span {
        status: Some(Status {
            code: StatusCode::Error as i32,
            message: "boom".into(),
        }),
        ..timed("error", trace(1), 5)
    };
    let exception = Span {
        events: vec![Event {
            name: "exception".into(),
            ..Default::default()
        }],
        ..timed("exception", trace(2), 5)
    };
    let entry = |service: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![attr("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    };
    let batch = encoded(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![
            entry(
                "shop",
                vec![
                    timed("error-sibling", trace(1), 5),
                    timed("slow", trace(3), 900),
                    timed("sampled-out", trace(1000), 1),
                    timed("sampled-in", trace(999), 1),
                ],
            ),
            entry(
                "web",
                vec![
                    error,
                    timed("slow-sibling", trace(3), 1),
                    exception,
                    timed("web-sampled-out", trace(5000), 1),
                ],
            ),
            entry("payments", vec![timed("pay", trace(5000), 1)]),
        ],
    }));
    let out = h.run(batch).await;
    let Payload::Traces(r) = out[0].payload() else {
        unreachable!()
    };
    let names: Vec<&str> = r
        .resource_spans
        .iter()
        .flat_map(|x| &x.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "error-sibling",
            "slow",
            "sampled-in",
            "error",
            "slow-sibling",
            "exception",
            "pay"
        ]
    );
    assert_eq!(
        metric_value(
            &h.telemetry.encode(),
            "weir_processor_dropped_items_total",
            "wasm/test"
        ),
        2
    );
}

#[tokio::test]
async fn drop_matching_drops_metric_points_by_attribute_in_place() {
    let h = harness(
        json!({"module": module("drop_matching"),
               "config": {"field": "attributes.host", "equals": "b"}}),
        Signal::Metrics,
    );
    let gauge = |name: &str, hosts: &[&str]| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: hosts
                .iter()
                .enumerate()
                .map(|(i, host)| point(vec![attr("host", host)], i as u64, i as i64))
                .collect(),
        })),
        ..Default::default()
    };
    let batch = metrics_batch(vec![gauge("a", &["a", "b", "c"]), gauge("only_b", &["b"])]);
    let out = h.run(batch).await;
    assert_eq!(out[0].item_count(), 2);
    let Payload::Metrics(r) = out[0].payload() else {
        unreachable!()
    };
    let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 1);
    let Some(Data::Gauge(g)) = &metrics[0].data else {
        panic!("gauge")
    };
    let hosts: Vec<_> = g.data_points.iter().map(|p| p.attributes.clone()).collect();
    assert_eq!(hosts, [vec![attr("host", "a")], vec![attr("host", "c")]]);
    assert_eq!(h.failures("malformed_output"), 0);
}
