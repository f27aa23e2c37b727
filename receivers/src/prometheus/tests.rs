//! Unit tests of the `prometheus` receiver: config parsing into jobs and targets, and
//! scraping (against loopback servers) into OTLP metrics.

use std::time::{Duration, Instant};

use convert::text_of;
use weir_api::otlp::common::v1::KeyValue;
use weir_api::otlp::metrics::v1::{metric, Metric};
use weir_api::Batch;

use super::config::parse_size;
use super::jobs::{base64_engine, parse_targets, Target};
use super::scrape::Scraper;
use super::*;

fn parse(v: serde_json::Value) -> Result<Box<dyn ReceiverConfig>, ConfigErrors> {
    PrometheusReceiverFactory.parse(&v, "receivers.prometheus")
}

#[test]
fn config_errors_name_their_path() {
    let err = parse(serde_json::json!({"config": {"scrape_configs": [
        {"job_name": "a", "scrape_interval": "5s", "scrape_timeout": "10s",
         "relabel_configs": [{"action": "hashmod", "target_label": "x"}],
         "tls_config": {"cert_file": "c.pem", "ca": "x", "ca_file": "ca.pem", "min_version": "TLS10"},
         "file_sd_configs": [{"files": ["/t/*/x.json"]}, {"files": []}, {"files": ["a.yml"], "refresh_interval": "0s"}],
         "bearer_token": "t", "bearer_token_file": "/nonexistent/token",
         "scheme": "ftp", "static_configs": [{"targets": ["h/x"]}]},
        {"job_name": "a", "body_size_limit": "lots"},
    ]}}))
    .err()
    .unwrap()
    .to_string();
    for want in [
        "receivers.prometheus.config.scrape_configs[0].relabel_configs[0].action: hashmod is not supported by weir yet",
        "receivers.prometheus.config.scrape_configs[0].tls_config.key_file: a client certificate needs both cert_file (or cert) and key_file (or key)",
        "receivers.prometheus.config.scrape_configs[0].tls_config.ca: set ca or ca_file, not both",
        "receivers.prometheus.config.scrape_configs[0].tls_config.min_version: \"TLS10\": weir supports TLS12 and TLS13",
        "receivers.prometheus.config.scrape_configs[0].file_sd_configs[0].files[0]: \"/t/*/x.json\" is not a file_sd pattern",
        "receivers.prometheus.config.scrape_configs[0].file_sd_configs[1].files: must list at least one file pattern",
        "receivers.prometheus.config.scrape_configs[0].file_sd_configs[2].refresh_interval: must be greater than 0",
        "receivers.prometheus.config.scrape_configs[0].bearer_token_file: set one of authorization, bearer_token and bearer_token_file",
        "receivers.prometheus.config.scrape_configs[0].scrape_timeout: must be greater than 0 and at most scrape_interval (5s), got 10s",
        "receivers.prometheus.config.scrape_configs[0].scheme: \"ftp\": must be http or https",
        "receivers.prometheus.config.scrape_configs[0].static_configs[0].targets[0]: \"h/x\" (after relabelling) does not make a URL",
        "receivers.prometheus.config.scrape_configs[1].job_name: \"a\" is used twice",
        "receivers.prometheus.config.scrape_configs[1].body_size_limit: \"lots\" is not a size",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    let err = parse(serde_json::json!({"config": {
        "global": {"scrape_interval": "5s"},
        "scrape_configs": [{"job_name": "a", "bearer_token_file": "/nonexistent/token",
                            "consul_sd_configs": []}]}}))
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.starts_with(
            "receivers.prometheus.config.scrape_configs[0].consul_sd_configs: unknown field"
        ),
        "{err}"
    );
    let err = parse(serde_json::json!({"config": {
        "global": {"scrape_interval": "5s"},
        "scrape_configs": [{"job_name": "a", "bearer_token_file": "/nonexistent/token"}]}}))
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("receivers.prometheus.config.global.scrape_timeout: 10s is longer than global.scrape_interval (5s)"),
        "{err}"
    );
    assert!(
        err.contains("receivers.prometheus.config.scrape_configs[0].bearer_token_file: cannot read /nonexistent/token:"),
        "{err}"
    );
    assert_eq!(base64_engine::encode("u:p"), "dTpw");
    assert_eq!(base64_engine::encode("user:pw"), "dXNlcjpwdw==");
    assert_eq!(parse_size(&serde_json::json!("10MB")), Some(10_000_000));
    assert_eq!(parse_size(&serde_json::json!("1GiB")), Some(1 << 30));
}

