//! The SDK's views, context, per-point helpers and re-aggregation, natively, on batches built
//! with the SDK's own test builders: exact verdicts, exact outputs.
#![allow(clippy::unwrap_used)]

use weir_wasm_sdk::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_wasm_sdk::otlp::common::v1::{any_value, InstrumentationScope, KeyValue};
use weir_wasm_sdk::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_wasm_sdk::otlp::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, ExponentialHistogram,
    ExponentialHistogramDataPoint, Metric, Sum, Summary, SummaryDataPoint,
};
use weir_wasm_sdk::otlp::resource::v1::Resource;
use weir_wasm_sdk::otlp::trace::v1::{span, status, Span, Status};
use weir_wasm_sdk::testing::{
    apply, counter, double_point, gauge, histogram, histogram_point, int_point, kv, log_record,
    logs_request, metrics_request, span, traces_request,
};
use weir_wasm_sdk::{
    remove_attribute, Answer, Logs, Message, MetricKind, Metrics, NumberValue, PointMut, Spans,
    ValueView,
};

fn two_services() -> weir_wasm_sdk::otlp::collector::logs::v1::ExportLogsServiceRequest {
    let entry = |service: &str, records: Vec<LogRecord>| ResourceLogs {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service), kv("replicas", 3_i64)],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: format!("{service}-lib"),
                version: "1.2".into(),
                attributes: vec![kv("lib.debug", true)],
                ..Default::default()
            }),
            log_records: records,
            schema_url: "scope-schema".into(),
        }],
        schema_url: "resource-schema".into(),
    };
    weir_wasm_sdk::otlp::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![
            entry("checkout", vec![log_record("c1", 5), log_record("c2", 9)]),
            entry("search", vec![log_record("s1", 5), log_record("s2", 13)]),
        ],
    }
}

#[test]
fn log_views_see_their_resource_and_scope() {
    let batch = two_services();
    let bytes = batch.encode_to_vec();
    let mut logs = Logs::from_protobuf(&bytes);
    let mut seen = Vec::new();
    // "Drop DEBUG of one service": severity below 9 from service checkout only.
    logs.retain_view(|r| {
        let res = r.resource();
        let scope = r.scope();
        seen.push((
            res.attribute_str("service.name").unwrap().to_string(),
            res.attribute("replicas").and_then(|v| v.as_i64()),
            res.schema_url(),
            scope.name().to_string(),
            scope.version(),
            scope.attribute("lib.debug").and_then(|v| v.as_bool()),
            scope.schema_url(),
            r.body_str().unwrap().to_string(),
        ));
        !(res.attribute_str("service.name") == Some("checkout") && r.severity_number() < 9)
    })
    .unwrap();
    let row = |svc: &str, body: &str| {
        (
            svc.to_string(),
            Some(3),
            "resource-schema",
            format!("{svc}-lib"),
            "1.2",
            Some(true),
            "scope-schema",
            body.to_string(),
        )
    };
    assert_eq!(
        seen,
        [
            row("checkout", "c1"),
            row("checkout", "c2"),
            row("search", "s1"),
            row("search", "s2")
        ]
    );
    assert_eq!(logs.finish(), Answer::Verdicts(vec![0, 1, 1, 1]));
}

