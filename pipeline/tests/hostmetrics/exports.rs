//! Reading what the file exporter wrote: every exported point by metric (with its type,
//! unit and attributes), the per-process resources, and /proc/meminfo values.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::collector::SCOPE;

/// One data point: attributes and value.
#[derive(Debug, Clone)]
pub struct Point {
    pub attrs: BTreeMap<String, String>,
    pub start: u64,
    pub value: f64,
    pub int: bool,
}

/// One metric of one export: scope, unit, type, points.
#[derive(Debug, Clone)]
pub struct Seen {
    pub scope: String,
    pub unit: String,
    pub kind: String,
    pub points: Vec<Point>,
}

/// Every export in the file, in order: metric name → what it was.
pub fn exports(path: &Path) -> Vec<BTreeMap<String, Seen>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut export = BTreeMap::new();
        for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                let scope = sm["scope"]["name"].as_str().unwrap_or("").to_string();
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    let (kind, data) = if !m["gauge"].is_null() {
                        ("gauge".to_string(), &m["gauge"])
                    } else {
                        let s = &m["sum"];
                        assert_eq!(s["aggregationTemporality"], 2, "cumulative: {m}");
                        let mono = s["isMonotonic"].as_bool().unwrap_or(false);
                        (if mono { "counter" } else { "updown" }.to_string(), s)
                    };
                    let points = data["dataPoints"]
                        .as_array()
                        .expect("a metric without points is not sent")
                        .iter()
                        .map(|p| {
                            let attrs = p["attributes"]
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
                            let (value, int) = match (&p["asInt"], &p["asDouble"]) {
                                (Value::Null, d) => (d.as_f64().unwrap_or(0.0), false),
                                (i, _) => (
                                    i.as_str()
                                        .map(|s| s.parse().unwrap())
                                        .or_else(|| i.as_f64())
                                        .unwrap(),
                                    true,
                                ),
                            };
                            let start = p["startTimeUnixNano"]
                                .as_str()
                                .map(|s| s.parse().unwrap())
                                .or_else(|| p["startTimeUnixNano"].as_u64())
                                .unwrap_or(0);
                            Point {
                                attrs,
                                start,
                                value,
                                int,
                            }
                        })
                        .collect();
                    export.insert(
                        m["name"].as_str().unwrap().to_string(),
                        Seen {
                            scope: scope.clone(),
                            unit: m["unit"].as_str().unwrap_or("").to_string(),
                            kind,
                            points,
                        },
                    );
                }
            }
        }
        out.push(export);
    }
    out
}

/// The process resources of the last export: resource attributes (ints as text) and metrics.
#[allow(clippy::type_complexity)]
pub fn processes_of(path: &Path) -> Vec<(BTreeMap<String, String>, Vec<Value>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let Some(line) = text.lines().last() else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(line).unwrap();
    let mut out = Vec::new();
    for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
        let attrs: BTreeMap<String, String> = rm["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let v = &a["value"];
                let v = v["stringValue"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| v["intValue"].as_str().map(str::to_string))
                    .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))
                    .unwrap();
                (a["key"].as_str().unwrap().to_string(), v)
            })
            .collect();
        if !attrs.contains_key("process.pid") {
            continue;
        }
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            assert_eq!(sm["scope"]["name"], format!("{SCOPE}processscraper"));
            out.push((attrs.clone(), sm["metrics"].as_array().unwrap().clone()));
        }
    }
    out
}

pub fn meminfo_kb(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn key(p: &Point) -> String {
    format!("{:?}", p.attrs)
}