fn scraper(honor_labels: bool) -> Scraper {
    struct Discard;
    #[async_trait]
    impl Consumer for Discard {
        async fn consume(&self, _: Batch) -> Result<(), weir_api::ConsumeError> {
            Ok(())
        }
    }
    let target = Target {
        job: "j".into(),
        instance: "127.0.0.1:9".into(),
        url: "http://127.0.0.1:9/metrics".parse().unwrap(),
        scheme: "http".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        honor_labels,
        honor_timestamps: true,
        sample_limit: 0,
        body_limit: DEFAULT_BODY_LIMIT,
        labels: vec![("env".into(), "p".into())],
        auth: None,
        metric_relabel: Arc::new(Vec::new()),
    };
    let tls = weir_tls::ClientTls::plaintext();
    Scraper {
        id: ComponentId::parse("prometheus").unwrap(),
        target,
        client: Client::builder(TokioExecutor::new())
            .build(tls.https_connector(weir_tls::HttpVersions::Http1And2)),
        consumer: Arc::new(Discard),
        conv: convert::Converter::default(),
        post_relabel: 0,
    }
}

fn attrs(m: &Metric) -> Vec<String> {
    let pts: Vec<&Vec<KeyValue>> = match m.data.as_ref().unwrap() {
        metric::Data::Sum(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
        metric::Data::Gauge(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
        metric::Data::Histogram(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
        metric::Data::Summary(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
        _ => vec![],
    };
    pts.iter()
        .map(|a| {
            a.iter()
                .map(|kv| format!("{}={}", kv.key, text_of(kv)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[tokio::test]
async fn honor_timestamps_decides_whose_time_a_point_carries() {
    // The target writes a timestamp (ms) on one sample; the scrape happens at 100 s.
    let text = "# TYPE g gauge\ng{a=\"1\"} 5 1700000000123\ng{a=\"2\"} 6\n";
    let times = |honor: bool| {
        let mut s = scraper(false);
        s.target.honor_timestamps = honor;
        let (m, _) = s.convert(text::parse(text, 0).unwrap(), 100_000_000_000);
        match m[0].data.as_ref().unwrap() {
            metric::Data::Gauge(g) => g
                .data_points
                .iter()
                .map(|p| p.time_unix_nano)
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        }
    };
    // honor_timestamps: true (the default): the target's time where it wrote one.
    assert_eq!(times(true), [1_700_000_000_123_000_000, 100_000_000_000]);
    // false: every point carries the scrape's time.
    assert_eq!(times(false), [100_000_000_000, 100_000_000_000]);
    // A timestamp past what nanoseconds in u64 hold (a hostile target, found by the
    // prometheus_text fuzz target) saturates instead of overflowing.
    let mut s = scraper(false);
    let (m, _) = s.convert(
        text::parse("g 1 9223372036854775807\n", 0).unwrap(),
        100_000_000_000,
    );
    let metric::Data::Gauge(g) = m[0].data.as_ref().unwrap() else {
        panic!("{m:?}")
    };
    assert_eq!(g.data_points[0].time_unix_nano, u64::MAX);
}

#[tokio::test]
async fn conversion_start_times_resets_and_staleness() {
    let mut s = scraper(false);
    let text = "# HELP c_total Count.\n# TYPE c_total counter\nc_total{env=\"x\",m=\"a\"} 5\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2.5\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 7.5\nh_count 4\n# TYPE s summary\ns{quantile=\"0.5\"} 2\ns_sum 3\ns_count 2\nu{job=\"other\"} 1\n";
    let (m, added) = s.convert(text::parse(text, 0).unwrap(), 100);
    assert_eq!(added, 4);
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["c_total", "h", "s", "u"]);
    assert_eq!(m[0].description, "Count.");
    assert_eq!(attrs(&m[0]), ["env=p,exported_env=x,m=a"]);
    assert_eq!(attrs(&m[3]), ["env=p,exported_job=other"]);
    let Some(metric::Data::Histogram(h)) = &m[1].data else {
        panic!()
    };
    let p = &h.data_points[0];
    assert_eq!(
        (
            p.count,
            p.sum,
            p.explicit_bounds.clone(),
            p.bucket_counts.clone(),
            p.start_time_unix_nano
        ),
        (4, Some(7.5), vec![1.0, 2.5], vec![1, 2, 1], 100)
    );
    let Some(metric::Data::Summary(q)) = &m[2].data else {
        panic!()
    };
    assert_eq!((q.data_points[0].count, q.data_points[0].sum), (2, 3.0));
    // Second scrape: the counter grew (start kept), u went away (stale), then a reset.
    let (m, added) = s.convert(
        text::parse("# TYPE c_total counter\nc_total{env=\"x\",m=\"a\"} 9\n", 0).unwrap(),
        200,
    );
    assert_eq!(added, 0);
    let Some(metric::Data::Sum(c)) = &m[0].data else {
        panic!()
    };
    assert_eq!(
        (
            c.data_points[0].start_time_unix_nano,
            c.data_points[0].time_unix_nano
        ),
        (100, 200)
    );
    let stale: Vec<(&str, u32)> = m[1..]
        .iter()
        .map(|m| {
            let flags = match m.data.as_ref().unwrap() {
                metric::Data::Gauge(g) => g.data_points[0].flags,
                metric::Data::Histogram(g) => g.data_points[0].flags,
                metric::Data::Summary(g) => g.data_points[0].flags,
                _ => 0,
            };
            (m.name.as_str(), flags)
        })
        .collect();
    assert_eq!(stale, [("h", 1), ("s", 1), ("u", 1)]);
    let (m, _) = s.convert(
        text::parse("# TYPE c_total counter\nc_total{env=\"x\",m=\"a\"} 2\n", 0).unwrap(),
        300,
    );
    let Some(metric::Data::Sum(c)) = &m[0].data else {
        panic!()
    };
    assert_eq!(c.data_points[0].start_time_unix_nano, 300);
    // honor_labels: the scraped label wins.
    let mut s = scraper(true);
    let (m, _) = s.convert(text::parse("x{env=\"mine\"} 1\n", 0).unwrap(), 1);
    assert_eq!(attrs(&m[0]), ["env=mine"]);
}

#[tokio::test]
async fn openmetrics_conversion() {
    let mut s = scraper(false);
    let text = "# TYPE req counter\n# HELP req Requests.\nreq_total{code=\"200\"} 7 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\",user=\"u\"} 1 1700000000.5\nreq_created{code=\"200\"} 1700000000.25\n# TYPE lat_seconds histogram\n# UNIT lat_seconds seconds\nlat_seconds_bucket{le=\"1\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 2\nlat_seconds_count 2\nlat_seconds_sum 3\nlat_seconds_created 1600000000\n# TYPE b info\nb_info{v=\"1\"} 1\n# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 5\nq_gcount 5\nq_gsum 9\n# TYPE u unknown\nu 1\n# EOF\n";
    let e = text::parse_as(text, text::Format::OpenMetrics, 0).unwrap();
    let (m, added) = s.convert(e, 5_000_000_000_000_000_000);
    let names: Vec<(&str, &str)> = m
        .iter()
        .map(|m| {
            let kind = match m.data.as_ref().unwrap() {
                metric::Data::Sum(x) if x.is_monotonic => "monotonic sum",
                metric::Data::Sum(_) => "sum",
                metric::Data::Gauge(_) => "gauge",
                metric::Data::Histogram(_) => "histogram",
                _ => "other",
            };
            (m.name.as_str(), kind)
        })
        .collect();
    // The gauge histogram is dropped, as the Collector does.
    assert_eq!(
        names,
        [
            ("req", "monotonic sum"),
            ("lat_seconds", "histogram"),
            ("b", "sum"),
            ("st", "sum"),
            ("u", "gauge")
        ]
    );
    assert_eq!(added, 6);
    assert_eq!(s.post_relabel, 14);
    assert_eq!(
        (m[0].description.as_str(), m[1].unit.as_str()),
        ("Requests.", "seconds")
    );
    let Some(metric::Data::Sum(c)) = &m[0].data else {
        panic!()
    };
    let p = &c.data_points[0];
    // `_created` is the start time.
    assert_eq!(p.start_time_unix_nano, 1_700_000_000_250_000_000);
    let x = &p.exemplars[0];
    assert_eq!(
        (
            x.trace_id.len(),
            x.span_id.clone(),
            x.time_unix_nano,
            x.value,
            x.filtered_attributes.len()
        ),
        (
            16,
            vec![0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31],
            1_700_000_000_500_000_000,
            Some(weir_api::otlp::metrics::v1::exemplar::Value::AsDouble(1.0)),
            1
        )
    );
    let Some(metric::Data::Histogram(h)) = &m[1].data else {
        panic!()
    };
    assert_eq!(
        (
            h.data_points[0].start_time_unix_nano,
            h.data_points[0].bucket_counts.clone()
        ),
        (1_600_000_000_000_000_000, vec![1, 1])
    );
    assert_eq!(attrs(&m[3]), ["env=p,st=a", "env=p,st=b"]);
    assert_eq!(attrs(&m[2]), ["env=p,v=1"]);
}

#[tokio::test]
async fn the_series_cache_follows_type_changes_and_relabelled_names() {
    let mut s = scraper(false);
    s.target.metric_relabel = Arc::new(relabel::compile(
        &serde_json::from_value::<Vec<relabel::RelabelConfig>>(serde_json::json!([
            {"source_labels": ["__name__"], "regex": "old_(.*)", "target_label": "__name__", "replacement": "new_$1"},
            {"source_labels": ["drop"], "regex": "yes", "action": "drop"},
        ]))
        .unwrap(),
        "r",
        &mut ConfigErrors::default(),
    ));
    for round in 0..3 {
        // The same series text, typed differently from the second scrape on.
        let text = if round == 0 {
            "old_x{a=\"1\"} 1\nd{drop=\"yes\"} 1\n"
        } else {
            "# TYPE new_x counter\nold_x{a=\"1\"} 2\nd{drop=\"yes\"} 1\n"
        };
        let (m, added) = s.convert(text::parse(text, 0).unwrap(), 100 + round);
        let kinds: Vec<(&str, bool)> = m
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    matches!(m.data, Some(metric::Data::Sum(_))),
                )
            })
            .collect();
        match round {
            0 => assert_eq!((kinds, added), (vec![("new_x", false)], 1)),
            // The counter is a new point; the gauge point goes stale.
            1 => assert_eq!((kinds, added), (vec![("new_x", true), ("new_x", false)], 1)),
            _ => assert_eq!((kinds, added), (vec![("new_x", true)], 0)),
        }
        assert_eq!(s.post_relabel, 1);
    }
}

/// The fuzz target's properties (fuzz/fuzz_targets/prometheus_text.rs) over its seeds and
/// every prefix and single-character change of them: no panic, errors name a line of the
/// body, a second scrape of the same body adds and stales nothing.
#[test]
fn parser_and_conversion_hold_on_mutated_seeds() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/prometheus_text"
    );
    let mut seeds = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let body = String::from_utf8_lossy(&bytes[1..]).to_string();
        // Cut to keep the debug-build run short.
        let cut = body
            .char_indices()
            .nth(2000)
            .map(|(i, _)| i)
            .unwrap_or(body.len());
        seeds.push(body[..cut].to_string());
    }
    assert!(seeds.len() >= 3);
    let check = |body: &str, format| match parse_and_convert_twice(body, format) {
        Ok((_, [_, second])) => assert_eq!(second, (0, 0), "{body:?}"),
        Err(e) => {
            let lines = body.split('\n').count();
            assert!(e.line >= 1 && e.line <= lines, "{e}: {body:?}");
        }
    };
    let mut runs = 0;
    for seed in &seeds {
        for format in [text::Format::Text, text::Format::OpenMetrics] {
            let cuts: Vec<usize> = (0..=seed.len())
                .filter(|i| seed.is_char_boundary(*i))
                .collect();
            for i in cuts.iter().step_by(7) {
                check(&seed[..*i], format);
                for c in ["\"", "\\", "{", "}", "#", " ", "\n", "_total", "=", ","] {
                    let mut m = seed.clone();
                    m.insert_str(*i, c);
                    check(&m, format);
                    runs += 1;
                }
            }
        }
    }
    assert!(runs > 1000, "{runs}");
}

/// A target on loopback that answers every request with `respond` (run on a thread).
fn target_server(respond: fn(std::net::TcpStream)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || respond(s));
        }
    });
    format!("http://{addr}/metrics")
}

