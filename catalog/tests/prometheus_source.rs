//! The read-only Prometheus source (`weir catalog connect prometheus`, the control plane's
//! `sources.prometheus`) against a real Prometheus (Debian's `prometheus` package) scraping a
//! real node_exporter and a synthetic target with a planted high-cardinality label, with one
//! recording and one alerting rule; behind a recording proxy so the test sees every request.
//! Also: hostile answers (malformed, huge, errors) from a fake server, credentials, and the
//! PromQL selector reader.
//!
//! The servers and processes: prometheus_source/servers.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "prometheus_source/servers.rs"]
mod servers;

use clap::Parser;
use common::free_port;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_catalog::analysis::WasteKind;
use weir_catalog::control::ControlPlane;
use weir_catalog::prometheus::promql::{selectors, NameMatch};
use weir_catalog::prometheus::{PromAuth, PromClient};

use servers::{
    api, fake_error, ok_json, proxy, require, serve, state, synthetic_metrics, wait_ready, Proc,
};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: weir_catalog::cli::CatalogCommand,
}

#[test]
fn reads_a_real_prometheus_read_only_and_finds_waste() {
    let prom_bin = require("prometheus", "prometheus");
    let node_bin = require("prometheus-node-exporter", "prometheus-node-exporter");
    let dir = tempfile::tempdir().unwrap();

    let node_port = free_port();
    let mut node = Command::new(node_bin)
        .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&mut node, node_port, "/metrics", "node_exporter");
    let _node = Proc(node);
    let body = synthetic_metrics();
    let (syn_port, _) = serve(move |_, _, _| {
        (
            200,
            format!(
                "Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body.clone().into_bytes(),
        )
    });

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: weir-test\n    rules:\n      - record: job:weir_test_used:rate1m\n        expr: sum by (job) (rate(weir_test_used_total[1m]))\n      - alert: NodeLoadHigh\n        expr: node_load1 > 1000\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n  - job_name: synthetic\n    static_configs: [{{targets: ['127.0.0.1:{syn_port}']}}]\n",
            dir.path().join("rules.yml").display()
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let mut prom = Command::new(prom_bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        // The admin API (TSDB delete, snapshot) on: a reader that used it would be seen.
        .arg("--web.enable-admin-api")
        .arg("--web.enable-lifecycle")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&mut prom, prom_port, "/-/ready", "prometheus");
    let _prom = Proc(prom);
    // Both targets scraped, the recording rule evaluated.
    let start = Instant::now();
    loop {
        let up = api(prom_port, "query", &[("query", "count(up == 1)")]);
        let rec = api(
            prom_port,
            "query",
            &[("query", "count(job:weir_test_used:rate1m)")],
        );
        if up["result"][0]["value"][1] == "2" && rec["result"][0]["value"][1] == "1" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "prometheus did not scrape both targets: {up} {rec}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let before = state(prom_port);

    // weir catalog connect prometheus URL --db ... (through the recording proxy).
    let (proxy_port, seen) = proxy(prom_port);
    let url = format!("http://127.0.0.1:{proxy_port}");
    let db = dir.path().join("catalog.db");
    let cli = Cli::try_parse_from([
        "catalog",
        "connect",
        "prometheus",
        &url,
        "--db",
        db.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(
        weir_catalog::cli::run_catalog(cli.cmd),
        std::process::ExitCode::SUCCESS
    );

    // Read-only: only GET requests to the read API, and the Prometheus is as it was.
    let requests = seen.lock().unwrap().clone();
    assert!(requests.len() >= 7, "{requests:?}");
    for r in &requests {
        assert!(r.starts_with("GET /api/v1/"), "not a read: {r}");
        assert!(!r.contains("/admin/"), "admin API used: {r}");
    }
    for p in [
        "/api/v1/status/tsdb",
        "/api/v1/labels",
        "/api/v1/query?",
        "/api/v1/metadata",
        "/api/v1/rules",
        "/api/v1/targets?",
        "/api/v1/series?",
        "/api/v1/label/user/values?",
    ] {
        assert!(
            requests.iter().any(|r| r.contains(p)),
            "{p} not read: {requests:?}"
        );
    }
    assert_eq!(state(prom_port), before, "the Prometheus changed");

    // The snapshot: series per metric and job exactly as Prometheus counts them.
    let control = ControlPlane::open(&db).unwrap();
    let snaps = control.store().prometheus_snapshots().unwrap();
    assert_eq!(snaps.len(), 1);
    let snap = &snaps[0];
    assert_eq!(snap.source, url);
    let counts = api(
        prom_port,
        "query",
        &[("query", "count by (__name__, job) ({__name__=~\".+\"})")],
    );
    let mut expected = std::collections::BTreeMap::new();
    for r in counts["result"].as_array().unwrap() {
        let name = r["metric"]["__name__"].as_str().unwrap().to_string();
        let job = r["metric"]["job"].as_str().unwrap_or("").to_string();
        let n: u64 = r["value"][1].as_str().unwrap().parse().unwrap();
        expected.insert((name, job), n);
    }
    let mut got = std::collections::BTreeMap::new();
    for (name, m) in &snap.metrics {
        for (job, mj) in &m.jobs {
            got.insert((name.clone(), job.clone()), mj.series);
        }
    }
    assert_eq!(got, expected);
    assert!(expected.len() > 100, "node_exporter metrics are there");
    let sessions = &snap.metrics["weir_test_sessions"];
    assert_eq!(sessions.series, 600);
    assert_eq!(sessions.kind, "gauge");
    let labels = &sessions.jobs["synthetic"].labels;
    assert_eq!(labels["user"], 600);
    assert_eq!(labels["shard"], 3);
    assert_eq!(labels["instance"], 1);
    assert_eq!(labels["job"], 1);
    let user_values = api(prom_port, "label/user/values", &[]);
    assert_eq!(user_values.as_array().unwrap().len(), 600);
    assert_eq!(snap.label_value_counts["user"], 600);
    assert_eq!(snap.label_value_counts["shard"], 3);
    assert_eq!(snap.label_value_counts["job"], 2);
    assert_eq!(
        snap.label_value_counts["__name__"],
        api(prom_port, "label/__name__/values", &[])
            .as_array()
            .unwrap()
            .len() as u64
    );
    assert_eq!(snap.metrics["weir_test_unused_total"].series, 2);
    assert_eq!(snap.metrics["weir_test_unused_total"].kind, "counter");
    assert_eq!(snap.metrics["weir_test_used_total"].used_by_rules, 1);
    assert_eq!(snap.metrics["node_load1"].used_by_rules, 1);
    assert!(snap.metrics["job:weir_test_used:rate1m"].recorded);
    assert_eq!(snap.rules.recording, 1);
    assert_eq!(snap.rules.alerting, 1);
    assert_eq!(snap.jobs["synthetic"].targets, 1);
    assert_eq!(snap.jobs["synthetic"].targets_up, 1);
    assert_eq!(snap.jobs["node"].targets_up, 1);
    // 600 + 1 + 2 scraped (after metric relabelling, of which there is none).
    assert_eq!(snap.jobs["synthetic"].samples_per_scrape, 603);
    let syn_series: u64 = expected
        .iter()
        .filter(|((_, j), _)| j == "synthetic")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(snap.jobs["synthetic"].series, syn_series);
    assert!(snap.head_series >= snap.series());

    // Findings: the planted label, unused metrics, not the ones rules read.
    let advice = control.advice().unwrap();
    let card: Vec<_> = advice
        .findings
        .iter()
        .filter(|f| f.kind == WasteKind::PrometheusLabelCardinality && f.service == "synthetic")
        .collect();
    assert_eq!(card.len(), 1, "{card:#?}");
    let c = card[0];
    assert_eq!(c.service, "synthetic");
    assert_eq!(
        c.title,
        "synthetic: metric weir_test_sessions has 600 series in Prometheus, driven by label user"
    );
    let cs = c.series.as_ref().unwrap();
    assert_eq!((cs.series, cs.saving_series), (600, 600));
    assert!(cs
        .relabel
        .contains("regex: 'weir_test_sessions'\n    action: drop"));
    assert!(cs
        .relabel
        .contains("target_label: user\n    replacement: ''"));
    assert_eq!(c.saving_bytes_per_day, 0.0);
    assert_eq!(
        c.policy["metric"]["match"],
        serde_json::json!([
            {"resource_attribute": ["service.name"], "equals": "synthetic"},
            {"metric_field": "name", "equals": "weir_test_sessions"}
        ])
    );
    let unused = |metric: &str, job: &str| {
        advice.findings.iter().find(|f| {
            f.kind == WasteKind::PrometheusUnusedMetric
                && f.service == job
                && f.title
                    .starts_with(&format!("{job}: metric {metric} is used"))
        })
    };
    let u = unused("weir_test_unused_total", "synthetic").expect("unused metric found");
    assert_eq!(u.series.as_ref().unwrap().saving_series, 2);
    assert!(unused("weir_test_used_total", "synthetic").is_none());
    assert!(unused("node_load1", "node").is_none());
    assert!(unused("job:weir_test_used:rate1m", "synthetic").is_none());
    assert!(unused("up", "node").is_none());
    assert!(unused("node_cpu_seconds_total", "node").is_some());
    // The sessions metric is both: counted once, by the cardinality finding.
    let us = unused("weir_test_sessions", "synthetic").unwrap();
    assert_eq!(us.series.as_ref().unwrap().saving_series, 0);
    assert_eq!(us.overlaps, vec![format!("finding {}", c.id)]);
    let total: u64 = advice
        .findings
        .iter()
        .filter_map(|f| f.series.as_ref())
        .map(|s| s.saving_series)
        .sum();
    assert_eq!(advice.saving_series, total);
    let unused_expected: u64 = expected
        .iter()
        .filter(|((n, j), _)| {
            !j.is_empty()
                && ![
                    "weir_test_used_total",
                    "node_load1",
                    "job:weir_test_used:rate1m",
                ]
                .contains(&n.as_str())
                && !weir_catalog::prometheus::synthetic_metric(n)
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(advice.saving_series, unused_expected);
    assert!(advice.withheld.is_empty(), "{:#?}", advice.withheld);

    // Accepting the cardinality finding covers the metric: its unused finding is withheld.
    control.accept(&c.id, true, "test").unwrap();
    let after = control.advice().unwrap();
    assert_eq!(after.saving_series, unused_expected - 600);
    assert!(after
        .accepted
        .iter()
        .any(|f| f.id == c.id && f.status == "shadow"));
    let w = after.withheld.iter().find(|w| w.id == us.id).unwrap();
    assert_eq!(
        w.reason,
        format!("its series are already covered by policy {}", c.id)
    );

    // The report shows series and the jobs.
    let report = weir_catalog::cli::report_text(&control, 500).unwrap();
    assert!(report.contains(&format!(
        "TOTAL SAVING PROMETHEUS {} series",
        unused_expected - 600
    )));
    assert!(report.contains(&format!("PROMETHEUS {url} read ")));
    let top = format!(
        "  label names with the most values: user 600, __name__ {}, ",
        snap.label_value_counts["__name__"]
    );
    assert!(report.contains(&top), "{top:?} not in\n{report}");
    let row = format!(
        "  {:<28} {:>8} {:>10} {:>12}",
        "synthetic", "1/1", syn_series, 603
    );
    assert!(report.contains(&row), "{row:?} not in\n{report}");

    // The control plane's periodic source (`sources.prometheus` of the extension, built
    // and started as the binary does) reads the same Prometheus.
    let cfg: weir_catalog::prometheus::PromSourceConfig = serde_json::from_value(
        serde_json::json!({"endpoint": format!("http://127.0.0.1:{prom_port}/"), "interval": "1h"}),
    )
    .unwrap();
    assert!(cfg.check().is_empty());
    let control = Arc::new(control);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ext = {
        use weir_api::ExtensionFactory;
        let config = serde_json::json!({
            "endpoint": format!("127.0.0.1:{}", free_port()),
            "storage": db.to_str().unwrap(),
            "sources": {"prometheus": [{"endpoint": format!("http://127.0.0.1:{prom_port}/"), "interval": "1h"}]},
        });
        weir_catalog::component::ControlPlaneFactory
            .parse(&config, "extensions.control_plane")
            .unwrap()
            .build(&weir_api::BuildContext::for_component(
                weir_api::ComponentId::parse("control_plane").unwrap(),
            ))
            .unwrap()
    };
    rt.block_on(ext.start()).unwrap();
    let start = Instant::now();
    while control.store().prometheus_snapshots().unwrap().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no poll");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(ext.shutdown());
    // The poller on its own stops when told to.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = rt.spawn(weir_catalog::prometheus::poll(
        control.clone(),
        cfg,
        "control_plane.sources.prometheus[0]".into(),
        rx,
    ));
    stop.send(true).unwrap();
    rt.block_on(task).unwrap();
    let polled = control.store().prometheus_snapshots().unwrap();
    let p = polled
        .iter()
        .find(|s| s.source == format!("http://127.0.0.1:{prom_port}"))
        .unwrap();
    assert_eq!(p.metrics["weir_test_sessions"].series, 600);
    // Two sources of the same jobs: each (job, metric) is still one finding, counted once.
    let two = control.advice().unwrap();
    let mut ids: Vec<&str> = two.findings.iter().map(|f| f.id.as_str()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a finding appears twice");
    assert_eq!(
        two.findings
            .iter()
            .filter(|f| f.kind == WasteKind::PrometheusUnusedMetric)
            .count(),
        after
            .findings
            .iter()
            .filter(|f| f.kind == WasteKind::PrometheusUnusedMetric)
            .count()
    );
    let total: u64 = two
        .findings
        .iter()
        .filter_map(|f| f.series.as_ref())
        .map(|s| s.saving_series)
        .sum();
    assert_eq!(two.saving_series, total);

    // Privacy: no label value (other than job names) in the database files, decrypted.
    control.store().scrub().unwrap();
    let key = control.store().key().clone();
    let mut plain = Vec::new();
    for f in [db.clone(), PathBuf::from(format!("{}-wal", db.display()))] {
        if f.exists() {
            plain.extend(weir_catalog::at_rest::decrypt_file_pages(&f, &key).unwrap());
        }
    }
    let hay = String::from_utf8_lossy(&plain);
    assert!(
        hay.contains("weir_test_sessions"),
        "the scan reads the stored text"
    );
    for needle in [
        "u-secret-".to_string(),
        "/very/secret/path".to_string(),
        format!("127.0.0.1:{node_port}"),
        format!("127.0.0.1:{syn_port}"),
    ] {
        assert!(!hay.contains(&needle), "{needle} is in the catalog");
    }
    assert!(!hay.contains("\"s1\""), "a shard value is in the catalog");

    // Data subject rights: the job is part of the service's export, and deleting the
    // service removes the job from every snapshot.
    let export = control.export_service("synthetic").unwrap();
    let views = export["prometheus"].as_array().unwrap();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0]["metrics"]["weir_test_sessions"]["series"], 600);
    assert_eq!(views[0]["job"]["targets_up"], 1);
    assert_eq!(control.delete_service("synthetic", "test").unwrap(), 2);
    for s in control.store().prometheus_snapshots().unwrap() {
        assert!(!s.jobs.contains_key("synthetic"));
        assert!(!s.metrics.contains_key("weir_test_sessions"));
        assert!(s.metrics.contains_key("node_load1"));
    }
    assert!(control
        .advice()
        .unwrap()
        .findings
        .iter()
        .all(|f| f.service != "synthetic"));
    // Forgetting a source removes its snapshot only.
    assert!(control.store().delete_prometheus_source(&url).unwrap());
    assert!(!control.store().delete_prometheus_source(&url).unwrap());
    let left = control.store().prometheus_snapshots().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].source, format!("http://127.0.0.1:{prom_port}"));
}

