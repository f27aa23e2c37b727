//! What the `filelog` tests share: weir started on a config with one filelog receiver
//! into the `file` exporter, the records it wrote read back, and files written, appended
//! and rotated while it runs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::support;

/// One exported record: body and attributes.
#[derive(Debug, Clone)]
pub struct Rec {
    pub body: String,
    pub attrs: BTreeMap<String, String>,
}

/// The batches in a file exporter's output, each a list of records. A last line cut short
/// (the process was killed while writing it) is left out.
pub fn batches(path: &Path) -> Vec<Vec<Rec>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let mut batch = Vec::new();
        for rl in v["resourceLogs"].as_array().into_iter().flatten() {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    assert!(r["observedTimeUnixNano"].as_str().is_some(), "{r}");
                    let attrs = r["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            (
                                a["key"].as_str().unwrap().to_string(),
                                a["value"]["stringValue"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect();
                    batch.push(Rec {
                        body: r["body"]["stringValue"].as_str().unwrap().to_string(),
                        attrs,
                    });
                }
            }
        }
        out.push(batch);
    }
    out
}

pub fn records(path: &Path) -> Vec<Rec> {
    batches(path).into_iter().flatten().collect()
}

pub fn bodies(path: &Path) -> Vec<String> {
    records(path).into_iter().map(|r| r.body).collect()
}

/// Waits until `cond` holds on the output's bodies, or panics with them after `limit`.
pub fn wait_until(out: &Path, limit: Duration, what: &str, cond: impl Fn(&[String]) -> bool) {
    let start = Instant::now();
    loop {
        let b = bodies(out);
        if cond(&b) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: gave up after {limit:?} with {} records",
            b.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A config with one filelog receiver (`receiver` is its YAML body) into the file exporter.
pub fn config(dir: &Path, receiver: &str, out: &Path, extra: &str) -> PathBuf {
    config_with_metrics(dir, receiver, out, extra, "{level: none}")
}

/// [`config`] with `service.telemetry.metrics` as given.
pub fn config_with_metrics(
    dir: &Path,
    receiver: &str,
    out: &Path,
    extra: &str,
    metrics: &str,
) -> PathBuf {
    let text = format!(
        "receivers:
  filelog:
{receiver}
exporters:
  file:
    path: {out}
    flush_interval: 0s
{extra}
service:
  telemetry:
    metrics: {metrics}
  pipelines:
    logs: {{receivers: [filelog], exporters: [file]}}
",
        out = out.display()
    );
    support::write(dir, "weir.yaml", &text)
}

pub fn start(dir: &Path, config: &Path) -> Child {
    let child = support::spawn(dir, config, &[]);
    let t = Instant::now();
    while !support::log_of(dir).contains("Weir is running") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "weir did not start: {}",
            support::log_of(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

pub fn stop(mut child: Child) {
    support::sigterm(&child);
    support::wait_exit(&mut child, Duration::from_secs(15)).expect("weir did not stop");
}

pub fn lines(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i:06}")).collect()
}

pub fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    f.write_all(text.as_bytes()).unwrap();
}

/// Writes `total` lines to `path` at a steady pace; every `every` lines `rotate` runs.
pub fn writer(
    path: PathBuf,
    total: usize,
    every: usize,
    rotate: impl Fn(&Path, usize) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        for i in 0..total {
            writeln!(f, "line {i:06}").unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(5));
            }
            if i % every == every - 1 {
                rotate(&path, i / every);
                f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap();
            }
        }
    })
}

pub fn pod_file(logs: &Path, pod_dir: &str, container: &str, n: u32, text: &str) -> PathBuf {
    let dir = logs.join("pods").join(pod_dir).join(container);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{n}.log"));
    std::fs::write(&path, text).unwrap();
    path
}