fn read_request(s: &mut std::net::TcpStream) {
    let mut buf = [0u8; 2048];
    let _ = std::io::Read::read(s, &mut buf);
}

#[tokio::test]
async fn hostile_targets_fail_with_their_url_and_bounded_memory() {
    use std::io::Write;
    // Never answers.
    let slow = target_server(|mut s| {
        read_request(&mut s);
        std::thread::sleep(Duration::from_secs(5));
    });
    // An endless body.
    let huge = target_server(|mut s| {
        read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        let line = [b'x'; 64 * 1024];
        while s.write_all(&line).is_ok() {}
    });
    // A status other than 200.
    let missing = target_server(|mut s| {
        read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    });
    let mut sc = scraper(false);
    sc.target.timeout = Duration::from_millis(300);
    sc.target.url = slow.parse().unwrap();
    let started = Instant::now();
    let err = sc.fetch().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{slow}: no complete answer within scrape_timeout 300ms")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    sc.target.timeout = Duration::from_secs(10);
    sc.target.body_limit = 1 << 20;
    sc.target.url = huge.parse().unwrap();
    let err = sc.fetch().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{huge}: body larger than body_size_limit (1048576 bytes)"
        )),
        "{err}"
    );

    sc.target.url = missing.parse().unwrap();
    let err = sc.fetch().await.unwrap_err().to_string();
    assert_eq!(err, format!("{missing}: HTTP status 404 Not Found"));

    // Refused connection.
    sc.target.url = "http://127.0.0.1:9/metrics".parse().unwrap();
    let err = sc.fetch().await.unwrap_err().to_string();
    assert!(
        err.starts_with("http://127.0.0.1:9/metrics: cannot scrape:"),
        "{err}"
    );
}

