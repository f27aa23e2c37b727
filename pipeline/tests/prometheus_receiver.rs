//! The `prometheus` receiver against real targets: a real node_exporter and a real
//! Prometheus's own /metrics (Debian's packages, started on loopback). Prometheus scrapes
//! the same two targets; the metric families and series names weir produced are compared
//! with what Prometheus itself scraped (its HTTP API), and a target that serves a
//! malformed exposition fails alone, with its URL and line in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prom.rs"]
mod prom;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::Duration;

use prom::{free_port, NodeExporter, Prometheus};

/// Metric families (name → OTLP kind) per `service.name`, from the file exporter's JSON
/// lines; `None` until every job has appeared.
fn families(path: &std::path::Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
            let job = rm["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or("")
                .to_string();
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    let mut kind = ["sum", "gauge", "histogram", "summary"]
                        .into_iter()
                        .find(|k| !m[*k].is_null())
                        .unwrap_or("?");
                    // A summary without quantiles has no series of its own name.
                    if kind == "summary"
                        && m["summary"]["dataPoints"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .all(|p| p["quantileValues"].as_array().is_none_or(|q| q.is_empty()))
                    {
                        kind = "summary without quantiles";
                    }
                    out.entry(job.clone())
                        .or_default()
                        .insert(m["name"].as_str().unwrap().to_string(), kind.to_string());
                }
            }
        }
    }
    out
}

/// The series names a family of this kind is stored under in Prometheus.
fn series_names(name: &str, kind: &str) -> Vec<String> {
    match kind {
        "histogram" => vec![
            format!("{name}_bucket"),
            format!("{name}_sum"),
            format!("{name}_count"),
        ],
        "summary" => vec![
            name.to_string(),
            format!("{name}_sum"),
            format!("{name}_count"),
        ],
        "summary without quantiles" => vec![format!("{name}_sum"), format!("{name}_count")],
        _ => vec![name.to_string()],
    }
}

