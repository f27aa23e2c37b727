//! The `prometheus` receiver against a real OpenMetrics target: the official Python client
//! (Debian's `python3-prometheus-client`), which serves OpenMetrics when asked, as
//! Prometheus asks. A real Prometheus scrapes the same target; the families and types weir
//! produced are compared with Prometheus's target metadata, the series names with what
//! Prometheus stored, and counters' start times with the `_created` samples Prometheus
//! stored. Gauge histograms are dropped (as the Collector does) and `_created` samples
//! become start times rather than series (Prometheus 2.42 stores them as series).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prom.rs"]
mod prom;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prom::{free_port, Prometheus};

/// The Python target; killed on drop.
struct PyTarget {
    port: u16,
    child: Child,
}

impl Drop for PyTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn python_target(dir: &std::path::Path) -> PyTarget {
    // Debian's package installs into the system Python.
    let python = "/usr/bin/python3";
    let ok = Command::new(python)
        .args(["-c", "import prometheus_client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the Python Prometheus client is not installed; this test runs the real thing. \
         Install Debian's `python3-prometheus-client` (scripts/test.sh does it)"
    );
    let port = free_port();
    let script = support::write(
        dir,
        "target.py",
        &format!(
            r#"
import time
from prometheus_client import start_http_server, Counter, Gauge, Histogram, Summary, Info, Enum
from prometheus_client.core import GaugeHistogramMetricFamily, REGISTRY
c = Counter('weir_requests', 'Requests served.', ['code'])
c.labels('200').inc(7, exemplar={{'trace_id': '{TRACE}'}})
c.labels('500').inc(2)
Counter('weir_bytes', 'Bytes.', unit='bytes').inc(1024)
Gauge('weir_temperature', 'Temperature.', unit='celsius').set(21.5)
h = Histogram('weir_latency_seconds', 'Latency.', buckets=[0.1, 0.5, 1])
for v in (0.05, 0.2, 0.7, 3):
    h.observe(v)
s = Summary('weir_size', 'Size.')
s.observe(4)
s.observe(6)
Info('weir_build', 'Build.').info({{'version': '1.2.3', 'revision': 'abc'}})
Enum('weir_state', 'State.', states=['starting', 'running']).state('running')
class GH:
    def collect(self):
        yield GaugeHistogramMetricFamily('weir_queue', 'Queue.', buckets=[('1', 2), ('+Inf', 5)], gsum_value=9)
REGISTRY.register(GH())
start_http_server({port}, addr='127.0.0.1')
while True:
    time.sleep(1)
"#
        ),
    );
    let child = Command::new(python)
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = PyTarget { port, child };
    assert!(
        support::wait_for_status(port, "/metrics", 200, Duration::from_secs(30)).is_some(),
        "the Python target did not start"
    );
    t
}

/// Per family: (OTLP kind, the JSON of its first data point), from the file exporter.
fn ours(path: &std::path::Path) -> BTreeMap<String, (String, serde_json::Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    let kind = ["sum", "gauge", "histogram", "summary"]
                        .into_iter()
                        .find(|k| !m[*k].is_null())
                        .unwrap_or("?");
                    let point = m[kind]["dataPoints"][0].clone();
                    out.insert(
                        m["name"].as_str().unwrap().to_string(),
                        (kind.to_string(), point),
                    );
                }
            }
        }
    }
    out
}