#[test]
fn target_and_metric_relabelling() {
    let targets = parse_targets(
        &serde_json::json!({"config": {"scrape_configs": [{
            "job_name": "j",
            "params": {"module": ["m1"]},
            "static_configs": [{"targets": ["a:1", "b:2", "skip:3"], "labels": {"dc": "x"}}],
            "relabel_configs": [
                {"source_labels": ["__address__"], "regex": "skip:.*", "action": "drop"},
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__address__"], "regex": "(.*):\\d+", "target_label": "instance"},
                {"target_label": "__address__", "replacement": "127.0.0.1:9115"},
                {"target_label": "__metrics_path__", "replacement": "/probe"},
            ],
            "metric_relabel_configs": [
                {"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"},
                {"source_labels": ["__name__"], "regex": "(.*)_old", "target_label": "__name__"},
            ],
        }]}}),
        "r",
    )
    .unwrap();
    type Row = (String, String, String, Vec<(String, String)>);
    let got: Vec<Row> = targets
        .iter()
        .map(|t| {
            (
                t.job.clone(),
                t.instance.clone(),
                t.url.to_string(),
                t.labels.clone(),
            )
        })
        .collect();
    let dc = vec![("dc".to_string(), "x".to_string())];
    assert_eq!(
        got,
        vec![
            (
                "j".into(),
                "a".into(),
                "http://127.0.0.1:9115/probe?module=m1&target=a%3A1".into(),
                dc.clone()
            ),
            (
                "j".into(),
                "b".into(),
                "http://127.0.0.1:9115/probe?module=m1&target=b%3A2".into(),
                dc
            ),
        ]
    );
    let mut s = scraper(false);
    s.target.metric_relabel = targets[0].metric_relabel.clone();
    let (m, _) = s.convert(
        text::parse("go_threads 5\nx_old{a=\"1\"} 2\nkept 1\n", 0).unwrap(),
        1,
    );
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["x", "kept"]);
    assert_eq!(s.post_relabel, 2);
    assert_eq!(attrs(&m[0]), ["a=1,env=p"]);
}
