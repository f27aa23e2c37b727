//! The `filelog` receiver's operators with the real binary on real files: the container
//! operator on Docker, CRI-O and containerd files under /var/log/pods, json and regex
//! parsers with severity and time through a router, and bad lines counted and logged once
//! while the file keeps going.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod filelog_common;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use filelog_common::{config_with_metrics, pod_file, start, stop};

/// One run of weir on files: a temporary directory with `logs/` for the files and the file
/// exporter's output beside it.
struct Setup {
    dir: tempfile::TempDir,
    logs: PathBuf,
    out: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let out = dir.path().join("out.jsonl");
        Setup { dir, logs, out }
    }

    /// Starts weir with `receiver` (the filelog receiver's YAML body, `{logs}` replaced by
    /// the logs directory) and `service.telemetry.metrics` as given.
    fn start(&self, receiver: &str, metrics: &str) -> Child {
        let receiver = receiver.replace("{logs}", &self.logs.display().to_string());
        let cfg = config_with_metrics(self.dir.path(), &receiver, &self.out, "", metrics);
        start(self.dir.path(), &cfg)
    }

    /// Waits for `n` records in the output (then a little more, so extra ones would show).
    fn wait_records(&self, n: usize) {
        let start = Instant::now();
        while full_records(&self.out).len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "gave up waiting for {n} records: {:?}\n{}",
                full_records(&self.out),
                support::log_of(self.dir.path())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(400));
    }
}

/// One exported record with everything the operators set.
#[derive(Debug, Clone, PartialEq)]
struct Full {
    resource: BTreeMap<String, String>,
    body: serde_json::Value,
    attrs: BTreeMap<String, serde_json::Value>,
    time: u64,
    severity: i64,
    severity_text: String,
}

fn num(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn full_records(path: &Path) -> Vec<Full> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for rl in v["resourceLogs"].as_array().into_iter().flatten() {
            let resource: BTreeMap<String, String> = rl["resource"]["attributes"]
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
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    out.push(Full {
                        resource: resource.clone(),
                        body: r["body"].clone(),
                        attrs: r["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| (a["key"].as_str().unwrap().to_string(), a["value"].clone()))
                            .collect(),
                        time: num(&r["timeUnixNano"]),
                        severity: num(&r["severityNumber"]) as i64,
                        severity_text: r["severityText"].as_str().unwrap_or("").to_string(),
                    });
                }
            }
        }
    }
    out
}

fn sv(s: &str) -> serde_json::Value {
    serde_json::json!({ "stringValue": s })
}

/// 2024-04-13T07:59:37Z in nanoseconds.
const T0: u64 = 1_712_995_177_000_000_000;
const SEC: u64 = 1_000_000_000;

