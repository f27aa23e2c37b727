//! Unit tests of the `prometheusremotewrite` exporter: config validation and the
//! translation of every metric type into remote-write series.

use std::collections::HashSet;
use std::sync::Mutex;

use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::metrics::v1::{
    metric, Gauge, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, Sum,
};
use weir_api::otlp::metrics::v1::{number_data_point, NumberDataPoint};
use weir_api::otlp::resource::v1::Resource;
use weir_api::ExporterFactory;
use weir_api::Payload;

use super::prompb::TimeSeries;
use super::translate::Translator;
use super::*;

use weir_api::fixtures::kv;

fn translator(max: usize) -> Translator {
    Translator {
        namespace: String::new(),
        add_suffixes: true,
        external_labels: vec![
            ("cluster".into(), "c1".into()),
            ("job".into(), "ext".into()),
        ],
        resource_labels: false,
        target_info: true,
        send_metadata: true,
        max_request_bytes: max,
        warned: Mutex::new(HashSet::new()),
    }
}

fn batch(metrics: Vec<Metric>) -> Batch {
    Batch::new(Payload::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "shop"),
                    kv("service.instance.id", "i-1"),
                    kv("host.name", "h1"),
                ],
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

fn labels(ts: &TimeSeries) -> String {
    ts.labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn series_labels_samples_and_metadata() {
    let t = translator(3_000_000);
    let b = batch(vec![
        Metric {
            name: "req".into(),
            unit: "1".into(),
            description: "requests".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("method", "GET")],
                    time_unix_nano: 2_000_000,
                    value: Some(number_data_point::Value::AsInt(5)),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "lat".into(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: 3_000_000,
                    count: 3,
                    sum: Some(1.5),
                    explicit_bounds: vec![0.5],
                    bucket_counts: vec![1, 2],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "delta".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint::default()],
                aggregation_temporality: 1,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "g".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: 1_000_000,
                    flags: 1,
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ]);
    let (requests, dropped) = t.requests(&b);
    assert_eq!(dropped, 1);
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    let got: Vec<(String, Vec<(String, i64)>)> = r
        .timeseries
        .iter()
        .map(|ts| {
            (
                labels(ts),
                ts.samples
                    .iter()
                    .map(|s| (format!("{:x}", s.value.to_bits()), s.timestamp))
                    .collect(),
            )
        })
        .collect();
    let bits = |v: f64| format!("{:x}", v.to_bits());
    let want = vec![
        (
            "__name__=g,cluster=c1,instance=i-1,job=shop".to_string(),
            vec![(format!("{STALE_NAN:x}"), 1)],
        ),
        (
            "__name__=lat_seconds_bucket,cluster=c1,instance=i-1,job=shop,le=+Inf".into(),
            vec![(bits(3.0), 3)],
        ),
        (
            "__name__=lat_seconds_bucket,cluster=c1,instance=i-1,job=shop,le=0.5".into(),
            vec![(bits(1.0), 3)],
        ),
        (
            "__name__=lat_seconds_count,cluster=c1,instance=i-1,job=shop".into(),
            vec![(bits(3.0), 3)],
        ),
        (
            "__name__=lat_seconds_sum,cluster=c1,instance=i-1,job=shop".into(),
            vec![(bits(1.5), 3)],
        ),
        (
            "__name__=req_total,cluster=c1,instance=i-1,job=shop,method=GET".into(),
            vec![(bits(5.0), 2)],
        ),
        (
            "__name__=target_info,cluster=c1,host_name=h1,instance=i-1,job=shop".into(),
            vec![(bits(1.0), 3)],
        ),
    ];
    assert_eq!(got, want);
    let meta: Vec<(i32, &str, &str)> = r
        .metadata
        .iter()
        .map(|m| (m.r#type, m.metric_family_name.as_str(), m.help.as_str()))
        .collect();
    assert_eq!(
        meta,
        vec![
            (2, "g", ""),
            (3, "lat_seconds", ""),
            (1, "req_total", "requests")
        ]
    );
}

#[test]
fn big_batches_are_split_between_series() {
    let t = translator(200);
    let points: Vec<NumberDataPoint> = (0..20)
        .map(|i| NumberDataPoint {
            attributes: vec![kv("i", format!("{i:02}"))],
            time_unix_nano: 1_000_000,
            value: Some(number_data_point::Value::AsDouble(i as f64)),
            ..Default::default()
        })
        .collect();
    let b = batch(vec![Metric {
        name: "m".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }]);
    let (requests, _) = t.requests(&b);
    assert!(requests.len() > 3, "{}", requests.len());
    let total: usize = requests.iter().map(|r| r.timeseries.len()).sum();
    assert_eq!(total, 21); // 20 series and target_info
    for r in &requests {
        assert!(r.encoded_len() <= 200 + 64, "{}", r.encoded_len());
    }
}

#[test]
fn retryable_statuses_follow_remote_write() {
    let e = |status| SendError::RemoteWriteStatus {
        url: "u".into(),
        status,
        message: String::new(),
        retry_after: None,
    };
    for s in [500, 502, 503, 504, 429] {
        assert!(e(s).is_retryable(), "{s}");
    }
    for s in [400, 401, 403, 404, 413] {
        assert!(!e(s).is_retryable(), "{s}");
    }
}

#[test]
fn config_defaults_and_errors() {
    let s: RemoteWriteSettings =
        serde_json::from_value(serde_json::json!({"endpoint": "http://h/api/v1/write"})).unwrap();
    assert_eq!(s.timeout, Duration::from_secs(5));
    assert_eq!(s.remote_write_queue.queue_size, 10_000);
    assert_eq!(s.remote_write_queue.num_consumers, 5);
    assert_eq!(
        s.retry_on_failure.initial_interval,
        Duration::from_millis(50)
    );
    assert_eq!(s.retry_on_failure.max_interval, Duration::from_millis(200));
    assert_eq!(
        s.retry_on_failure.max_elapsed_time,
        Some(Duration::from_secs(60))
    );
    assert!(s.add_metric_suffixes && s.target_info.enabled && !s.send_metadata);
    let err = RemoteWriteFactory
        .parse(
            &serde_json::json!({"remote_write_queue": {"queue_size": 0}, "external_labels": {"a-b": "x"}, "timeout": "0s"}),
            "exporters.prometheusremotewrite",
        )
        .err()
        .unwrap()
        .to_string();
    for want in [
        "exporters.prometheusremotewrite.endpoint: is required",
        "exporters.prometheusremotewrite.remote_write_queue.queue_size: must be greater than 0",
        "exporters.prometheusremotewrite.external_labels.a-b: is not a Prometheus label name",
        "exporters.prometheusremotewrite.timeout: must be greater than 0",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}
