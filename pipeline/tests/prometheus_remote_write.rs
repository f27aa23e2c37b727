//! The `prometheusremotewrite` exporter into a real Prometheus (Debian's package, started
//! on loopback with its remote-write receiver): the series are read back through
//! Prometheus's HTTP API and compared exactly (labels, timestamps, values), and a
//! Prometheus restart in the middle of a stream loses no sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prom.rs"]
mod prom;
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point::ValueAtQuantile, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prom::{free_port, Prometheus};
use weir_api::fixtures::kv;

fn point(v: f64, time_ns: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: time_ns - 1_000_000_000,
        time_unix_nano: time_ns,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
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
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

fn start_weir(dir: &std::path::Path, prometheus_port: u16) -> (std::process::Child, u16) {
    let (grpc, telemetry) = (free_port(), free_port());
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{prometheus_port}/api/v1/write
    headers: {{X-Test: weir}}
    external_labels: {{cluster: c1}}
    send_metadata: true
    retry_on_failure: {{max_elapsed_time: 2m}}
service:
  telemetry:
    metrics: {{address: '127.0.0.1:{telemetry}'}}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite]}}
"
    );
    let path = support::write(dir, "weir.yaml", &config);
    let child = support::spawn(dir, &path, &[]);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "weir did not start:\n{}",
            support::log_of(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, grpc)
}

#[test]
fn remote_write_into_prometheus_reads_back_exactly_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut prometheus = Prometheus::start("  []");
    let (mut weir, grpc) = start_weir(dir.path(), prometheus.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut client = rt
        .block_on(MetricsServiceClient::connect(format!(
            "http://127.0.0.1:{grpc}"
        )))
        .unwrap();

    // Every kind, with explicit timestamps.
    let t = (now_ms() - 120_000) * 1_000_000;
    let t_ms = (t / 1_000_000) as i64;
    let kinds = request(vec![
        Metric {
            name: "http.server.requests".into(),
            unit: "{request}".into(),
            description: "Requests served".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![
                    point(7.0, t, vec![kv("http.method", "GET")]),
                    point(9.0, t + 1_000_000_000, vec![kv("http.method", "GET")]),
                ],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "cpu.utilization".into(),
            unit: "1".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![point(0.125, t, vec![kv("cpu", "0")])],
            })),
            ..Default::default()
        },
        Metric {
            name: "rpc.duration".into(),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: t - 1_000_000_000,
                    time_unix_nano: t,
                    count: 10,
                    sum: Some(321.5),
                    explicit_bounds: vec![5.0, 100.0],
                    bucket_counts: vec![1, 5, 4],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "gc.pause".into(),
            unit: "s".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: t,
                    count: 4,
                    sum: 0.5,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.99,
                        value: 0.25,
                    }],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ]);
    rt.block_on(client.export(kinds)).unwrap();

    let base = [("cluster", "c1"), ("instance", "i-1"), ("job", "shop")];
    let s = |name: &str, extra: &[(&str, &str)], samples: &[(i64, &str)]| {
        let mut l = base.to_vec();
        l.push(("__name__", name));
        l.extend_from_slice(extra);
        (
            labels(&l),
            samples
                .iter()
                .map(|(ts, v)| (*ts, v.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    let mut want = vec![
        s(
            "http_server_requests_total",
            &[("http_method", "GET")],
            &[(t_ms, "7"), (t_ms + 1000, "9")],
        ),
        s("cpu_utilization_ratio", &[("cpu", "0")], &[(t_ms, "0.125")]),
        s(
            "rpc_duration_milliseconds_bucket",
            &[("le", "5")],
            &[(t_ms, "1")],
        ),
        s(
            "rpc_duration_milliseconds_bucket",
            &[("le", "100")],
            &[(t_ms, "6")],
        ),
        s(
            "rpc_duration_milliseconds_bucket",
            &[("le", "+Inf")],
            &[(t_ms, "10")],
        ),
        s("rpc_duration_milliseconds_sum", &[], &[(t_ms, "321.5")]),
        s("rpc_duration_milliseconds_count", &[], &[(t_ms, "10")]),
        s(
            "gc_pause_seconds",
            &[("quantile", "0.99")],
            &[(t_ms, "0.25")],
        ),
        s("gc_pause_seconds_sum", &[], &[(t_ms, "0.5")]),
        s("gc_pause_seconds_count", &[], &[(t_ms, "4")]),
        s("target_info", &[("host_name", "h1")], &[(t_ms + 1000, "1")]),
    ];
    want.sort();
    let selector = r#"{job="shop", __name__!="stream_seq"}[10m]"#;
    let got = prometheus.wait_for(Duration::from_secs(20), |p| {
        let got = p.samples(selector);
        (got.len() == want.len()).then_some(got)
    });
    assert_eq!(
        got.as_ref(),
        Some(&want),
        "got {:?}\nweir log:\n{}",
        prometheus.samples(selector),
        support::log_of(dir.path())
    );
    // (send_metadata is on, but Prometheus 2.42's receiver does not store remote-written
    // metadata; the exporter's unit tests check the metadata it sends.)

    // A stream of 400 requests, one sample each, with Prometheus restarted in the middle:
    // every sample arrives, in order, with its exact value.
    let n = 400u64;
    let start_ms = now_ms() - 60_000;
    let mut restarted_at = None;
    for i in 0..n {
        let ts = (start_ms + i * 10) * 1_000_000;
        rt.block_on(client.export(request(vec![gauge(
            "stream.seq",
            vec![point(i as f64, ts, vec![])],
        )])))
        .unwrap();
        if i == n / 3 {
            prometheus.stop();
            restarted_at = Some(Instant::now());
        }
        if i == n / 3 * 2 {
            prometheus.restart();
            eprintln!(
                "prometheus was down for {:?}",
                restarted_at.unwrap().elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let want: Vec<(i64, String)> = (0..n)
        .map(|i| ((start_ms + i * 10) as i64, i.to_string()))
        .collect();
    let got = prometheus.wait_for(Duration::from_secs(60), |p| {
        let got = p.samples(r#"stream_seq[10m]"#);
        (got.len() == 1 && got[0].1.len() == n as usize).then_some(got)
    });
    let got = got.unwrap_or_else(|| {
        let got = prometheus.samples(r#"stream_seq[10m]"#);
        panic!(
            "not every sample arrived: {} of {n}\nweir log:\n{}\nprometheus log:\n{}",
            got.first().map_or(0, |s| s.1.len()),
            support::log_of(dir.path()),
            prometheus.log()
        )
    });
    assert_eq!(
        got[0].0,
        labels(&[
            ("__name__", "stream_seq"),
            ("cluster", "c1"),
            ("instance", "i-1"),
            ("job", "shop")
        ])
    );
    assert_eq!(got[0].1, want);
    // The outage was retried, not dropped.
    let metrics = support::log_of(dir.path());
    assert!(
        metrics.contains("will retry"),
        "no retry logged during the outage:\n{metrics}"
    );
    assert!(!metrics.contains("dropping data"), "{metrics}");

    support::sigterm(&weir);
    assert!(support::wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