fn k8s(
    ns: &str,
    pod: &str,
    uid: &str,
    container: &str,
    restarts: &str,
) -> BTreeMap<String, String> {
    [
        ("k8s.container.name", container),
        ("k8s.container.restart_count", restarts),
        ("k8s.namespace.name", ns),
        ("k8s.pod.name", pod),
        ("k8s.pod.uid", uid),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn container_operator_parses_docker_crio_and_containerd_files_under_var_log_pods() {
    let s = Setup::new();
    let docker_uid = "0a1b2c3d-1111-2222-3333-444455556666";
    let crio_uid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    let ctrd_uid = "12345678-aaaa-bbbb-cccc-1234567890ab";
    let docker = pod_file(
        &s.logs,
        &format!("default_web-1_{docker_uid}"),
        "app",
        0,
        concat!(
            r#"{"log":"docker one\n","stream":"stdout","time":"2024-04-13T07:59:37.123456789Z"}"#,
            "\n",
            r#"{"log":"docker two\n","stream":"stderr","time":"2024-04-13T07:59:38Z"}"#,
            "\n"
        ),
    );
    let crio = pod_file(
        &s.logs,
        &format!("kube-system_dns-7_{crio_uid}"),
        "coredns",
        3,
        "2024-04-13T09:59:37.5+02:00 stdout P first half|\n\
         2024-04-13T09:59:37.6+02:00 stdout F |second half\n\
         2024-04-13T09:59:39.000000001+02:00 stderr F crio whole\n",
    );
    let ctrd = pod_file(
        &s.logs,
        &format!("prod_api-0_{ctrd_uid}"),
        "server",
        1,
        "2024-04-13T07:59:40.25Z stdout F containerd line\n\
         2024-04-13T07:59:41Z stderr P half|\n\
         2024-04-13T07:59:41.5Z stderr F |and half\n",
    );
    let weir = s.start(
        "    include: ['{logs}/pods/*/*/*.log']
    start_at: beginning
    poll_interval: 50ms
    include_file_name: false
    include_file_path: true
    operators:
      - type: container",
        "{level: none}",
    );
    s.wait_records(6);
    stop(weir);
    let mut got = full_records(&s.out);
    got.sort_by_key(|r| r.time);
    let rec = |res: BTreeMap<String, String>,
               body: &str,
               path: &Path,
               stream: &str,
               logtag: Option<&str>,
               time: u64| {
        let mut attrs: BTreeMap<String, serde_json::Value> = [
            ("log.file.path".to_string(), sv(&path.display().to_string())),
            ("log.iostream".to_string(), sv(stream)),
        ]
        .into();
        if let Some(t) = logtag {
            attrs.insert("logtag".into(), sv(t));
        }
        Full {
            resource: res,
            body: sv(body),
            attrs,
            time,
            severity: 0,
            severity_text: String::new(),
        }
    };
    let d = || k8s("default", "web-1", docker_uid, "app", "0");
    let c = || k8s("kube-system", "dns-7", crio_uid, "coredns", "3");
    let t = || k8s("prod", "api-0", ctrd_uid, "server", "1");
    let want = vec![
        rec(
            d(),
            "docker one\n",
            &docker,
            "stdout",
            None,
            T0 + 123_456_789,
        ),
        // cri-o's partial line and its end: one record with the first one's time and tag.
        rec(
            c(),
            "first half||second half",
            &crio,
            "stdout",
            Some("P"),
            T0 + SEC / 2,
        ),
        rec(d(), "docker two\n", &docker, "stderr", None, T0 + SEC),
        rec(
            c(),
            "crio whole",
            &crio,
            "stderr",
            Some("F"),
            T0 + 2 * SEC + 1,
        ),
        rec(
            t(),
            "containerd line",
            &ctrd,
            "stdout",
            Some("F"),
            T0 + 3 * SEC + SEC / 4,
        ),
        rec(
            t(),
            "half||and half",
            &ctrd,
            "stderr",
            Some("P"),
            T0 + 4 * SEC,
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn json_and_regex_files_get_severity_and_time_through_a_router() {
    let s = Setup::new();
    std::fs::write(
        s.logs.join("app.json"),
        "{\"time\":\"2024-04-13 07:59:37.250\",\"level\":\"error\",\"msg\":\"boom\",\"n\":3}\n\
         {\"time\":\"2024-04-13 07:59:38.000\",\"level\":\"INFO\",\"msg\":\"ok\",\"n\":4}\n",
    )
    .unwrap();
    std::fs::write(
        s.logs.join("app.log"),
        "2024-04-13T09:59:39+02:00 WARN [db] slow query ms=250\n\
         2024-04-13T07:59:40Z DEBUG [http] GET /\n",
    )
    .unwrap();
    let weir = s.start(
        r#"    include: ['{logs}/app.*']
    start_at: beginning
    poll_interval: 50ms
    operators:
      - type: router
        routes:
          - expr: 'attributes["log.file.name"] == "app.json"'
            output: json
        default: text
      - type: json_parser
        id: json
        timestamp: {parse_from: attributes.time, layout: '%Y-%m-%d %H:%M:%S.%L', location: UTC}
        severity: {parse_from: attributes.level}
        output: tidy
      - type: regex_parser
        id: text
        regex: '^(?P<time>\S+) (?P<sev>\w+) \[(?P<component>\w+)\] (?P<msg>.*)$'
        timestamp: {parse_from: attributes.time, layout_type: gotime, layout: '2006-01-02T15:04:05Z07:00'}
        severity: {parse_from: attributes.sev}
        output: tidy
      - type: move
        id: tidy
        from: attributes.msg
        to: body
      - type: remove
        field: attributes.time"#,
        "{level: none}",
    );
    s.wait_records(4);
    stop(weir);
    let mut got = full_records(&s.out);
    got.sort_by_key(|r| r.time);
    let attrs = |pairs: &[(&str, serde_json::Value)]| -> BTreeMap<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let full = |body: &str, a, time, severity, text: &str| Full {
        resource: BTreeMap::new(),
        body: sv(body),
        attrs: a,
        time,
        severity,
        severity_text: text.into(),
    };
    let want = vec![
        full(
            "boom",
            attrs(&[
                ("level", sv("error")),
                ("log.file.name", sv("app.json")),
                ("n", serde_json::json!({"doubleValue": 3.0})),
            ]),
            T0 + SEC / 4,
            17,
            "error",
        ),
        full(
            "ok",
            attrs(&[
                ("level", sv("INFO")),
                ("log.file.name", sv("app.json")),
                ("n", serde_json::json!({"doubleValue": 4.0})),
            ]),
            T0 + SEC,
            9,
            "INFO",
        ),
        full(
            "slow query ms=250",
            attrs(&[
                ("component", sv("db")),
                ("log.file.name", sv("app.log")),
                ("sev", sv("WARN")),
            ]),
            T0 + 2 * SEC,
            13,
            "WARN",
        ),
        full(
            "GET /",
            attrs(&[
                ("component", sv("http")),
                ("log.file.name", sv("app.log")),
                ("sev", sv("DEBUG")),
            ]),
            T0 + 3 * SEC,
            5,
            "DEBUG",
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn bad_lines_in_the_middle_are_counted_logged_once_and_the_file_keeps_going() {
    let s = Setup::new();
    let mut text = String::new();
    let bad = [50, 100, 150];
    for i in 0..200 {
        if bad.contains(&i) {
            text.push_str(&format!("not json {i}\n"));
        } else {
            text.push_str(&format!("{{\"i\":\"{i:03}\"}}\n"));
        }
    }
    std::fs::write(s.logs.join("a.log"), text).unwrap();
    let port = support::free_port();
    let weir = s.start(
        "    include: ['{logs}/a.log']
    start_at: beginning
    poll_interval: 50ms
    operators:
      - {type: json_parser, id: parse}",
        &format!("{{address: '127.0.0.1:{port}'}}"),
    );
    s.wait_records(200);
    let metrics = support::http_get(port, "/metrics").unwrap().1;
    stop(weir);
    let got = full_records(&s.out);
    assert_eq!(got.len(), 200);
    for (i, r) in got.iter().enumerate() {
        if bad.contains(&i) {
            // on_error: send (the default): the bad line goes on unchanged.
            assert_eq!(r.body, sv(&format!("not json {i}")));
            assert!(!r.attrs.contains_key("i"));
        } else {
            assert_eq!(r.attrs["i"], sv(&format!("{i:03}")), "{i}");
        }
    }
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("weir_receiver_operator_errors") && l.contains("operator=\"parse\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(line.contains("receiver=\"filelog\""), "{line}");
    assert!(line.ends_with(" 3"), "{line}");
    // One log line for the three failures (rate limit: one per operator per 10 s).
    let log = support::log_of(s.dir.path());
    assert_eq!(
        log.matches("operator failed on an entry").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("not json 50") || log.contains("json:"),
        "{log}"
    );
}