#[test]
fn log_view_reads_typed_attributes_and_bodies() {
    let record = LogRecord {
        attributes: vec![kv("s", "x"), kv("i", -4_i64), kv("d", 0.25), kv("b", false)],
        observed_time_unix_nano: 77,
        time_unix_nano: 66,
        span_id: vec![1; 8],
        trace_id: vec![2; 16],
        flags: 1,
        event_name: "login".into(),
        dropped_attributes_count: 2,
        body: Some(weir_wasm_sdk::otlp::common::v1::AnyValue {
            value: Some(any_value::Value::IntValue(42)),
        }),
        ..Default::default()
    };
    let bytes = logs_request(vec![], vec![record]).encode_to_vec();
    let mut logs = Logs::from_protobuf(&bytes);
    let mut checked = 0;
    logs.retain_view(|r| {
        let attrs: Vec<(&str, ValueView<'_>)> = r.attributes().collect();
        assert_eq!(
            attrs,
            [
                ("s", ValueView::Str("x")),
                ("i", ValueView::Int(-4)),
                ("d", ValueView::Double(0.25)),
                ("b", ValueView::Bool(false)),
            ]
        );
        assert_eq!(r.body(), ValueView::Int(42));
        assert_eq!(r.body_str(), None);
        assert_eq!(r.time_unix_nano(), 66);
        assert_eq!(r.observed_time_unix_nano(), 77);
        assert_eq!(r.span_id(), &[1; 8]);
        assert_eq!(r.trace_id(), &[2; 16]);
        assert_eq!(r.flags(), 1);
        assert_eq!(r.event_name(), "login");
        assert_eq!(r.dropped_attributes_count(), 2);
        // No resource attributes, no scope: empty, not an error.
        assert_eq!(r.resource().attribute_str("service.name"), None);
        assert_eq!(r.scope().name(), "");
        checked += 1;
        true
    })
    .unwrap();
    assert_eq!(checked, 1);
    assert_eq!(logs.finish(), Answer::Unchanged);
}

fn full_span() -> Span {
    Span {
        trace_state: "vendor=1".into(),
        parent_span_id: vec![7; 8],
        flags: 0x301,
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 251_000,
        attributes: vec![kv("http.route", "/pay")],
        dropped_attributes_count: 1,
        events: vec![
            span::Event {
                time_unix_nano: 2_000,
                name: "exception".into(),
                attributes: vec![kv("exception.type", "Timeout")],
                dropped_attributes_count: 0,
            },
            span::Event {
                time_unix_nano: 3_000,
                name: "retry".into(),
                ..Default::default()
            },
        ],
        dropped_events_count: 2,
        links: vec![span::Link {
            trace_id: vec![5; 16],
            span_id: vec![6; 8],
            trace_state: "l=1".into(),
            attributes: vec![kv("link.kind", "follows")],
            flags: 1,
            ..Default::default()
        }],
        dropped_links_count: 3,
        status: Some(Status {
            message: "deadline exceeded".into(),
            code: status::StatusCode::Error as i32,
        }),
        ..span("POST /pay", [9; 16], [3; 8])
    }
}

#[test]
fn span_view_reads_every_field() {
    let root = span("GET /", [1; 16], [1; 8]);
    let batch = traces_request(vec![kv("service.name", "pay")], vec![full_span(), root]);
    let bytes = batch.encode_to_vec();
    let mut spans = Spans::from_protobuf(&bytes);
    let mut n = 0;
    spans
        .retain_view(|s| {
            n += 1;
            if n == 2 {
                assert!(s.is_root());
                assert!(!s.is_error());
                assert_eq!(s.status().code(), 0);
                assert_eq!(s.events().count(), 0);
                return false;
            }
            assert_eq!(s.name(), "POST /pay");
            assert_eq!(s.trace_id(), &[9; 16]);
            assert_eq!(s.span_id(), &[3; 8]);
            assert_eq!(s.parent_span_id(), &[7; 8]);
            assert!(!s.is_root());
            assert_eq!(s.trace_state(), "vendor=1");
            assert_eq!(s.flags(), 0x301);
            assert_eq!(s.kind(), 2);
            assert_eq!(s.start_time_unix_nano(), 1_000);
            assert_eq!(s.end_time_unix_nano(), 251_000);
            assert_eq!(s.duration_nanos(), 250_000);
            assert_eq!(s.attribute_str("http.route"), Some("/pay"));
            assert_eq!(s.dropped_attributes_count(), 1);
            assert_eq!(s.status().code(), 2);
            assert_eq!(s.status().message(), "deadline exceeded");
            assert!(s.is_error());
            let events: Vec<_> = s
                .events()
                .map(|e| {
                    (
                        e.name(),
                        e.time_unix_nano(),
                        e.attribute_str("exception.type"),
                    )
                })
                .collect();
            assert_eq!(
                events,
                [
                    ("exception", 2_000, Some("Timeout")),
                    ("retry", 3_000, None)
                ]
            );
            assert_eq!(s.dropped_events_count(), 2);
            let links: Vec<_> = s.links().collect();
            assert_eq!(links.len(), 1);
            assert_eq!(links[0].trace_id(), &[5; 16]);
            assert_eq!(links[0].span_id(), &[6; 8]);
            assert_eq!(links[0].trace_state(), "l=1");
            assert_eq!(links[0].flags(), 1);
            assert_eq!(links[0].attribute_str("link.kind"), Some("follows"));
            assert_eq!(s.dropped_links_count(), 3);
            assert_eq!(s.resource().attribute_str("service.name"), Some("pay"));
            true
        })
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(spans.finish(), Answer::Verdicts(vec![1, 0]));
}

#[test]
fn decoded_retain_and_edit_see_the_context() {
    let batch = two_services();
    let bytes = batch.encode_to_vec();
    let mut logs = Logs::from_protobuf(&bytes);
    logs.retain_in_context(|ctx, r| {
        !(weir_wasm_sdk::attribute_str(&ctx.resource.attributes, "service.name") == Some("search")
            && r.severity_number < 9)
    })
    .unwrap();
    logs.for_each_mut_in_context(|ctx, r| {
        weir_wasm_sdk::set_attribute_str(&mut r.attributes, "scope", ctx.scope.name.clone());
    })
    .unwrap();
    let out = apply(&batch, logs.finish()).unwrap();
    assert_eq!(out.bodies(), ["c1", "c2", "s2"]);
    assert_eq!(
        (out.input, out.kept, out.dropped, out.replaced),
        (4, 0, 1, 3)
    );
    let scopes: Vec<_> = out
        .output
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| {
            weir_wasm_sdk::attribute_str(&r.attributes, "scope")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(scopes, ["checkout-lib", "checkout-lib", "search-lib"]);
}

/// Every point type, over two resources.
fn all_types() -> ExportMetricsServiceRequest {
    let exp = Metric {
        name: "latency.exp".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                attributes: vec![kv("route", "/a")],
                count: 6,
                sum: Some(12.0),
                scale: 1,
                positive: Some(Buckets {
                    offset: 0,
                    bucket_counts: vec![1, 2, 3],
                }),
                min: Some(1.0),
                max: Some(4.0),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    };
    let summary = Metric {
        name: "rpc.summary".into(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                attributes: vec![kv("route", "/a")],
                count: 10,
                sum: 55.0,
                quantile_values: vec![ValueAtQuantile {
                    quantile: 0.5,
                    value: 5.0,
                }],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let mut first = metrics_request(
        vec![kv("service.name", "api")],
        vec![
            Metric {
                unit: "1".into(),
                ..gauge(
                    "queue.depth",
                    vec![
                        double_point(vec![kv("q", "a")], 10, 1.5),
                        double_point(vec![kv("q", "b")], 10, 2.5),
                    ],
                )
            },
            counter(
                "requests",
                vec![int_point(vec![kv("code", 200_i64)], 10, 7)],
            ),
            histogram(
                "latency",
                vec![histogram_point(vec![], 10, &[1.0, 5.0], &[1, 2, 3], 20.0)],
            ),
        ],
    );
    let second = metrics_request(vec![kv("service.name", "db")], vec![exp, summary]);
    first.resource_metrics.extend(second.resource_metrics);
    first
}

#[test]
fn point_views_visit_every_type_in_canonical_order() {
    let batch = all_types();
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    assert_eq!(metrics.len().unwrap(), 6);
    let mut seen = Vec::new();
    metrics
        .retain_points_view(|p| {
            let m = p.metric();
            seen.push(format!(
                "{}/{} {:?} {} v={:?} n={:?} s={:?} min={:?} max={:?} mono={} temp={} unit={}",
                p.resource().attribute_str("service.name").unwrap(),
                m.name(),
                p.kind(),
                p.attributes()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(","),
                p.value(),
                p.count(),
                p.sum(),
                p.min(),
                p.max(),
                m.is_monotonic(),
                m.aggregation_temporality(),
                m.unit(),
            ));
            // Keep what is not from the api service's gauge.
            !(m.kind() == Some(MetricKind::Gauge) && p.attribute_str("q") == Some("b"))
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            "api/queue.depth Gauge q=Str(\"a\") v=Some(Double(1.5)) n=None s=None min=None max=None mono=false temp=0 unit=1",
            "api/queue.depth Gauge q=Str(\"b\") v=Some(Double(2.5)) n=None s=None min=None max=None mono=false temp=0 unit=1",
            "api/requests Sum code=Int(200) v=Some(Int(7)) n=None s=None min=None max=None mono=true temp=2 unit=",
            "api/latency Histogram  v=None n=Some(6) s=Some(20.0) min=None max=None mono=false temp=2 unit=",
            "db/latency.exp ExponentialHistogram route=Str(\"/a\") v=None n=Some(6) s=Some(12.0) min=Some(1.0) max=Some(4.0) mono=false temp=1 unit=",
            "db/rpc.summary Summary route=Str(\"/a\") v=None n=Some(10) s=Some(55.0) min=None max=None mono=false temp=0 unit=",
        ]
    );
    // A second, per-metric rule combines with the first.
    metrics
        .retain_metrics_view(|m| m.name() != "rpc.summary")
        .unwrap();
    let out = apply(&batch, metrics.finish()).unwrap();
    assert_eq!(out.answer, Answer::Verdicts(vec![1, 0, 1, 1, 1, 0]));
    let names: Vec<_> = out.metrics().iter().map(|m| m.name.clone()).collect();
    assert_eq!(names, ["queue.depth", "requests", "latency", "latency.exp"]);
    assert_eq!(out.output.resource_metrics.len(), 2);
}

#[test]
fn decoded_points_of_every_type_are_visited_and_edited() {
    let batch = all_types();
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    let mut visited = Vec::new();
    metrics
        .retain_points(|m, p| {
            visited.push((m.name.to_string(), m.kind, p.time_unix_nano()));
            m.kind != MetricKind::Summary
        })
        .unwrap();
    assert_eq!(
        visited,
        [
            ("queue.depth".to_string(), MetricKind::Gauge, 10),
            ("queue.depth".to_string(), MetricKind::Gauge, 10),
            ("requests".to_string(), MetricKind::Sum, 10),
            ("latency".to_string(), MetricKind::Histogram, 10),
            (
                "latency.exp".to_string(),
                MetricKind::ExponentialHistogram,
                0
            ),
            ("rpc.summary".to_string(), MetricKind::Summary, 0),
        ]
    );
    metrics
        .for_each_point_mut(|m, mut p| {
            weir_wasm_sdk::set_attribute_str(
                p.attributes_mut(),
                "service",
                weir_wasm_sdk::attribute_str(&m.context.resource.attributes, "service.name")
                    .unwrap_or("-"),
            );
        })
        .unwrap();
    let out = apply(&batch, metrics.finish()).unwrap();
    assert_eq!((out.dropped, out.replaced), (1, 5));
    let services: Vec<String> = out
        .metrics()
        .iter()
        .flat_map(|m| {
            let mut v = Vec::new();
            let attrs = |a: &[KeyValue]| {
                weir_wasm_sdk::attribute_str(a, "service")
                    .unwrap()
                    .to_string()
            };
            match m.data.as_ref().unwrap() {
                Data::Gauge(g) => g
                    .data_points
                    .iter()
                    .for_each(|p| v.push(attrs(&p.attributes))),
                Data::Sum(s) => s
                    .data_points
                    .iter()
                    .for_each(|p| v.push(attrs(&p.attributes))),
                Data::Histogram(h) => h
                    .data_points
                    .iter()
                    .for_each(|p| v.push(attrs(&p.attributes))),
                Data::ExponentialHistogram(h) => h
                    .data_points
                    .iter()
                    .for_each(|p| v.push(attrs(&p.attributes))),
                Data::Summary(s) => s
                    .data_points
                    .iter()
                    .for_each(|p| v.push(attrs(&p.attributes))),
            }
            v
        })
        .collect();
    assert_eq!(services, ["api", "api", "api", "api", "db"]);
}

fn drop_attribute(metrics: &mut Metrics<'_>, key: &str) {
    metrics
        .for_each_point_mut(|_, mut p: PointMut<'_>| {
            remove_attribute(p.attributes_mut(), key);
        })
        .unwrap();
}

#[test]
fn merge_series_adds_sums_and_keeps_the_latest_gauge() {
    let mut sum = counter(
        "requests",
        vec![
            int_point(vec![kv("host", "a"), kv("path", "/x")], 20, 1),
            int_point(vec![kv("host", "b"), kv("path", "/x")], 30, 2),
            int_point(vec![kv("path", "/y"), kv("host", "a")], 20, 4),
            int_point(vec![kv("host", "c"), kv("path", "/x")], 25, 10),
        ],
    );
    if let Some(Data::Sum(s)) = &mut sum.data {
        s.data_points[0].start_time_unix_nano = 5;
        s.data_points[1].start_time_unix_nano = 3;
    }
    let batch = metrics_request(
        vec![],
        vec![
            sum,
            gauge(
                "temp",
                vec![
                    double_point(vec![kv("host", "a")], 50, 20.0),
                    double_point(vec![kv("host", "b")], 40, 30.0),
                    double_point(vec![kv("host", "c")], 50, 25.0),
                ],
            ),
            // Mixed int and double sums become double.
            Metric {
                data: Some(Data::Sum(Sum {
                    data_points: vec![
                        int_point(vec![kv("host", "a")], 1, 2),
                        double_point(vec![kv("host", "b")], 1, 0.5),
                    ],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    is_monotonic: false,
                })),
                ..counter("updown", vec![])
            },
        ],
    );
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    drop_attribute(&mut metrics, "host");
    assert_eq!(metrics.merge_series().unwrap(), 5);
    let out = apply(&batch, metrics.finish()).unwrap();
    assert_eq!((out.input, out.dropped, out.replaced), (9, 5, 4));
    let m = out.metrics();
    let Some(Data::Sum(s)) = &m[0].data else {
        panic!("sum expected")
    };
    assert_eq!(s.data_points.len(), 2);
    assert_eq!(s.data_points[0].attributes, vec![kv("path", "/x")]);
    assert_eq!(
        s.data_points[0].value,
        Some(number_data_point::Value::AsInt(13))
    );
    assert_eq!(s.data_points[0].start_time_unix_nano, 3);
    assert_eq!(s.data_points[0].time_unix_nano, 30);
    assert_eq!(s.data_points[1].attributes, vec![kv("path", "/y")]);
    assert_eq!(
        s.data_points[1].value,
        Some(number_data_point::Value::AsInt(4))
    );
    let Some(Data::Gauge(g)) = &m[1].data else {
        panic!("gauge expected")
    };
    // Latest time wins; a tie goes to the later point (host c).
    assert_eq!(g.data_points.len(), 1);
    assert_eq!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsDouble(25.0))
    );
    let Some(Data::Sum(u)) = &m[2].data else {
        panic!("sum expected")
    };
    assert_eq!(
        u.data_points[0].value,
        Some(number_data_point::Value::AsDouble(2.5))
    );
}

#[test]
fn merge_series_merges_histogram_buckets_and_leaves_summaries() {
    let batch = metrics_request(
        vec![],
        vec![
            histogram(
                "latency",
                vec![
                    histogram_point(vec![kv("pod", "1")], 10, &[1.0, 5.0], &[1, 2, 3], 20.0),
                    histogram_point(vec![kv("pod", "2")], 12, &[1.0, 5.0], &[4, 0, 1], 6.0),
                    // Other bounds: cannot be merged, stays.
                    histogram_point(vec![kv("pod", "3")], 12, &[2.0], &[1, 1], 3.0),
                ],
            ),
            Metric {
                name: "latency.exp".into(),
                data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![
                        ExponentialHistogramDataPoint {
                            attributes: vec![kv("pod", "1")],
                            count: 11,
                            sum: Some(30.0),
                            scale: 1,
                            zero_count: 1,
                            positive: Some(Buckets {
                                offset: 0,
                                bucket_counts: vec![1, 2, 3, 4],
                            }),
                            min: Some(0.0),
                            max: Some(3.5),
                            ..Default::default()
                        },
                        ExponentialHistogramDataPoint {
                            attributes: vec![kv("pod", "2")],
                            count: 7,
                            sum: Some(10.0),
                            scale: 0,
                            zero_count: 2,
                            positive: Some(Buckets {
                                offset: 1,
                                bucket_counts: vec![5],
                            }),
                            negative: Some(Buckets {
                                offset: -2,
                                bucket_counts: vec![0, 0],
                            }),
                            min: Some(-1.0),
                            max: Some(3.0),
                            ..Default::default()
                        },
                    ],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                })),
                ..Default::default()
            },
            Metric {
                name: "rpc".into(),
                data: Some(Data::Summary(Summary {
                    data_points: vec![
                        SummaryDataPoint {
                            attributes: vec![kv("pod", "1")],
                            count: 1,
                            ..Default::default()
                        },
                        SummaryDataPoint {
                            attributes: vec![kv("pod", "2")],
                            count: 2,
                            ..Default::default()
                        },
                    ],
                })),
                ..Default::default()
            },
        ],
    );
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    drop_attribute(&mut metrics, "pod");
    assert_eq!(metrics.merge_series().unwrap(), 2);
    let out = apply(&batch, metrics.finish()).unwrap();
    let m = out.metrics();
    let Some(Data::Histogram(h)) = &m[0].data else {
        panic!("histogram expected")
    };
    assert_eq!(h.data_points.len(), 2);
    assert_eq!(h.data_points[0].bucket_counts, [5, 2, 4]);
    assert_eq!(h.data_points[0].count, 11);
    assert_eq!(h.data_points[0].sum, Some(26.0));
    assert_eq!(h.data_points[0].time_unix_nano, 12);
    assert_eq!(h.data_points[1].explicit_bounds, [2.0]);
    let Some(Data::ExponentialHistogram(e)) = &m[1].data else {
        panic!("exponential histogram expected")
    };
    assert_eq!(e.data_points.len(), 1);
    let p = &e.data_points[0];
    assert_eq!(p.scale, 0);
    // Scale 1 indices 0,1,2,3 -> scale 0 indices 0,0,1,1; plus 5 at index 1.
    assert_eq!(
        p.positive,
        Some(Buckets {
            offset: 0,
            bucket_counts: vec![3, 12]
        })
    );
    assert_eq!(p.negative, None);
    assert_eq!((p.count, p.zero_count, p.sum), (18, 3, Some(40.0)));
    assert_eq!((p.min, p.max), (Some(-1.0), Some(3.5)));
    let Some(Data::Summary(s)) = &m[2].data else {
        panic!("summary expected")
    };
    assert_eq!(s.data_points.len(), 2);
}

