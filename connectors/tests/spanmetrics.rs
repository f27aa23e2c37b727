//! The `spanmetrics` connector on crafted spans: exact calls, histogram buckets, dimensions,
//! temporality, exemplars, cardinality overflow, flush timing and config errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use weir_api::fixtures::kv;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, InstrumentationScope, KeyValue};
use weir_api::otlp::metrics::v1::{metric::Data, number_data_point, Metric};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span, Status};
use weir_api::{
    Batch, BuildContext, ComponentId, ConsumeError, Consumer, Payload, Registry, Signal, Stage,
};

#[derive(Default)]
struct Capture(Mutex<Vec<Payload>>);

#[async_trait]
impl Consumer for Capture {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.lock().unwrap().push(batch.into_payload());
        Ok(())
    }
}

impl Capture {
    fn take(&self) -> Vec<Payload> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn build(yaml: &str) -> (Arc<dyn Stage>, Arc<Capture>) {
    let mut r = Registry::new();
    weir_connectors::register(&mut r);
    let value = config_yaml(yaml);
    let cfg = r.connectors["spanmetrics"]
        .parse(&value, "connectors.spanmetrics")
        .unwrap();
    let cap = Arc::new(Capture::default());
    let ctx = BuildContext::for_component(ComponentId::parse("spanmetrics").unwrap());
    let stage = cfg
        .build(
            &ctx,
            Signal::Traces,
            Signal::Metrics,
            vec![("metrics".into(), cap.clone() as Arc<dyn Consumer>)],
        )
        .unwrap();
    (stage, cap)
}

fn parse_errors(yaml: &str) -> Vec<String> {
    let mut r = Registry::new();
    weir_connectors::register(&mut r);
    let value = config_yaml(yaml);
    match r.connectors["spanmetrics"].parse(&value, "connectors.spanmetrics") {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

/// A span named `name` of kind `kind` lasting `ms` milliseconds.
fn span(name: &str, kind: i32, status: i32, ms: f64, attrs: Vec<KeyValue>) -> Span {
    let start = 1_700_000_000_000_000_000u64;
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + (ms * 1e6) as u64,
        attributes: attrs,
        status: Some(Status {
            code: status,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn traces(resources: Vec<(Vec<KeyValue>, Vec<Span>)>) -> Batch {
    Batch::new(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(attrs, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

fn attr_string(attrs: &[KeyValue]) -> String {
    attrs
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().unwrap().value.as_ref().unwrap() {
                any_value::Value::StringValue(s) => s.clone(),
                any_value::Value::IntValue(i) => format!("{i}i"),
                any_value::Value::BoolValue(b) => format!("{b}"),
                other => format!("{other:?}"),
            };
            format!("{}={v}", kv.key)
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Every metric of the captured payloads by (resource service.name, metric name).
fn metrics(p: &[Payload]) -> Vec<(String, Metric)> {
    let mut out = Vec::new();
    for payload in p {
        let Payload::Metrics(m) = payload else {
            panic!("not metrics")
        };
        for rm in &m.resource_metrics {
            let res = attr_string(&rm.resource.as_ref().unwrap().attributes);
            for sm in &rm.scope_metrics {
                assert_eq!(sm.scope.as_ref().unwrap().name, "spanmetricsconnector");
                for metric in &sm.metrics {
                    out.push((res.clone(), metric.clone()));
                }
            }
        }
    }
    out
}

/// calls: attributes -> (value, start, time).
fn calls(p: &[Payload], name: &str) -> BTreeMap<String, (i64, u64, u64)> {
    let mut out = BTreeMap::new();
    for (_, m) in metrics(p) {
        if m.name != name {
            continue;
        }
        let Some(Data::Sum(s)) = &m.data else {
            panic!("calls not a sum")
        };
        assert!(s.is_monotonic);
        for dp in &s.data_points {
            let Some(number_data_point::Value::AsInt(n)) = dp.value else {
                panic!("not an int")
            };
            out.insert(
                attr_string(&dp.attributes),
                (n, dp.start_time_unix_nano, dp.time_unix_nano),
            );
        }
    }
    out
}

fn server() -> i32 {
    2
}

#[tokio::test]
async fn defaults_count_calls_and_fill_default_millisecond_buckets() {
    let (stage, cap) = build("{}");
    let a = vec![kv("service.name", "checkout"), kv("host", "h1")];
    let b = vec![kv("service.name", "cart")];
    stage
        .consume(traces(vec![
            (
                a.clone(),
                vec![
                    span("GET /", server(), 0, 1.0, vec![]),
                    span("GET /", server(), 0, 3.0, vec![]),
                    span("GET /", server(), 2, 7.0, vec![]),
                    span("query", 3, 0, 2.0, vec![]),
                    span("query", 3, 0, 20_000.0, vec![]),
                ],
            ),
            (b, vec![span("add", 1, 1, 50.0, vec![])]),
            // No service.name: not counted.
            (vec![kv("host", "h2")], vec![span("x", 1, 0, 1.0, vec![])]),
        ]))
        .await
        .unwrap();
    stage
        .consume(traces(vec![(
            a,
            vec![span("GET /", server(), 0, 10.0, vec![])],
        )]))
        .await
        .unwrap();
    assert!(cap.take().is_empty(), "nothing before a flush");
    stage.shutdown().await;
    let out = cap.take();
    let c = calls(&out, "traces.span.metrics.calls");
    let got: Vec<(String, i64)> = c.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    assert_eq!(
        got,
        vec![
            ("service.name=cart,span.name=add,span.kind=SPAN_KIND_INTERNAL,status.code=STATUS_CODE_OK".to_string(), 1),
            ("service.name=checkout,span.name=GET /,span.kind=SPAN_KIND_SERVER,status.code=STATUS_CODE_ERROR".to_string(), 1),
            ("service.name=checkout,span.name=GET /,span.kind=SPAN_KIND_SERVER,status.code=STATUS_CODE_UNSET".to_string(), 3),
            ("service.name=checkout,span.name=query,span.kind=SPAN_KIND_CLIENT,status.code=STATUS_CODE_UNSET".to_string(), 2),
        ]
    );
    let all = metrics(&out);
    let resources: Vec<&str> = all.iter().map(|(r, _)| r.as_str()).collect();
    assert!(resources.contains(&"service.name=checkout,host=h1"));
    assert!(!resources.iter().any(|r| r.contains("h2")));
    let mut hist = BTreeMap::new();
    for (_, m) in &all {
        if m.name != "traces.span.metrics.duration" {
            continue;
        }
        assert_eq!(m.unit, "ms");
        let Some(Data::Histogram(h)) = &m.data else {
            panic!("duration not a histogram")
        };
        assert_eq!(h.aggregation_temporality, 2, "cumulative by default");
        for dp in &h.data_points {
            assert_eq!(
                dp.explicit_bounds,
                vec![
                    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0,
                    2000.0, 5000.0, 10000.0, 15000.0
                ]
            );
            assert!(dp.exemplars.is_empty(), "exemplars are off by default");
            hist.insert(
                attr_string(&dp.attributes),
                (dp.count, dp.sum.unwrap(), dp.bucket_counts.clone()),
            );
        }
    }
    // 1, 3 and 10 ms: buckets (..2], (2..4], (8..10] (a bound is inclusive).
    let unset = &hist["service.name=checkout,span.name=GET /,span.kind=SPAN_KIND_SERVER,status.code=STATUS_CODE_UNSET"];
    assert_eq!(unset.0, 3);
    assert_eq!(unset.1, 14.0);
    assert_eq!(
        unset.2,
        vec![1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // 2 ms and 20 s: the first bucket and the overflow bucket.
    let query = &hist["service.name=checkout,span.name=query,span.kind=SPAN_KIND_CLIENT,status.code=STATUS_CODE_UNSET"];
    assert_eq!(
        query.2,
        vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(hist.len(), 4);
}

#[tokio::test]
async fn cumulative_keeps_counting_delta_restarts_from_the_last_flush() {
    let res = vec![kv("service.name", "svc")];
    let (stage, cap) = build("metrics_flush_interval: 1h");
    for _ in 0..3 {
        stage
            .consume(traces(vec![(
                res.clone(),
                vec![span("op", 1, 0, 1.0, vec![])],
            )]))
            .await
            .unwrap();
    }
    stage.shutdown().await;
    stage
        .consume(traces(vec![(
            res.clone(),
            vec![span("op", 1, 0, 1.0, vec![])],
        )]))
        .await
        .unwrap();
    stage.shutdown().await;
    let out = cap.take();
    assert_eq!(out.len(), 2);
    let first = calls(&out[..1], "traces.span.metrics.calls");
    let second = calls(&out[1..], "traces.span.metrics.calls");
    let (n1, start1, t1) = *first.values().next().unwrap();
    let (n2, start2, t2) = *second.values().next().unwrap();
    assert_eq!((n1, n2), (3, 4), "cumulative counts grow");
    assert_eq!(start1, start2, "cumulative series keep their start");
    assert!(t2 >= t1);

    let (stage, cap) = build(
        "{aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA, namespace: '', histogram: {disable: true}}",
    );
    for n in [3, 2] {
        for _ in 0..n {
            stage
                .consume(traces(vec![(
                    res.clone(),
                    vec![span("op", 1, 0, 1.0, vec![])],
                )]))
                .await
                .unwrap();
        }
        stage.shutdown().await;
    }
    // Nothing new: nothing emitted.
    stage.shutdown().await;
    let out = cap.take();
    assert_eq!(out.len(), 2);
    let names: Vec<String> = metrics(&out).into_iter().map(|(_, m)| m.name).collect();
    assert_eq!(names, vec!["calls", "calls"], "no namespace, no histogram");
    let first = calls(&out[..1], "calls");
    let second = calls(&out[1..], "calls");
    let (n1, _, t1) = *first.values().next().unwrap();
    let (n2, start2, _) = *second.values().next().unwrap();
    assert_eq!((n1, n2), (3, 2), "delta counts restart");
    assert_eq!(
        start2, t1,
        "a delta series starts where the last flush ended"
    );
    for (_, m) in metrics(&out) {
        let Some(Data::Sum(s)) = &m.data else {
            panic!()
        };
        assert_eq!(s.aggregation_temporality, 1);
    }
}

#[tokio::test]
async fn dimensions_defaults_exclusions_seconds_buckets_exemplars_and_scope() {
    let (stage, cap) = build(
        r#"
histogram:
  unit: s
  explicit: {buckets: [100us, 1ms, 1s]}
  dimensions: [{name: only.duration}]
dimensions:
  - {name: http.method, default: GET}
  - name: region
  - {name: http.status_code, default: 200}
calls_dimensions: [{name: only.calls}]
exclude_dimensions: [status.code, span.kind]
include_instrumentation_scope: [lib]
exemplars: {enabled: true, max_per_data_point: 2}
"#,
    );
    let res = vec![kv("service.name", "svc"), kv("region", "eu")];
    stage
        .consume(traces(vec![(
            res,
            vec![
                span(
                    "a",
                    1,
                    0,
                    0.05,
                    vec![kv("http.method", "POST"), kv("only.calls", "c")],
                ),
                span(
                    "a",
                    1,
                    0,
                    0.5,
                    vec![kv("http.method", "POST"), kv("only.calls", "c")],
                ),
                span(
                    "a",
                    1,
                    0,
                    2000.0,
                    vec![kv("http.method", "POST"), kv("only.calls", "c")],
                ),
                span(
                    "a",
                    1,
                    0,
                    1.0,
                    vec![kv("region", "us"), kv("only.duration", "d")],
                ),
            ],
        )]))
        .await
        .unwrap();
    stage.shutdown().await;
    let out = cap.take();
    let c = calls(&out, "traces.span.metrics.calls");
    let got: Vec<(String, i64)> = c.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    let scope = "span.instrumentation.scope.name=lib,span.instrumentation.scope.version=1.2";
    assert_eq!(
        got,
        vec![
            (
                format!("service.name=svc,span.name=a,http.method=GET,region=us,http.status_code=200,{scope}"),
                1
            ),
            (
                format!(
                    "service.name=svc,span.name=a,http.method=POST,region=eu,http.status_code=200,only.calls=c,{scope}"
                ),
                3
            ),
        ]
    );
    for (_, m) in metrics(&out) {
        match &m.data {
            Some(Data::Histogram(h)) => {
                assert_eq!(m.unit, "s");
                let mut seen = BTreeMap::new();
                for dp in &h.data_points {
                    assert_eq!(dp.explicit_bounds, vec![0.0001, 0.001, 1.0]);
                    seen.insert(
                        attr_string(&dp.attributes),
                        (dp.bucket_counts.clone(), dp.exemplars.len()),
                    );
                    for e in &dp.exemplars {
                        assert_eq!(e.trace_id, vec![1; 16]);
                        assert_eq!(e.span_id, vec![2; 8]);
                    }
                }
                assert_eq!(
                    seen[&format!(
                        "service.name=svc,span.name=a,http.method=POST,region=eu,http.status_code=200,{scope}"
                    )],
                    (vec![1, 1, 0, 1], 2),
                    "0.05 ms, 0.5 ms, 2 s; exemplars capped at 2"
                );
                assert_eq!(
                    seen[&format!(
                        "service.name=svc,span.name=a,http.method=GET,region=us,http.status_code=200,only.duration=d,{scope}"
                    )],
                    (vec![0, 1, 0, 0], 1),
                    "1 ms falls in the bucket bounded by 1ms"
                );
            }
            Some(Data::Sum(s)) => {
                let n: usize = s.data_points.iter().map(|d| d.exemplars.len()).sum();
                assert_eq!(n, 3, "2 + 1 exemplars on calls");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn exponential_histogram_buckets_events_and_cardinality_overflow() {
    let (stage, cap) = build(
        r#"
histogram: {exponential: {max_size: 4}}
events: {enabled: true, dimensions: [{name: exception.type}]}
aggregation_cardinality_limit: 2
"#,
    );
    let mut with_events = span("e", 1, 0, 8.0, vec![]);
    with_events.events = vec![
        Event {
            name: "exception".into(),
            attributes: vec![kv("exception.type", "IOError")],
            ..Default::default()
        },
        Event {
            name: "exception".into(),
            attributes: vec![kv("exception.type", "IOError")],
            ..Default::default()
        },
    ];
    stage
        .consume(traces(vec![(
            vec![kv("service.name", "svc")],
            vec![
                span("e", 1, 0, 1.0, vec![]),
                span("e", 1, 0, 2.0, vec![]),
                span("e", 1, 0, 4.0, vec![]),
                with_events,
                span("e", 1, 0, 0.0, vec![]),
                span("f", 1, 0, 1.0, vec![]),
                span("g", 1, 0, 1.0, vec![]),
                span("h", 1, 0, 1.0, vec![]),
            ],
        )]))
        .await
        .unwrap();
    stage.shutdown().await;
    let out = cap.take();
    let c = calls(&out, "traces.span.metrics.calls");
    let got: Vec<(String, i64)> = c.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    let base = "span.kind=SPAN_KIND_INTERNAL,status.code=STATUS_CODE_UNSET";
    assert_eq!(
        got,
        vec![
            ("otel.metric.overflow=true".to_string(), 2),
            (format!("service.name=svc,span.name=e,{base}"), 5),
            (format!("service.name=svc,span.name=f,{base}"), 1),
        ]
    );
    let ev = calls(&out, "traces.span.metrics.events");
    let got: Vec<(String, i64)> = ev.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    assert_eq!(
        got,
        vec![(
            format!("service.name=svc,span.name=e,{base},exception.type=IOError"),
            2
        )]
    );
    let mut checked = false;
    for (_, m) in metrics(&out) {
        if let Some(Data::ExponentialHistogram(h)) = &m.data {
            assert_eq!(m.unit, "ms");
            for dp in &h.data_points {
                if attr_string(&dp.attributes) != format!("service.name=svc,span.name=e,{base}") {
                    continue;
                }
                // 1, 2, 4, 8 ms need scale 0 to fit 4 buckets: (0.5,1], (1,2], (2,4], (4,8].
                assert_eq!(dp.count, 5);
                assert_eq!(dp.zero_count, 1);
                assert_eq!(dp.scale, 0);
                let pos = dp.positive.as_ref().unwrap();
                assert_eq!(pos.offset, -1);
                assert_eq!(pos.bucket_counts, vec![1, 1, 1, 1]);
                assert_eq!(dp.sum, Some(15.0));
                assert_eq!(dp.min, Some(0.0));
                assert_eq!(dp.max, Some(8.0));
                checked = true;
            }
        }
    }
    assert!(checked);
}

#[tokio::test]
async fn flushes_every_interval_once_started() {
    let (stage, cap) = build("metrics_flush_interval: 100ms");
    stage.start().await.unwrap();
    stage
        .consume(traces(vec![(
            vec![kv("service.name", "svc")],
            vec![span("op", 1, 0, 1.0, vec![])],
        )]))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut flushes = 0;
    while tokio::time::Instant::now() < deadline && flushes < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        flushes = cap.0.lock().unwrap().len();
    }
    assert!(flushes >= 2, "cumulative series are re-emitted each tick");
    stage.shutdown().await;
    let out = cap.take();
    for payload in out.iter() {
        let c = calls(std::slice::from_ref(payload), "traces.span.metrics.calls");
        assert_eq!(c.values().map(|v| v.0).collect::<Vec<_>>(), vec![1]);
    }
}

#[test]
fn config_errors_are_all_reported_with_their_path() {
    assert!(parse_errors("{}").is_empty());
    // As in the Collector: a name that is not a default dimension excludes nothing.
    assert!(parse_errors("exclude_dimensions: [http.method]").is_empty());
    // The Collector's testdata shape loads.
    assert!(parse_errors(
        r#"
aggregation_temporality: "AGGREGATION_TEMPORALITY_DELTA"
histogram:
  unit: "s"
  explicit:
    buckets: [10ms, 100ms, 250ms]
dimensions_cache_size: 1500
resource_metrics_cache_size: 1600
resource_metrics_key_attributes: [service.name, telemetry.sdk.language, telemetry.sdk.name]
dimensions:
  - name: http.method
    default: GET
  - name: http.status_code
exemplars: {enabled: true, max_per_data_point: 5}
events: {enabled: true, dimensions: [{name: exception.type}, {name: exception.message}]}
metrics_flush_interval: 30s
metrics_expiration: 5m
metric_timestamp_cache_size: 123
include_instrumentation_scope: [express]
aggregation_cardinality_limit: 10
"#
    )
    .is_empty());
    let errors = parse_errors(
        r#"
dimensions: [{name: span.kind}]
dimensions_cache_size: -1
aggregation_temporality: SOMETIMES
histogram: {unit: min, exponential: {}, explicit: {buckets: [1s]}}
events: {enabled: true}
exclude_dimensions: [nope]
"#,
    );
    let joined = errors.join("\n");
    for want in [
        "connectors.spanmetrics.dimensions[0].name: duplicate dimension name span.kind",
        "connectors.spanmetrics.dimensions_cache_size",
        "connectors.spanmetrics.aggregation_temporality",
        "connectors.spanmetrics.histogram.unit",
        "connectors.spanmetrics.histogram: use either `explicit` or `exponential`",
        "connectors.spanmetrics.events.dimensions",
    ] {
        assert!(joined.contains(want), "missing {want:?} in:\n{joined}");
    }
    let errors = parse_errors("{unknown_field: 1, namespace: [3], metrics_flush_interval: 2 days}");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[2].contains("metrics_flush_interval")
            || errors
                .join(" ")
                .contains("connectors.spanmetrics.metrics_flush_interval: invalid duration"),
        "{errors:?}"
    );
    assert_eq!(
        parse_errors("metrics_flush_interval: 0s"),
        vec![
            "connectors.spanmetrics.metrics_flush_interval: must be a positive duration"
                .to_string()
        ]
    );
}

#[test]
fn go_durations() {
    use weir_connectors::spanmetrics::parse_go_duration as p;
    assert_eq!(p("100us").unwrap(), Duration::from_micros(100));
    assert_eq!(p("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(p("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(p("0").unwrap(), Duration::ZERO);
    assert!(p("-1s").is_err());
    assert!(p("10").is_err());
    assert!(p("1d").is_err());
}

/// YAML with the rules of Weir's config loader (the Collector's YAML 1.2 core schema):
/// `n`, `y`, `on`, `off` stay strings; `0755` and `1_000` keep their spelling.
fn config_yaml(src: &str) -> serde_json::Value {
    serde_saphyr::from_str_with_options(
        src,
        serde_saphyr::options! {
            strict_booleans: true,
            leading_zero_numbers_as_strings: true,
            underscored_numbers_as_strings: true,
        },
    )
    .unwrap()
}