#[test]
fn hostile_answers_give_clear_errors_naming_the_api_path() {
    // Not JSON.
    let (e, seen) = fake_error(
        |_, _, _| ok_json("{\"status\":\"success\",\"data\":{"),
        1 << 20,
    );
    assert!(
        e.starts_with("prometheus http://127.0.0.1:")
            && e.contains(": GET /api/v1/status/tsdb: the answer is not JSON: "),
        "{e}"
    );
    assert_eq!(seen.len(), 1);
    assert!(seen[0].starts_with("GET /api/v1/status/tsdb HTTP/1.1"));

    // Too large, announced by Content-Length.
    let (e, _) = fake_error(|_, _, _| ok_json(&" ".repeat(200_000)), 65_536);
    assert!(
        e.ends_with(
            "GET /api/v1/status/tsdb: the answer is 200000 bytes, above the cap of 65536 bytes"
        ),
        "{e}"
    );

    // Too large, streamed without a length (read up to the cap only).
    let (e, _) = fake_error(|_, _, _| (200, String::new(), vec![b' '; 3 << 20]), 65_536);
    assert!(
        e.ends_with("GET /api/v1/status/tsdb: the answer is larger than the cap of 65536 bytes"),
        "{e}"
    );

    // An error answer.
    let (e, _) = fake_error(
        |_, _, _| {
            let b = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"nope\"}";
            let mut r = ok_json(b);
            r.0 = 400;
            r
        },
        1 << 20,
    );
    assert!(
        e.ends_with("GET /api/v1/status/tsdb: HTTP 400 Bad Request: nope"),
        "{e}"
    );

    // A later path with the wrong shape: the error names it.
    let (e, seen) = fake_error(
        |_, path, _| {
            if path.starts_with("/api/v1/status/tsdb") {
                ok_json("{\"status\":\"success\",\"data\":{\"headStats\":{\"numSeries\":3}}}")
            } else if path.starts_with("/api/v1/labels") {
                ok_json("{\"status\":\"success\",\"data\":[\"job\"]}")
            } else if path.starts_with("/api/v1/label/job/values") {
                ok_json("{\"status\":\"success\",\"data\":[\"a\",\"b\"]}")
            } else {
                ok_json(
                    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
                )
            }
        },
        1 << 20,
    );
    assert!(
        e.ends_with("GET /api/v1/query: the answer is not an instant vector"),
        "{e}"
    );
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|r| r.starts_with("GET ")));

    // Nothing listening.
    let port = free_port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt.block_on(async {
        let c = PromClient::new(
            &format!("http://127.0.0.1:{port}"),
            PromAuth::None,
            &weir_tls::ClientTls::plaintext(),
            1 << 20,
            Duration::from_secs(5),
        )
        .unwrap();
        c.get("status/tsdb", &[]).await.unwrap_err().to_string()
    });
    assert!(e.contains("GET /api/v1/status/tsdb: cannot connect"), "{e}");
}