#[test]
fn verdicts_before_a_merge_are_applied_first_and_views_after_it_are_refused() {
    let batch = metrics_request(
        vec![],
        vec![counter(
            "requests",
            vec![
                int_point(vec![kv("host", "a")], 1, 1),
                int_point(vec![kv("host", "b")], 1, 2),
                int_point(vec![kv("host", "c")], 1, 4),
            ],
        )],
    );
    let bytes = batch.encode_to_vec();
    let mut metrics = Metrics::from_protobuf(&bytes);
    metrics
        .retain_points_view(|p| p.attribute_str("host") != Some("b"))
        .unwrap();
    drop_attribute(&mut metrics, "host");
    assert_eq!(metrics.merge_series().unwrap(), 1);
    assert_eq!(metrics.len().unwrap(), 1);
    let err = metrics.retain_points_view(|_| true).unwrap_err();
    assert!(err.to_string().contains("view-based retain after"), "{err}");
    // The decoded retain still works on what is there now.
    metrics.retain_points(|_, _| true).unwrap();
    let out = apply(&batch, metrics.finish()).unwrap();
    let Some(Data::Sum(s)) = &out.metrics()[0].data else {
        panic!("sum expected")
    };
    assert_eq!(s.data_points.len(), 1);
    assert_eq!(
        s.data_points[0].value,
        Some(number_data_point::Value::AsInt(5))
    );
}

