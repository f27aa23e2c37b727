//! The `prometheus` receiver's `file_sd_configs` and `tls_config` against real targets:
//! two node_exporters listed in a target file that the test rewrites while weir and a real
//! Prometheus both watch it (a target added starts its series, a target removed gets its
//! series marked stale, on both sides the same target set), and a node_exporter serving
//! TLS with a certificate of a CA made in the test (scraped with `ca_file` and
//! `server_name`; a job with another CA fails with the certificate error).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prom.rs"]
mod prom;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use prom::{NodeExporter, Prometheus};

/// One point of `name` in weir's output: (job, instance, attributes, flags).
type Point = (String, String, BTreeMap<String, String>, u64);

/// Every point of metric `name` in the file exporter's output, in order.
fn points(out: &Path, name: &str) -> Vec<Point> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut found = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
            let attr = |k: &str| {
                rm["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == k)
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let (job, instance) = (attr("service.name"), attr("service.instance.id"));
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    if m["name"] != name {
                        continue;
                    }
                    let data = ["sum", "gauge", "histogram", "summary"]
                        .into_iter()
                        .map(|k| &m[k])
                        .find(|d| !d.is_null())
                        .unwrap();
                    for p in data["dataPoints"].as_array().into_iter().flatten() {
                        let attrs = p["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| {
                                (
                                    a["key"].as_str().unwrap().to_string(),
                                    a["value"]["stringValue"].as_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect();
                        let flags = p["flags"].as_u64().unwrap_or(0);
                        found.push((job.clone(), instance.clone(), attrs, flags));
                    }
                }
            }
        }
    }
    found
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Prometheus's active targets of `job`: instance → `sd_file` label.
fn prometheus_targets(p: &Prometheus, job: &str) -> BTreeMap<String, String> {
    p.api("targets", &[("state", "active")])["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["labels"]["job"] == job)
        .map(|t| {
            (
                t["labels"]["instance"].as_str().unwrap().to_string(),
                t["labels"]["sd_file"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The instances weir scraped `node_load1` from in the points after `skip`, with their
/// `sd_file` attribute, for non-stale points.
fn weir_instances(pts: &[Point], job: &str) -> BTreeMap<String, String> {
    pts.iter()
        .filter(|p| p.0 == job && p.3 == 0)
        .map(|p| (p.1.clone(), p.2.get("sd_file").cloned().unwrap_or_default()))
        .collect()
}

#[test]
fn file_sd_targets_come_and_go_and_tls_targets_are_scraped() {
    let a = NodeExporter::start(&[]);
    let b = NodeExporter::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("sd");
    std::fs::create_dir(&sd).unwrap();
    let json = sd.join("targets.json");
    let yml = sd.join("more.yml");
    let (ia, ib) = (
        format!("127.0.0.1:{}", a.port),
        format!("127.0.0.1:{}", b.port),
    );
    std::fs::write(
        &json,
        format!(r#"[{{"targets": ["{ia}"], "labels": {{"env": "a"}}}}]"#),
    )
    .unwrap();

    // A node_exporter serving TLS with a certificate for localhost/127.0.0.1 of a test CA.
    let ca = weir_tls::testing::TestCa::new("weir test CA");
    let server = ca.server_cert("node");
    let ca_file = support::write(dir.path(), "ca.pem", &ca.cert_pem());
    let other_ca = support::write(
        dir.path(),
        "other-ca.pem",
        &weir_tls::testing::TestCa::new("other").cert_pem(),
    );
    let cert = support::write(dir.path(), "node.pem", &server.cert_pem);
    let key = support::write(dir.path(), "node.key", &server.key_pem);
    let web = support::write(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            cert.display(),
            key.display()
        ),
    );
    let tls_node = NodeExporter::start(&[&format!("--web.config.file={}", web.display())]);

    // Both sides: the same file_sd config and relabelling (the file path as `sd_file`), a
    // refresh_interval far longer than the test, so that changes are seen by watching.
    let sd_job = |indent: &str| {
        format!(
            "{indent}- job_name: node
{indent}  scrape_interval: 1s
{indent}  file_sd_configs:
{indent}    - files: ['{dir}/*.json', '{dir}/*.yml']
{indent}      refresh_interval: 10m
{indent}  relabel_configs: [{{source_labels: [__meta_filepath], target_label: sd_file}}]
{indent}  metric_relabel_configs: [{{source_labels: [__name__], regex: 'node_load1', action: keep}}]
",
            dir = sd.display()
        )
    };
    let prometheus = Prometheus::start(&sd_job("  "));
    let out = dir.path().join("out.jsonl");
    let telemetry = support::free_port();
    let config = format!(
        "receivers:
  prometheus:
    config:
      scrape_configs:
{sd}        - job_name: tls
          scrape_interval: 1s
          scheme: https
          tls_config: {{ca_file: {ca}, server_name: localhost}}
          static_configs: [{{targets: ['127.0.0.1:{tls}']}}]
          metric_relabel_configs: [{{source_labels: [__name__], regex: 'node_load1', action: keep}}]
        - job_name: tls_other_ca
          scrape_interval: 1s
          scheme: https
          tls_config: {{ca_file: {other}}}
          static_configs: [{{targets: ['127.0.0.1:{tls}']}}]
exporters:
  file:
    path: {out}
    flush_interval: 0s
service:
  telemetry:
    metrics: {{address: '127.0.0.1:{telemetry}'}}
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [file]}}
",
        sd = sd_job("        "),
        ca = ca_file.display(),
        other = other_ca.display(),
        tls = tls_node.port,
        out = out.display(),
    );
    let config_path = support::write(dir.path(), "weir.yaml", &config);
    let mut weir = support::spawn(dir.path(), &config_path, &[]);
    let jp = json.display().to_string();
    let yp = yml.display().to_string();

    // 1. Only A, from the JSON file, on both sides.
    let want1: BTreeMap<String, String> = [(ia.clone(), jp.clone())].into();
    assert!(
        wait_until(Duration::from_secs(30), || weir_instances(
            &points(&out, "node_load1"),
            "node"
        ) == want1
            && prometheus_targets(&prometheus, "node") == want1),
        "step 1: weir {:?}, prometheus {:?}\n{}",
        weir_instances(&points(&out, "node_load1"), "node"),
        prometheus_targets(&prometheus, "node"),
        support::log_of(dir.path())
    );
    let env: BTreeSet<String> = points(&out, "node_load1")
        .iter()
        .filter(|p| p.0 == "node")
        .map(|p| p.2.get("env").cloned().unwrap_or_default())
        .collect();
    assert_eq!(env, BTreeSet::from(["a".to_string()]));

    // 2. B added in a YAML file.
    std::fs::write(&yml, format!("- targets: ['{ib}']\n")).unwrap();
    let want2: BTreeMap<String, String> =
        [(ia.clone(), jp.clone()), (ib.clone(), yp.clone())].into();
    assert!(
        wait_until(Duration::from_secs(30), || weir_instances(
            &points(&out, "node_load1"),
            "node"
        ) == want2
            && prometheus_targets(&prometheus, "node") == want2),
        "step 2: weir {:?}, prometheus {:?}\n{}",
        weir_instances(&points(&out, "node_load1"), "node"),
        prometheus_targets(&prometheus, "node"),
        support::log_of(dir.path())
    );

    // 3. A removed: its series end with a stale point, and nothing of A comes after it.
    std::fs::write(&json, "[]").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || {
            prometheus_targets(&prometheus, "node") == [(ib.clone(), yp.clone())].into()
                && points(&out, "node_load1")
                    .iter()
                    .any(|p| p.1 == ia && p.3 == 1)
        }),
        "step 3: no stale point for {ia}; prometheus {:?}\n{}",
        prometheus_targets(&prometheus, "node"),
        support::log_of(dir.path())
    );
    // Two more scrapes of B, none of A.
    let before = points(&out, "node_load1").len();
    assert!(wait_until(Duration::from_secs(30), || {
        points(&out, "node_load1")[before..]
            .iter()
            .filter(|p| p.1 == ib)
            .count()
            >= 2
    }));
    let pts = points(&out, "node_load1");
    let stale_at = pts.iter().position(|p| p.1 == ia && p.3 == 1).unwrap();
    assert!(
        pts[stale_at + 1..].iter().all(|p| p.1 != ia),
        "points of {ia} after its stale marker: {:?}",
        &pts[stale_at..]
    );
    assert!(pts[stale_at + 1..].iter().any(|p| p.1 == ib && p.3 == 0));

    // 4. A broken file is named in the log and keeps the targets it last gave.
    std::fs::write(&yml, "- targets: [unclosed\n").unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        support::log_of(dir.path()).contains(&format!(
            "file_sd file {yp}: not a YAML list of target groups"
        ))
    }));
    let before = points(&out, "node_load1").len();
    assert!(wait_until(Duration::from_secs(15), || {
        points(&out, "node_load1")[before..]
            .iter()
            .filter(|p| p.1 == ib && p.3 == 0)
            .count()
            >= 2
    }));

    // 5. TLS: scraped with the right CA, refused with another.
    let tls_points = points(&out, "node_load1");
    assert!(
        tls_points.iter().any(|p| p.0 == "tls" && p.3 == 0),
        "no node_load1 from the TLS target\n{}",
        support::log_of(dir.path())
    );
    let up: Vec<(String, bool)> = {
        let text = std::fs::read_to_string(&out).unwrap();
        let mut v = Vec::new();
        for line in text.lines().filter(|l| l.contains("tls_other_ca")) {
            let j: serde_json::Value = serde_json::from_str(line).unwrap();
            for m in j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
                .as_array()
                .unwrap()
            {
                if m["name"] == "up" {
                    v.push((
                        "tls_other_ca".to_string(),
                        m["gauge"]["dataPoints"][0]["asDouble"] == 1.0,
                    ));
                }
            }
        }
        v
    };
    assert!(!up.is_empty() && up.iter().all(|(_, ok)| !ok), "{up:?}");
    let log = support::log_of(dir.path());
    assert!(
        log.contains(&format!(
            "https://127.0.0.1:{}/metrics: cannot scrape:",
            tls_node.port
        )) && log.contains("UnknownIssuer"),
        "{log}"
    );

    support::sigterm(&weir);
    assert!(support::wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
