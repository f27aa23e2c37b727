//! Unit tests of the `prometheus` exporter: config validation, accumulation of every
//! metric type into series, and the text and OpenMetrics expositions.

use weir_api::otlp::common::v1::InstrumentationScope;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{
    metric, summary_data_point::ValueAtQuantile, Gauge, Histogram, HistogramDataPoint, Sum,
    Summary, SummaryDataPoint,
};
use weir_api::otlp::metrics::v1::{
    number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::ExporterFactory;
use weir_api::{BuildContext, Stage};

use super::accumulate::NO_RECORDED_VALUE;
use super::exposition::{seconds, timestamp};
use super::*;

use weir_api::fixtures::kv;

fn exporter(config: serde_json::Value) -> Arc<dyn Stage> {
    let cfg = PrometheusFactory
        .parse(&config, "exporters.prometheus")
        .unwrap();
    cfg.build(&BuildContext::for_component(
        ComponentId::parse("prometheus").unwrap(),
    ))
    .unwrap()
}

fn state_of(config: serde_json::Value) -> State {
    let s: PrometheusSettings = serde_json::from_value(config).unwrap();
    State {
        options: Options {
            namespace: s.namespace,
            add_suffixes: s.add_metric_suffixes,
            const_labels: s.const_labels.into_iter().collect(),
            resource_labels: s.resource_to_telemetry_conversion.enabled,
            send_timestamps: s.send_timestamps,
            expiration: s.metric_expiration,
            open_metrics: s.enable_open_metrics,
        },
        inner: Mutex::new(Inner::default()),
    }
}

fn number_point(v: f64, start: u64, time: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn rm(metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
    vec![ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", "shop"),
                kv("service.namespace", "eu"),
                kv("service.instance.id", "i-1"),
                kv("host.name", "h1"),
            ],
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "lib".into(),
                version: "1.0".into(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn sum(name: &str, unit: &str, delta: bool, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: "a \\ help\nline".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: if delta { 1 } else { 2 },
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

#[test]
fn text_exposition_of_every_type() {
    let st = state_of(serde_json::json!({"endpoint": ":1", "const_labels": {"region": "x"}}));
    let hist = Metric {
        name: "rpc.duration".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                count: 6,
                sum: Some(42.5),
                explicit_bounds: vec![10.0, 1e6],
                bucket_counts: vec![1, 2, 3],
                time_unix_nano: 5,
                ..Default::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let summary = Metric {
        name: "q".into(),
        data: Some(metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                count: 3,
                sum: 9.0,
                quantile_values: vec![ValueAtQuantile {
                    quantile: 0.5,
                    value: 2.0,
                }],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let gauge = Metric {
        name: "load".into(),
        unit: "1".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![number_point(0.5, 0, 1, vec![kv("cpu", "a\"b")])],
        })),
        ..Default::default()
    };
    let (taken, dropped) = st.accumulate(&rm(vec![
        sum(
            "http.requests",
            "{request}",
            false,
            vec![number_point(7.0, 1, 2, vec![])],
        ),
        hist,
        summary,
        gauge,
    ]));
    assert_eq!((taken, dropped), (4, 0));
    let common = "instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\",region=\"x\"";
    let want = format!(
        "# HELP target_info Target metadata
# TYPE target_info gauge
target_info{{host_name=\"h1\",instance=\"i-1\",job=\"eu/shop\"}} 1
# HELP http_requests_total a \\\\ help\\nline
# TYPE http_requests_total counter
http_requests_total{{{common}}} 7
# TYPE load_ratio gauge
load_ratio{{cpu=\"a\\\"b\",{common}}} 0.5
# TYPE q summary
q{{{common},quantile=\"0.5\"}} 2
q_sum{{{common}}} 9
q_count{{{common}}} 3
# TYPE rpc_duration_milliseconds histogram
rpc_duration_milliseconds_bucket{{{common},le=\"10\"}} 1
rpc_duration_milliseconds_bucket{{{common},le=\"1e+06\"}} 3
rpc_duration_milliseconds_bucket{{{common},le=\"+Inf\"}} 6
rpc_duration_milliseconds_sum{{{common}}} 42.5
rpc_duration_milliseconds_count{{{common}}} 6
"
    );
    assert_eq!(st.render(false), want);
}

#[test]
fn deltas_add_up_and_stale_points_are_ignored() {
    let st = state_of(serde_json::json!({"endpoint": ":1", "send_timestamps": true}));
    st.accumulate(&rm(vec![sum(
        "c",
        "",
        true,
        vec![number_point(2.0, 10, 20_000_000, vec![])],
    )]));
    st.accumulate(&rm(vec![sum(
        "c",
        "",
        true,
        vec![number_point(3.0, 20_000_000, 30_000_000, vec![])],
    )]));
    // Older than the one held: ignored.
    st.accumulate(&rm(vec![sum(
        "c",
        "",
        true,
        vec![number_point(100.0, 0, 25_000_000, vec![])],
    )]));
    let text = st.render(false);
    assert!(
        text.contains("c_total{instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\"} 5 30\n"),
        "{text}"
    );
    // A type conflict is dropped; no recorded value removes the series.
    let gauge = Metric {
        name: "c_total".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![number_point(1.0, 0, 1, vec![])],
        })),
        ..Default::default()
    };
    assert_eq!(st.accumulate(&rm(vec![gauge])), (0, 1));
    let mut gone = number_point(0.0, 0, 40_000_000, vec![]);
    gone.flags = NO_RECORDED_VALUE;
    st.accumulate(&rm(vec![sum("c", "", true, vec![gone])]));
    assert!(
        !st.render(false).contains("c_total{"),
        "{}",
        st.render(false)
    );
}

#[test]
fn resource_attributes_namespace_and_open_metrics() {
    let st = state_of(serde_json::json!({
        "endpoint": ":1", "namespace": "ns", "enable_open_metrics": true,
        "resource_to_telemetry_conversion": {"enabled": true}, "add_metric_suffixes": false,
    }));
    st.accumulate(&rm(vec![sum(
        "bytes.out",
        "By",
        false,
        vec![number_point(
            4.0,
            1_500_000_000,
            2,
            vec![kv("host.name", "point")],
        )],
    )]));
    let text = st.render(true);
    let labels = "host_name=\"point\",instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\",service_instance_id=\"i-1\",service_name=\"shop\",service_namespace=\"eu\"";
    assert!(text.contains(&format!("# TYPE ns_bytes_out counter\nns_bytes_out_total{{{labels}}} 4\nns_bytes_out_created{{{labels}}} 1.5\n")), "{text}");
    assert!(
        text.contains("# TYPE ns_target_info gauge\nns_target_info{"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn open_metrics_times_are_exact_decimal_seconds() {
    assert_eq!(seconds(1_700_000_000_000_000_000), "1700000000");
    assert_eq!(seconds(1_700_000_000_250_000_000), "1700000000.25");
    assert_eq!(seconds(1_700_000_000_000_000_001), "1700000000.000000001");
    assert_eq!(timestamp(1_700_000_000_123_456_789, true), "1700000000.123");
    assert_eq!(timestamp(1_700_000_000_123_456_789, false), "1700000000123");
}

#[test]
fn config_errors_name_their_field() {
    let err = PrometheusFactory
        .parse(
            &serde_json::json!({"metric_expiration": "0s", "const_labels": {"bad-name": "x"}, "translation_strategy": "NoTranslation"}),
            "exporters.prometheus",
        )
        .err()
        .unwrap()
        .to_string();
    for want in [
        "exporters.prometheus.endpoint: is required",
        "exporters.prometheus.metric_expiration: must be greater than 0",
        "exporters.prometheus.const_labels.bad-name: is not a Prometheus label name",
        "exporters.prometheus.translation_strategy: NoTranslation (UTF-8 names) is not supported",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    let err = PrometheusFactory
        .parse(
            &serde_json::json!({"endpoint": ":1", "sending_queue": {}}),
            "exporters.prometheus",
        )
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("exporters.prometheus.sending_queue: unknown field"),
        "{err}"
    );
    let _ = exporter(serde_json::json!({"endpoint": "127.0.0.1:0"}));
}