/// Protobuf lets a later member of a oneof replace an earlier one: the view counts the points
/// of the member prost keeps, so verdict counts match the host's.
#[test]
fn point_view_follows_the_oneof_member_prost_keeps() {
    let first = gauge(
        "m",
        vec![double_point(vec![], 1, 1.0), double_point(vec![], 2, 2.0)],
    );
    let second = counter("m", vec![int_point(vec![], 3, 3)]);
    let mut metric = first.encode_to_vec();
    metric.extend(second.encode_to_vec());
    let wrap = |tag: u8, inner: &[u8]| {
        let mut out = vec![tag];
        weir_wasm_sdk::prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    let bytes = wrap(0x0a, &wrap(0x12, &wrap(0x12, &metric)));
    let decoded = ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
    assert!(matches!(
        decoded.resource_metrics[0].scope_metrics[0].metrics[0].data,
        Some(Data::Sum(_))
    ));
    let mut metrics = Metrics::from_protobuf(&bytes);
    let mut values = Vec::new();
    metrics
        .retain_points_view(|p| {
            values.push(p.value());
            true
        })
        .unwrap();
    assert_eq!(values, [Some(NumberValue::Int(3))]);
}

#[test]
fn request_mut_applies_pending_verdicts() {
    let batch = two_services();
    let bytes = batch.encode_to_vec();
    let mut logs = Logs::from_protobuf(&bytes);
    logs.retain_view(|r| r.severity_number() >= 9).unwrap();
    let request = logs.request_mut().unwrap();
    // The dropped records are gone from what the module edits.
    assert_eq!(
        request
            .resource_logs
            .iter()
            .map(|r| r.scope_logs[0].log_records.len())
            .collect::<Vec<_>>(),
        [1, 1]
    );
    request.resource_logs.remove(0);
    let out = apply(&batch, logs.finish()).unwrap();
    assert_eq!(out.bodies(), ["s2"]);
    assert_eq!((out.dropped, out.replaced), (3, 1));
}

#[test]
fn apply_refuses_what_weir_refuses() {
    let batch = logs_request(vec![], vec![log_record("a", 1)]);
    assert!(apply(&batch, Answer::Verdicts(vec![1, 1]))
        .unwrap_err()
        .to_string()
        .contains("2 verdicts for 1 items"));
    assert!(apply(&batch, Answer::Verdicts(vec![2]))
        .unwrap_err()
        .to_string()
        .contains("verdict byte 2"));
    let bigger = logs_request(vec![], vec![log_record("a", 1), log_record("b", 1)]);
    assert!(apply(&batch, Answer::Replacement(bigger.encode_to_vec()))
        .unwrap_err()
        .to_string()
        .contains("more than the 1 sent"));
}