#[test]
fn credentials_are_sent_and_urls_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let tok = dir.path().join("tok");
    std::fs::write(&tok, "tok-123\n").unwrap();
    let (port, _) = serve(|_, _, head| {
        let auth = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("authorization: ")
                    .or(l.strip_prefix("Authorization: "))
            })
            .unwrap_or("")
            .to_string();
        ok_json(&format!("{{\"status\":\"success\",\"data\":{:?}}}", auth))
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |auth: PromAuth| {
        rt.block_on(async {
            let c = PromClient::new(
                &format!("http://127.0.0.1:{port}/"),
                auth,
                &weir_tls::ClientTls::plaintext(),
                1 << 20,
                Duration::from_secs(5),
            )
            .unwrap();
            c.get("labels", &[]).await.unwrap()
        })
    };
    let basic = PromAuth::from_files(Some("weir"), Some(&pw), None).unwrap();
    // base64("weir:s3cret")
    assert_eq!(get(basic), "Basic d2VpcjpzM2NyZXQ=");
    let bearer = PromAuth::from_files(None, None, Some(&tok)).unwrap();
    assert_eq!(get(bearer), "Bearer tok-123");
    assert_eq!(get(PromAuth::None), "");
    assert!(PromAuth::from_files(Some("weir"), None, None).is_err());
    assert!(PromAuth::from_files(Some("weir"), Some(&pw), Some(&tok)).is_err());
    assert_eq!(
        format!("{:?}", PromAuth::Bearer("x".into())),
        "bearer (redacted)"
    );

    let check = weir_catalog::prometheus::check_url;
    assert_eq!(check("http://p:9090/prom/").unwrap(), "http://p:9090/prom");
    assert!(check("http://u:pw@p:9090")
        .unwrap_err()
        .contains("credentials in the URL"));
    assert!(check("ftp://p").is_err());
    assert!(check("http://p:9090/?x=1").is_err());

    // The control plane's config: errors name the field.
    use weir_api::ExtensionFactory;
    let bad = serde_json::json!({"sources": {"prometheus": [{"endpoint": "prom:9090", "interval": "0s"}]}});
    let errs = weir_catalog::component::ControlPlaneFactory
        .parse(&bad, "extensions.control_plane")
        .err()
        .unwrap();
    let paths: Vec<String> = errs.0.iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "extensions.control_plane.sources.prometheus[0].endpoint",
            "extensions.control_plane.sources.prometheus[0].interval"
        ]
    );
    let good = serde_json::json!({"sources": {"prometheus": [{"endpoint": "http://prom:9090", "interval": "5m", "bearer_token_file": "/t"}]}});
    assert!(weir_catalog::component::ControlPlaneFactory
        .parse(&good, "extensions.control_plane")
        .is_ok());
}

