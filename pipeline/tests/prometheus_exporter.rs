//! The `prometheus` exporter scraped by a real Prometheus (Debian's package, started on
//! loopback): OTLP metrics of every kind go into a real `weir`, Prometheus scrapes the
//! exporter's endpoint, and the series Prometheus stored (its HTTP API) are compared
//! exactly: names, labels and values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prom.rs"]
mod prom;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point::ValueAtQuantile, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prom::{free_port, http, Prometheus};
use weir_api::fixtures::kv;

fn int_point(v: i64, start: u64, time: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}

fn double_point(v: f64, start: u64, time: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        value: Some(number_data_point::Value::AsDouble(v)),
        ..int_point(0, start, time, attrs)
    }
}

fn sum(
    name: &str,
    unit: &str,
    temporality: i32,
    monotonic: bool,
    p: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} help"),
        data: Some(metric::Data::Sum(Sum {
            data_points: p,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
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
                    name: "weir-test".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Labels as Prometheus returns them, from `k=v` pairs.
fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

#[test]
fn prometheus_scrapes_every_metric_kind_with_the_collectors_names() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, p1, p2, telemetry) = (free_port(), free_port(), free_port(), free_port());
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
exporters:
  prometheus:
    endpoint: '127.0.0.1:{p1}'
  prometheus/r2t:
    endpoint: '127.0.0.1:{p2}'
    namespace: r2t
    const_labels: {{region: eu-west}}
    add_metric_suffixes: false
    resource_to_telemetry_conversion: {{enabled: true}}
service:
  telemetry:
    metrics: {{address: '127.0.0.1:{telemetry}'}}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus, prometheus/r2t]}}