/// A target that serves a malformed line 3.
fn bad_target() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "# TYPE ok gauge\nok 1\nbroken{a=1} 2\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn scrapes_node_exporter_and_prometheus_like_prometheus_does() {
    let node = NodeExporter::start(&[]);
    let bad = bad_target();
    // Prometheus scrapes node_exporter and itself.
    let self_port = free_port();
    let prometheus = Prometheus::start_on(
        self_port,
        &format!(
            "  - job_name: node
    static_configs: [{{targets: ['127.0.0.1:{node}']}}]
    relabel_configs: [{{source_labels: [__address__], regex: '(.*):\\d+', target_label: host}}]
    metric_relabel_configs: [{{source_labels: [__name__], regex: 'go_.*', action: drop}}]
  - job_name: prometheus
    static_configs: [{{targets: ['127.0.0.1:{self_port}']}}]
",
            node = node.port
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let telemetry = free_port();
    let config = format!(
        "receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: node
          scrape_interval: 1s
          static_configs: [{{targets: ['127.0.0.1:{node}']}}]
          relabel_configs: [{{source_labels: [__address__], regex: '(.*):\\d+', target_label: host}}]
          metric_relabel_configs: [{{source_labels: [__name__], regex: 'go_.*', action: drop}}]
        - job_name: prometheus
          scrape_interval: 1s
          static_configs: [{{targets: ['127.0.0.1:{self_port}']}}]
        - job_name: broken
          scrape_interval: 1s
          static_configs: [{{targets: ['127.0.0.1:{bad}']}}]
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
        node = node.port,
        out = out.display(),
    );
    let config_path = support::write(dir.path(), "weir.yaml", &config);
    let mut weir = support::spawn(dir.path(), &config_path, &[]);

    // Wait for a few scrapes on both sides.
    std::thread::sleep(Duration::from_secs(4));
    let check = |p: &Prometheus| -> Option<()> {
        let ours = families(&out);
        for job in ["node", "prometheus"] {
            let ours = ours.get(job)?;
            // What Prometheus scraped from the same target: families with their types...
            let meta = p.api(
                "targets/metadata",
                &[("match_target", &format!("{{job=\"{job}\"}}"))],
            );
            let theirs: BTreeMap<String, String> = meta
                .as_array()
                .unwrap()
                .iter()
                // Target metadata may list families that metric_relabel_configs drop.
                .filter(|m| !(job == "node" && m["metric"].as_str().unwrap().starts_with("go_")))
                .map(|m| {
                    let kind = match m["type"].as_str().unwrap() {
                        "counter" => "sum",
                        "gauge" | "untyped" | "unknown" => "gauge",
                        other => other,
                    };
                    (m["metric"].as_str().unwrap().to_string(), kind.to_string())
                })
                .collect();
            let scrape_metrics = [
                "up",
                "scrape_duration_seconds",
                "scrape_samples_scraped",
                "scrape_samples_post_metric_relabeling",
                "scrape_series_added",
            ];
            let ours_exposed: BTreeMap<String, String> = ours
                .iter()
                .filter(|(n, _)| !scrape_metrics.contains(&n.as_str()))
                .map(|(n, k)| (n.clone(), k.replace(" without quantiles", "")))
                .collect();
            if ours_exposed != theirs {
                eprintln!(
                    "{job}: only weir: {:?}\nonly prometheus: {:?}",
                    ours_exposed
                        .iter()
                        .filter(|(k, v)| theirs.get(*k) != Some(v))
                        .collect::<Vec<_>>(),
                    theirs
                        .iter()
                        .filter(|(k, v)| ours_exposed.get(*k) != Some(v))
                        .collect::<Vec<_>>()
                );
                return None;
            }
            // ... and the series names it stored, scrape metrics included.
            let stored: BTreeSet<String> = p
                .api(
                    "label/__name__/values",
                    &[("match[]", &format!("{{job=\"{job}\"}}"))],
                )
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let ours_series: BTreeSet<String> =
                ours.iter().flat_map(|(n, k)| series_names(n, k)).collect();
            if ours_series != stored {
                eprintln!(
                    "{job} series: only weir: {:?}\nonly prometheus: {:?}",
                    ours_series.difference(&stored).collect::<Vec<_>>(),
                    stored.difference(&ours_series).collect::<Vec<_>>()
                );
                return None;
            }
        }
        Some(())
    };
    let same = prometheus.wait_for(Duration::from_secs(30), check);
    let log = support::log_of(dir.path());
    assert!(
        same.is_some(),
        "weir and prometheus disagree (see above)\nweir log:\n{log}"
    );
    let ours = families(&out);
    assert!(ours["node"].len() > 100, "{}", ours["node"].len());
    // The malformed target failed alone, named with its line; its `up` is there.
    assert!(
        log.contains(&format!(
            "http://127.0.0.1:{bad}/metrics: line 3: label a: value must be quoted"
        )),
        "{log}"
    );
    assert!(ours["broken"].contains_key("up"), "{:?}", ours["broken"]);
    // Relabelling, the same on both sides: node's go_* families dropped, `host` added.
    assert!(!ours["node"].keys().any(|n| n.starts_with("go_")));
    assert!(ours["node"].contains_key("node_load1"));
    let up = prometheus.query(r#"up{job="node"}"#);
    assert_eq!(up.len(), 1);
    assert!(
        up[0]
            .0
            .contains(&("host".to_string(), "127.0.0.1".to_string())),
        "{up:?}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let line = text.lines().find(|l| l.contains("node_load1")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let node_load1 = v["resourceMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rm| rm["scopeMetrics"].as_array().unwrap())
        .flat_map(|sm| sm["metrics"].as_array().unwrap())
        .find(|m| m["name"] == "node_load1")
        .unwrap()
        .clone();
    assert_eq!(
        node_load1["gauge"]["dataPoints"][0]["attributes"],
        serde_json::json!([{"key": "host", "value": {"stringValue": "127.0.0.1"}}])
    );
    eprintln!(
        "families: node {}, prometheus {}",
        ours["node"].len(),
        ours["prometheus"].len()
    );

    support::sigterm(&weir);
    assert!(support::wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