fn names(expr: &str) -> Vec<String> {
    selectors(expr)
        .into_iter()
        .map(|s| match s.name {
            Some(NameMatch::Equal(n)) => n,
            Some(NameMatch::Regex(_)) => "=~".into(),
            Some(NameMatch::NotEqual(_)) => "!=".into(),
            Some(NameMatch::NotRegex(_)) => "!~".into(),
            None => format!("{{job={:?}}}", s.job),
        })
        .collect()
}

#[test]
fn promql_selectors_name_the_metrics_rules_read() {
    assert_eq!(
        names("sum by (job, instance) (rate(http_requests_total{code=~\"5..\"}[5m])) / on(job) group_left(instance) up"),
        vec!["http_requests_total", "up"]
    );
    assert_eq!(
        names("histogram_quantile(0.9, sum without (pod) (rate(x_bucket[5m] offset 1h)))"),
        vec!["x_bucket"]
    );
    assert_eq!(
        names("label_replace(up, \"dst\", \"$1\", \"src\", \"(.*)\") or vector(1) and absent(foo)"),
        vec!["up", "foo"]
    );
    assert_eq!(
        names("count_values(\"value\", build_info) > bool 1e3 + NaN - Inf"),
        vec!["build_info"]
    );
    assert_eq!(
        names(
            "max_over_time(a:b:c[1h:5m]) unless ignoring(le) b # a comment naming not_a_metric\n"
        ),
        vec!["a:b:c", "b"]
    );
    assert_eq!(
        names("{job=\"node\", mode!=\"idle\"}"),
        vec!["{job=Some(\"node\")}"]
    );
    let s = selectors("{__name__=~\"node_cpu.*|node_load1\", job=\"node\"}");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].job.as_deref(), Some("node"));
    assert!(s[0].may_match("node_cpu_seconds_total"));
    assert!(s[0].may_match("node_load1"));
    assert!(
        !s[0].may_match("node_load15"),
        "anchored as Prometheus does"
    );
    let s = selectors("{__name__!=\"up\"}");
    assert!(!s[0].may_match("up") && s[0].may_match("x"));
    let s = selectors("foo{__name__=~\"(\"}");
    assert!(
        s[0].may_match("anything"),
        "an invalid regex may match anything"
    );
    assert_eq!(
        names("{\"my.utf8.metric\", x=\"y\"}"),
        vec!["my.utf8.metric"]
    );
}