"
    );
    let config_path = support::write(dir.path(), "weir.yaml", &config);
    let mut weir = support::spawn(dir.path(), &config_path, &[]);
    assert!(
        support::wait_for_status(p1, "/metrics", 200, Duration::from_secs(30)).is_some(),
        "weir's prometheus endpoint did not come up:\n{}",
        support::log_of(dir.path())
    );

    let t0 = now_ns() - 60_000_000_000;
    let t1 = now_ns() - 30_000_000_000;
    let t2 = now_ns();
    let first = request(vec![
        sum(
            "http.server.requests",
            "{request}",
            2,
            true,
            vec![
                int_point(7, t0, t2, vec![kv("http.method", "GET")]),
                int_point(3, t0, t2, vec![kv("http.method", "POST")]),
            ],
        ),
        sum(
            "queue.depth",
            "{item}",
            2,
            false,
            vec![double_point(-2.5, t0, t2, vec![])],
        ),
        // Delta counter: this point and the next one add up.
        sum("jobs.done", "", 1, true, vec![int_point(2, t0, t1, vec![])]),
        Metric {
            name: "cpu.utilization".into(),
            unit: "1".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![double_point(0.25, 0, t2, vec![kv("cpu", "0")])],
            })),
            ..Default::default()
        },
        Metric {
            name: "rpc.duration".into(),
            unit: "ms".into(),
            description: "RPC latency".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: t0,
                    time_unix_nano: t2,
                    count: 10,
                    sum: Some(321.5),
                    explicit_bounds: vec![5.0, 10.0, 100.0],
                    bucket_counts: vec![1, 2, 3, 4],
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
                    start_time_unix_nano: t0,
                    time_unix_nano: t2,
                    count: 4,
                    sum: 0.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.01,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 0.2,
                        },
                    ],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ]);
    let second = request(vec![sum(
        "jobs.done",
        "",
        1,
        true,
        vec![int_point(3, t1, t2, vec![])],
    )]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = MetricsServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        client.export(first).await.unwrap();
        client.export(second).await.unwrap();
    });

    let prometheus = Prometheus::start(&format!(
        "  - job_name: weir
    honor_labels: true
    static_configs: [{{targets: ['127.0.0.1:{p1}']}}]
  - job_name: weir-r2t
    honor_labels: true
    static_configs: [{{targets: ['127.0.0.1:{p2}']}}]
"
    ));
    // Both targets scraped at least once.
    let scraped = prometheus.wait_for(Duration::from_secs(30), |p| {
        let up = p.query("up");
        (up.len() == 2 && up.iter().all(|(_, v)| v == "1")).then_some(up)
    });
    assert!(
        scraped.is_some(),
        "prometheus never scraped both targets: {:?}\n{}",
        prometheus.query("up"),
        prometheus.log()
    );

    let scope = [
        ("instance", "i-1"),
        ("job", "eu/shop"),
        ("otel_scope_name", "weir-test"),
        ("otel_scope_version", "1.2"),
    ];
    let series = |name: &str, extra: &[(&str, &str)], value: &str| {
        let mut l: Vec<(&str, &str)> = scope.to_vec();
        l.push(("__name__", name));
        l.extend_from_slice(extra);
        (labels(&l), value.to_string())
    };
    let mut want = vec![
        (
            labels(&[
                ("__name__", "target_info"),
                ("host_name", "h1"),
                ("instance", "i-1"),
                ("job", "eu/shop"),
            ]),
            "1".to_string(),
        ),
        series("http_server_requests_total", &[("http_method", "GET")], "7"),
        series(
            "http_server_requests_total",
            &[("http_method", "POST")],
            "3",
        ),
        series("queue_depth", &[], "-2.5"),
        series("jobs_done_total", &[], "5"),
        series("cpu_utilization_ratio", &[("cpu", "0")], "0.25"),
        series("rpc_duration_milliseconds_bucket", &[("le", "5")], "1"),
        series("rpc_duration_milliseconds_bucket", &[("le", "10")], "3"),
        series("rpc_duration_milliseconds_bucket", &[("le", "100")], "6"),
        series("rpc_duration_milliseconds_bucket", &[("le", "+Inf")], "10"),
        series("rpc_duration_milliseconds_sum", &[], "321.5"),
        series("rpc_duration_milliseconds_count", &[], "10"),
        series("gc_pause_seconds", &[("quantile", "0.5")], "0.01"),
        series("gc_pause_seconds", &[("quantile", "0.99")], "0.2"),
        series("gc_pause_seconds_sum", &[], "0.5"),
        series("gc_pause_seconds_count", &[], "4"),
    ];
    want.sort();
    let got = prometheus.query(r#"{job="eu/shop", __name__!~"r2t_.*"}"#);
    assert_eq!(got, want, "\nweir log:\n{}", support::log_of(dir.path()));
    // Every sample exposed was ingested: the scrape's own count agrees.
    let scraped = prometheus.query(r#"scrape_samples_scraped{job="weir"}"#);
    assert_eq!(scraped.len(), 1);
    assert_eq!(scraped[0].1, want.len().to_string());
    // Prometheus kept the metadata: types and help.
    let meta = prometheus.api("metadata", &[("metric", "rpc_duration_milliseconds")]);
    assert_eq!(meta["rpc_duration_milliseconds"][0]["type"], "histogram");
    assert_eq!(meta["rpc_duration_milliseconds"][0]["help"], "RPC latency");
    let meta = prometheus.api("metadata", &[("metric", "jobs_done_total")]);
    assert_eq!(meta["jobs_done_total"][0]["type"], "counter");

    // The second exporter: namespace, const_labels, resource attributes as labels, no
    // suffixes.
    let got = prometheus.query(r#"{__name__=~"r2t_(http_server_requests|target_info)"}"#);
    let r2t = |name: &str, extra: &[(&str, &str)], value: &str| {
        let mut l: Vec<(&str, &str)> = scope.to_vec();
        l.extend_from_slice(&[
            ("__name__", name),
            ("host_name", "h1"),
            ("region", "eu-west"),
            ("service_instance_id", "i-1"),
            ("service_name", "shop"),
            ("service_namespace", "eu"),
        ]);
        l.extend_from_slice(extra);
        (labels(&l), value.to_string())
    };
    let mut want = vec![
        r2t("r2t_http_server_requests", &[("http_method", "GET")], "7"),
        r2t("r2t_http_server_requests", &[("http_method", "POST")], "3"),
        (
            labels(&[
                ("__name__", "r2t_target_info"),
                ("host_name", "h1"),
                ("instance", "i-1"),
                ("job", "eu/shop"),
            ]),
            "1".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    // Anything but GET /metrics is refused; the endpoint is plain text 0.0.4.
    assert_eq!(http(p1, "GET", "/other", b"").unwrap().0, 404);
    assert_eq!(http(p1, "POST", "/metrics", b"x").unwrap().0, 405);

    support::sigterm(&weir);
    assert!(support::wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}

/// A GET with headers; the response's head and body.
fn get_with(port: u16, path: &str, headers: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn open_metrics_with_timestamps_and_expiration() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, port, telemetry) = (free_port(), free_port(), free_port());
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
exporters:
  prometheus:
    endpoint: '127.0.0.1:{port}'
    enable_open_metrics: true
    send_timestamps: true
    metric_expiration: 5s
service:
  telemetry:
    metrics: {{address: '127.0.0.1:{telemetry}'}}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
"
    );
    let config_path = support::write(dir.path(), "weir.yaml", &config);
    let mut weir = support::spawn(dir.path(), &config_path, &[]);
    assert!(
        support::wait_for_status(port, "/metrics", 200, Duration::from_secs(30)).is_some(),
        "{}",
        support::log_of(dir.path())
    );
    // Prometheus starts first, so that it scrapes well within metric_expiration.
    let prometheus = Prometheus::start(&format!(
        "  - job_name: weir
    honor_labels: true
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
"
    ));
    // Its first scrape comes a few seconds after start (target discovery is throttled).
    assert!(
        prometheus
            .wait_for(Duration::from_secs(20), |p| (!p
                .query(r#"up{job="weir"}"#)
                .is_empty())
            .then_some(()))
            .is_some(),
        "{}",
        prometheus.log()
    );
    // Whole seconds: Prometheus 2.42 turns OpenMetrics' float seconds into milliseconds by
    // truncation, which can lose a millisecond of a fractional time.
    let t_s = now_ns() / 1_000_000_000 - 5;
    let t = t_s * 1_000_000_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = MetricsServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        client
            .export(request(vec![
                sum(
                    "jobs.done",
                    "",
                    2,
                    true,
                    vec![int_point(42, t - 60_000_000_000, t, vec![])],
                ),
                Metric {
                    name: "temperature".into(),
                    unit: "Cel".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![double_point(21.5, 0, t, vec![])],
                    })),
                    ..Default::default()
                },
            ]))
            .await
            .unwrap();
    });
    let sent = std::time::Instant::now();
    // Asked for OpenMetrics, the endpoint answers in it.
    let (head, body) = get_with(
        port,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0\r\n",
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    let labels =
        "instance=\"i-1\",job=\"eu/shop\",otel_scope_name=\"weir-test\",otel_scope_version=\"1.2\"";
    for want in [
        format!("# TYPE jobs_done counter\njobs_done_total{{{labels}}} 42 {t_s}\njobs_done_created{{{labels}}} {} {t_s}\n", t_s - 60),
        format!("# TYPE temperature_celsius gauge\ntemperature_celsius{{{labels}}} 21.5 {t_s}\n"),
    ] {
        assert!(body.contains(&want), "missing {want:?} in\n{body}");
    }
    assert!(body.ends_with("# EOF\n"), "{body}");

    // A real Prometheus has been scraping it (it asks for OpenMetrics first); it stores
    // the points at weir's timestamps.
    let got = prometheus.wait_for(Duration::from_secs(20), |p| {
        let s = p.samples(r#"{__name__=~"jobs_done_total|temperature_celsius"}[10m]"#);
        (s.len() == 2).then_some(s)
    });
    let got = got.unwrap_or_else(|| {
        panic!(
            "not scraped: {:?}\n{}",
            prometheus.query(r#"{job="weir"}"#),
            prometheus.log()
        )
    });
    let ms = (t_s * 1000) as i64;
    let names: Vec<(String, Vec<(i64, String)>)> = got
        .into_iter()
        .map(|(l, v)| {
            (
                l.iter().find(|(k, _)| k == "__name__").unwrap().1.clone(),
                v,
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("jobs_done_total".to_string(), vec![(ms, "42".to_string())]),
            (
                "temperature_celsius".to_string(),
                vec![(ms, "21.5".to_string())]
            ),
        ]
    );
    assert_eq!(prometheus.query(r#"up{job="weir"}"#)[0].1, "1");

    // metric_expiration: nothing updated them for 5 s, so the endpoint stops serving them.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(sent.elapsed()));
    let (_, body) = get_with(port, "/metrics", "");
    assert!(!body.contains("jobs_done_total"), "{body}");
    assert!(!body.contains("temperature_celsius"), "{body}");

    support::sigterm(&weir);
    assert!(support::wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