#[test]
fn scrapes_openmetrics_like_prometheus_does() {
    let dir = tempfile::tempdir().unwrap();
    let target = python_target(dir.path());
    // What the target serves when asked as Prometheus asks.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", target.port)).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n"
    )
    .unwrap();
    let mut served = String::new();
    s.read_to_string(&mut served).unwrap();
    assert!(
        served.contains("Content-Type: application/openmetrics-text")
            && served.ends_with("# EOF\n"),
        "{served}"
    );

    let prometheus = Prometheus::start(&format!(
        "  - job_name: om\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
        target.port
    ));
    let out = dir.path().join("out.jsonl");
    let telemetry = free_port();
    let config = format!(
        "receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: om
          scrape_interval: 1s
          static_configs: [{{targets: ['127.0.0.1:{port}']}}]
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
        port = target.port,
        out = out.display(),
    );
    let config_path = support::write(dir.path(), "weir.yaml", &config);
    let mut weir = support::spawn(dir.path(), &config_path, &[]);
    let scrape_metrics = [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ];

    let check = |p: &Prometheus| -> Option<()> {
        let ours = ours(&out);
        let meta = p.api("targets/metadata", &[("match_target", "{job=\"om\"}")]);
        let theirs: BTreeMap<String, String> = meta
            .as_array()?
            .iter()
            .map(|m| {
                (
                    m["metric"].as_str().unwrap().to_string(),
                    m["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if !theirs.contains_key("weir_queue") {
            return None;
        }
        // Families and types: Prometheus's, less the gauge histogram, in OTLP kinds.
        let want: BTreeMap<String, String> = theirs
            .iter()
            .filter(|(_, t)| *t != "gaugehistogram")
            .map(|(n, t)| {
                let kind = match t.as_str() {
                    "counter" | "info" | "stateset" => "sum",
                    "gauge" | "unknown" | "untyped" => "gauge",
                    other => other,
                };
                (n.clone(), kind.to_string())
            })
            .collect();
        let got: BTreeMap<String, String> = ours
            .iter()
            .filter(|(n, _)| !scrape_metrics.contains(&n.as_str()))
            .map(|(n, (k, _))| (n.clone(), k.clone()))
            .collect();
        if got != want {
            eprintln!("families: weir {got:?}\nprometheus {want:?}");
            return None;
        }
        // Series names: what Prometheus stored, less `_created` series and the gauge
        // histogram's, against ours named by their Prometheus type.
        let stored: BTreeSet<String> = p
            .api("label/__name__/values", &[("match[]", "{job=\"om\"}")])
            .as_array()?
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .filter(|n| !n.starts_with("weir_queue"))
            .filter(|n| {
                !n.strip_suffix("_created").is_some_and(|base| {
                    matches!(
                        theirs.get(base).map(String::as_str),
                        Some("counter" | "histogram" | "summary")
                    )
                })
            })
            .collect();
        let mut ours_series = BTreeSet::new();
        for n in ours.keys() {
            let names: Vec<String> = match theirs.get(n).map(String::as_str) {
                Some("counter") => vec![format!("{n}_total")],
                Some("info") => vec![format!("{n}_info")],
                Some("histogram") => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{n}{s}"))
                    .collect(),
                Some("summary") => {
                    let q = ours[n].1["quantileValues"]
                        .as_array()
                        .is_some_and(|q| !q.is_empty());
                    let mut v = vec![format!("{n}_sum"), format!("{n}_count")];
                    if q {
                        v.push(n.clone());
                    }
                    v
                }
                _ => vec![n.clone()],
            };
            ours_series.extend(names);
        }
        if ours_series != stored {
            eprintln!(
                "series: only weir {:?}\nonly prometheus {:?}",
                ours_series.difference(&stored).collect::<Vec<_>>(),
                stored.difference(&ours_series).collect::<Vec<_>>()
            );
            return None;
        }
        Some(())
    };
    let same = prometheus.wait_for(Duration::from_secs(30), check);
    let log = support::log_of(dir.path());
    assert!(
        same.is_some(),
        "weir and prometheus disagree (see above)\nweir log:\n{log}"
    );

    let ours = ours(&out);
    // The counter's start time is its `_created` sample, as Prometheus stored it.
    let created = prometheus.query(r#"weir_requests_created{code="200"}"#);
    assert_eq!(created.len(), 1, "{created:?}");
    let created_s: f64 = created[0].1.parse().unwrap();
    let (kind, point) = &ours["weir_requests"];
    assert_eq!(kind, "sum");
    let start_ns: u64 = point["startTimeUnixNano"]
        .as_str()
        .map(|s| s.parse().unwrap())
        .or_else(|| point["startTimeUnixNano"].as_u64())
        .unwrap();
    assert!(
        (start_ns as f64 / 1e9 - created_s).abs() < 1e-3,
        "start {start_ns} vs _created {created_s}"
    );
    // The exemplar's trace id, as the target wrote it.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(&format!("\"traceId\":\"{TRACE}\"")),
        "no exemplar with trace id {TRACE} in the output"
    );
    // Units and the values Prometheus holds.
    assert_eq!(ours["weir_temperature_celsius"].0, "gauge");
    assert!(
        text.contains("\"unit\":\"celsius\""),
        "no unit in the output"
    );
    let bytes = prometheus.query("weir_bytes_total");
    assert_eq!(bytes[0].1, "1024");
    assert_eq!(ours["weir_bytes"].1["asDouble"], 1024.0);
    let (hk, hp) = &ours["weir_latency_seconds"];
    assert_eq!(hk, "histogram");
    assert_eq!(hp["bucketCounts"], serde_json::json!(["1", "1", "1", "1"]));
    assert_eq!(hp["explicitBounds"], serde_json::json!([0.1, 0.5, 1.0]));

    support::sigterm(&weir);
    assert!(support::wait_exit(&mut weir, Duration::from_secs(15)).is_some());
}
