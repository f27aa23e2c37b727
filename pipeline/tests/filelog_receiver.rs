//! The `filelog` receiver with the real binary on real files in a temporary directory,
//! records written by the `file` exporter (one JSON line per batch) and counted exactly:
//! plain files, exclude, start_at, long lines, multiline, rotation by rename and by
//! copytruncate while a writer is writing, a file truncated below its offset, and kill -9
//! with `file_storage` checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// One exported record: body and attributes.
#[derive(Debug, Clone)]
struct Rec {
    body: String,
    attrs: BTreeMap<String, String>,
}

/// The batches in a file exporter's output, each a list of records. A last line cut short
/// (the process was killed while writing it) is left out.
fn batches(path: &Path) -> Vec<Vec<Rec>> {
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

fn records(path: &Path) -> Vec<Rec> {
    batches(path).into_iter().flatten().collect()
}

fn bodies(path: &Path) -> Vec<String> {
    records(path).into_iter().map(|r| r.body).collect()
}

/// Waits until `cond` holds on the output's bodies, or panics with them after `limit`.
fn wait_until(out: &Path, limit: Duration, what: &str, cond: impl Fn(&[String]) -> bool) {
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
fn config(dir: &Path, receiver: &str, out: &Path, extra: &str) -> PathBuf {
    config_with_metrics(dir, receiver, out, extra, "{level: none}")
}

/// [`config`] with `service.telemetry.metrics` as given.
fn config_with_metrics(
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

fn start(dir: &Path, config: &Path) -> Child {
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

fn stop(mut child: Child) {
    support::sigterm(&child);
    support::wait_exit(&mut child, Duration::from_secs(15)).expect("weir did not stop");
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i:06}")).collect()
}

fn append(path: &Path, lines: &[String]) {
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

#[test]
fn plain_files_give_every_line_once_with_file_attributes_and_exclude_holds() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let a = lines("a", 0..3000);
    let b = lines("b", 0..1234);
    append(&logs.join("a.log"), &a);
    // CRLF endings, surrounding blanks and empty lines, and a line longer than max_log_size.
    std::fs::write(
        logs.join("b.log"),
        format!("{}\r\n\r\n   \n", b.join("\r\n")),
    )
    .unwrap();
    let long = "x".repeat(2500);
    append(&logs.join("long.log"), &[long.clone(), "after".into()]);
    append(&logs.join("skip.log"), &lines("skip", 0..10));
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}/*.log']
    exclude: ['**/skip.log']
    start_at: beginning
    poll_interval: 50ms
    max_log_size: 1000
    include_file_path: true
    operators: []",
            logs.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(30), "all lines", |b| {
        b.len() >= 3000 + 1234 + 4
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    let recs = records(&out);
    let of = |name: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r.attrs["log.file.name"] == name)
            .map(|r| r.body.clone())
            .collect()
    };
    assert_eq!(of("a.log"), a);
    assert_eq!(of("b.log"), b);
    assert_eq!(
        of("long.log"),
        vec![
            "x".repeat(1000),
            "x".repeat(1000),
            "x".repeat(500),
            "after".to_string()
        ]
    );
    assert_eq!(of("skip.log"), Vec::<String>::new());
    assert_eq!(recs.len(), 3000 + 1234 + 4);
    for r in &recs {
        let name = &r.attrs["log.file.name"];
        assert_eq!(
            r.attrs["log.file.path"],
            logs.join(name).display().to_string()
        );
    }
}

#[test]
fn start_at_end_reads_only_what_is_written_after_the_first_poll() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    append(&file, &lines("old", 0..500));
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    poll_interval: 50ms",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    std::thread::sleep(Duration::from_millis(500));
    let new = lines("new", 0..700);
    append(&file, &new);
    wait_until(&out, Duration::from_secs(20), "new lines", |b| {
        b.len() >= 700
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    assert_eq!(bodies(&out), new);
}

#[test]
fn files_found_after_the_first_poll_are_read_from_their_start_under_start_at_end() {
    let dir = tempfile::tempdir().unwrap();
    // A directory of its own: weir's log (weir.log in `dir`) must not match.
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}/*.log']
    poll_interval: 50ms
    start_at: end",
            logs.display()
        ),
        &out,
        "",
    );
    append(&logs.join("present.log"), &lines("present", 0..100));
    let weir = start(dir.path(), &cfg);
    std::thread::sleep(Duration::from_millis(500));
    let late = lines("late", 0..321);
    append(&logs.join("late.log"), &late);
    wait_until(&out, Duration::from_secs(20), "late file", |b| {
        b.len() >= 321
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    assert_eq!(bodies(&out), late);
}

#[test]
fn multiline_line_start_pattern_groups_entries_and_flushes_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("java.log");
    let text = "2024-01-01 first\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n2024-01-01 second\n2024-01-02 third\ncontinued\n";
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 50ms
    force_flush_period: 300ms
    include_file_name: false
    multiline:
      line_start_pattern: '^\\d{{4}}-\\d{{2}}-\\d{{2}}'",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "three entries", |b| {
        b.len() >= 3
    });
    std::thread::sleep(Duration::from_millis(600));
    stop(weir);
    let recs = records(&out);
    assert!(recs.iter().all(|r| r.attrs.is_empty()), "{recs:?}");
    assert_eq!(
        bodies(&out),
        vec![
            "2024-01-01 first\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)",
            "2024-01-01 second",
            "2024-01-02 third\ncontinued",
        ]
    );
}

#[test]
fn multiline_line_end_pattern_ends_entries_after_the_match() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.log");
    std::fs::write(&file, "a\nb;\nc\nd\ne;\nf;\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 50ms
    multiline: {{line_end_pattern: ';$'}}",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "three entries", |b| {
        b.len() >= 3
    });
    std::thread::sleep(Duration::from_millis(800));
    stop(weir);
    assert_eq!(bodies(&out), vec!["a\nb;", "c\nd\ne;", "f;"]);
}

/// Writes `total` lines to `path` at a steady pace; every `every` lines `rotate` runs.
fn writer(
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

fn assert_each_once(b: &[String], total: usize) {
    let want = lines("line", 0..total);
    let mut got = b.to_vec();
    got.sort();
    assert_eq!(got.len(), total, "records: {}", got.len());
    assert_eq!(got, want);
}

#[test]
fn rotation_by_rename_while_writing_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    // Only app.log matches: a rotated file is read to its end through the open handle.
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 20ms",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    let total = 12_000;
    let w = writer(file.clone(), total, 2000, |p, n| {
        std::fs::rename(p, p.with_extension(format!("log.{n}"))).unwrap();
        // Give the receiver a poll while the rotated file is still open.
        std::thread::sleep(Duration::from_millis(60));
    });
    w.join().unwrap();
    wait_until(&out, Duration::from_secs(30), "all lines", |b| {
        b.len() >= total
    });
    std::thread::sleep(Duration::from_millis(700));
    stop(weir);
    assert_each_once(&bodies(&out), total);
}

#[test]
fn rotation_by_copytruncate_while_writing_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    // The copies match too: each is known by its fingerprint and read on from the offset.
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}*']
    start_at: beginning
    poll_interval: 20ms",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    let total = 12_000;
    let w = writer(file.clone(), total, 2000, |p, n| {
        std::fs::copy(p, p.with_extension(format!("log.{n}"))).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    w.join().unwrap();
    wait_until(&out, Duration::from_secs(30), "all lines", |b| {
        b.len() >= total
    });
    std::thread::sleep(Duration::from_millis(700));
    stop(weir);
    assert_each_once(&bodies(&out), total);
}

#[test]
fn a_file_truncated_below_its_offset_is_read_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 50ms",
            file.display()
        ),
        &out,
        "",
    );
    // 100 lines of 20 bytes: the first 1000 bytes (the fingerprint) stay the same below.
    let all = lines("same-prefix", 0..100);
    append(&file, &all);
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "first read", |b| {
        b.len() >= 100
    });
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&file, &all[..60]);
    wait_until(&out, Duration::from_secs(20), "re-read", |b| b.len() >= 160);
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    let b = bodies(&out);
    assert_eq!(b[..100], all[..]);
    assert_eq!(b[100..], all[..60]);
}

#[test]
fn unsupported_settings_are_config_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        "    include: ['/tmp/none/*.log']
    encoding: utf-16le
    ordering_criteria: {top_n: 1}
    operators:
      - type: csv_parser",
        &out,
        "",
    );
    let o = support::weir()
        .arg("validate")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("receivers.filelog.operators[0]")
            && text.contains("\"csv_parser\" is not supported"),
        "{text}"
    );
    assert!(
        text.contains("receivers.filelog.encoding") && text.contains("utf-16le"),
        "{text}"
    );
    assert!(
        text.contains("receivers.filelog.ordering_criteria"),
        "{text}"
    );
}

/// kill -9 while tailing a growing file, restart with the same checkpoint: every line
/// arrives, and the only repeats are records of the last batch written before the kill
/// (its offset may not have been saved yet).
#[test]
fn kill_9_and_restart_resumes_from_the_checkpoint_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let state = dir.path().join("state");
    let out1 = dir.path().join("out1.jsonl");
    let out2 = dir.path().join("out2.jsonl");
    let receiver = format!(
        "    include: ['{}']
    start_at: beginning
    poll_interval: 20ms
    storage: file_storage/ckpt",
        file.display()
    );
    let ext = |_: &Path| {
        format!(
            "extensions:
  file_storage/ckpt:
    directory: {}
    create_directory: true
    fsync: true",
            state.display()
        )
    };
    let with_ext = |out: &Path| {
        let cfg = config(dir.path(), &receiver, out, &ext(out));
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            "service:\n",
            "service:\n  extensions: [file_storage/ckpt]\n",
        );
        std::fs::write(&cfg, text).unwrap();
        cfg
    };
    let total = 30_000;
    let cfg1 = with_ext(&out1);
    let mut weir = start(dir.path(), &cfg1);
    let w = writer(file.clone(), total, usize::MAX, |_, _| {});
    // Kill once a good part (not all) has arrived.
    wait_until(&out1, Duration::from_secs(30), "first part", |b| {
        b.len() >= 3000
    });
    weir.kill().unwrap();
    weir.wait().unwrap();
    let first = batches(&out1);
    let got1: usize = first.iter().map(Vec::len).sum();
    let last: Vec<String> = first
        .last()
        .unwrap()
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert!(got1 < total, "the kill came too late to test anything");
    let cfg2 = with_ext(&out2);
    let weir = start(dir.path(), &cfg2);
    w.join().unwrap();
    let start_wait = Instant::now();
    loop {
        let mut seen: std::collections::BTreeSet<String> = bodies(&out1).into_iter().collect();
        seen.extend(bodies(&out2));
        if seen.len() >= total {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(60),
            "only {} distinct lines of {total}",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for b in bodies(&out1).into_iter().chain(bodies(&out2)) {
        *count.entry(b).or_default() += 1;
    }
    // Nothing lost.
    assert_eq!(
        count.keys().cloned().collect::<Vec<_>>(),
        lines("line", 0..total)
    );
    // Repeats: at most twice, only lines of the last batch before the kill.
    let repeated: Vec<&String> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(count.values().all(|n| *n <= 2), "a line came three times");
    assert!(
        repeated.iter().all(|l| last.contains(l)),
        "repeats outside the last batch: {} repeated, last batch {}",
        repeated.len(),
        last.len()
    );
    assert!(repeated.len() <= last.len());
    eprintln!(
        "kill -9 after {got1} records; {} repeated (last batch before the kill: {})",
        repeated.len(),
        last.len()
    );
}

#[test]
fn delete_after_read_removes_each_file_once_it_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("in");
    std::fs::create_dir(&logs).unwrap();
    let a = lines("a", 0..400);
    let b = lines("b", 0..250);
    append(&logs.join("a.log"), &a);
    append(&logs.join("b.log"), &b);
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}/*.log']
    start_at: beginning
    poll_interval: 50ms
    delete_after_read: true",
            logs.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "both files", |b| {
        b.len() >= 650
    });
    let t = Instant::now();
    while std::fs::read_dir(&logs).unwrap().count() > 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "files not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop(weir);
    let recs = records(&out);
    let of = |name: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r.attrs["log.file.name"] == name)
            .map(|r| r.body.clone())
            .collect()
    };
    assert_eq!(of("a.log"), a);
    assert_eq!(of("b.log"), b);
    assert_eq!(recs.len(), 650);
}

#[test]
fn delete_after_read_without_start_at_beginning_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "    include: ['/tmp/none/*.log']
    delete_after_read: true",
        &dir.path().join("out.jsonl"),
        "",
    );
    let o = support::weir()
        .arg("validate")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("receivers.filelog.delete_after_read")
            && text.contains("start_at: beginning"),
        "{text}"
    );
}

#[test]
fn nop_encoding_sends_the_raw_bytes_unsplit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bin.dat");
    let content: Vec<u8> = vec![0x00, 0xff, b'\n', b'a', b'\r', b'\n', 0x80];
    std::fs::write(&file, &content).unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 50ms
    force_flush_period: 200ms
    encoding: nop",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    let t = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("bytesValue") {
            break text;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no record");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    let text = std::fs::read_to_string(&out).unwrap_or(text);
    let mut got = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for r in v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
            .as_array()
            .unwrap()
        {
            got.push(r["body"]["bytesValue"].as_str().unwrap().to_string());
        }
    }
    // OTLP/JSON writes bytes as base64: the seven bytes unchanged, as one record.
    assert_eq!(got, vec!["AP8KYQ0KgA==".to_string()]);
}

#[test]
fn storage_naming_an_extension_that_is_not_configured_fails_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}/*.log']
    storage: file_storage/missing",
            dir.path().display()
        ),
        &dir.path().join("out.jsonl"),
        "",
    );
    let mut child = support::spawn(dir.path(), &cfg, &[]);
    let status =
        support::wait_exit(&mut child, Duration::from_secs(20)).expect("weir kept running");
    assert!(!status.success());
    let log = support::log_of(dir.path());
    assert!(log.contains("file_storage/missing"), "{log}");
}

/// A file known under `start_at: end` is in the checkpoint from the first poll on: lines
/// written while weir is down are read after the restart, not skipped by start_at again.
#[test]
fn lines_written_while_weir_is_down_are_read_after_restart_under_start_at_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    append(&file, &lines("before", 0..200));
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    poll_interval: 50ms
    storage: file_storage",
            file.display()
        ),
        &out,
        &format!(
            "extensions:
  file_storage:
    directory: {}",
            state.display()
        ),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("service:\n", "service:\n  extensions: [file_storage]\n");
    std::fs::write(&cfg, text).unwrap();
    let mut weir = start(dir.path(), &cfg);
    let ckpt = state.join("receiver_filelog.json");
    let t = Instant::now();
    while !ckpt.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no checkpoint written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    weir.kill().unwrap();
    weir.wait().unwrap();
    let down = lines("down", 0..300);
    append(&file, &down);
    let weir = start(dir.path(), &cfg);
    wait_until(
        &out,
        Duration::from_secs(20),
        "lines written while down",
        |b| b.len() >= 300,
    );
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    assert_eq!(bodies(&out), down);
}

#[test]
fn resolved_name_and_path_attributes_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    append(&real.join("target.log"), &lines("t", 0..5));
    let link = dir.path().join("link.log");
    std::os::unix::fs::symlink(real.join("target.log"), &link).unwrap();
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 50ms
    include_file_path: true
    include_file_name_resolved: true
    include_file_path_resolved: true",
            link.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "five lines", |b| {
        b.len() >= 5
    });
    std::thread::sleep(Duration::from_millis(300));
    stop(weir);
    let recs = records(&out);
    assert_eq!(recs.len(), 5);
    let resolved = std::fs::canonicalize(real.join("target.log")).unwrap();
    for r in recs {
        assert_eq!(r.attrs["log.file.name"], "link.log");
        assert_eq!(r.attrs["log.file.path"], link.display().to_string());
        assert_eq!(r.attrs["log.file.name_resolved"], "target.log");
        assert_eq!(
            r.attrs["log.file.path_resolved"],
            resolved.display().to_string()
        );
    }
}

#[test]
fn rotation_by_rename_to_a_name_that_still_matches_is_followed_by_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    // The rotated files match too: each is found under its new name by its fingerprint and
    // read on from its offset, never from the start again.
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}*']
    start_at: beginning
    poll_interval: 20ms",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    let total = 12_000;
    let w = writer(file.clone(), total, 2000, |p, n| {
        std::fs::rename(p, p.with_extension(format!("log.{n}"))).unwrap();
    });
    w.join().unwrap();
    wait_until(&out, Duration::from_secs(30), "all lines", |b| {
        b.len() >= total
    });
    std::thread::sleep(Duration::from_millis(700));
    stop(weir);
    assert_each_once(&bodies(&out), total);
}

/// A file renamed away to a name `include` does not match, with far more unread than one
/// read takes (256 KiB): it is read to its end through the handle kept since the last poll,
/// over as many polls as that needs, before the handle is closed.
#[test]
fn a_file_renamed_away_with_a_large_backlog_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    append(&file, &lines("first", 0..10));
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}']
    start_at: beginning
    poll_interval: 1s",
            file.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "the first lines", |b| {
        b.len() >= 10
    });
    // Between two polls: about 2.3 MB more (nine reads' worth), then the rename.
    let backlog = lines(
        "backlog line with some padding to make it longer",
        0..40_000,
    );
    append(&file, &backlog);
    std::fs::rename(&file, dir.path().join("app.log.1")).unwrap();
    let total = 10 + backlog.len();
    wait_until(&out, Duration::from_secs(30), "the whole backlog", |b| {
        b.len() >= total
    });
    std::thread::sleep(Duration::from_millis(500));
    stop(weir);
    let got = bodies(&out);
    assert_eq!(got.len(), total, "each line once");
    assert_eq!(got[10..], backlog[..], "the backlog in order");
}

/// How many of the process's open file descriptors point into `dir`.
fn open_files_in(pid: u32, dir: &Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir)))
        .count()
}

#[test]
fn max_concurrent_files_bounds_the_files_open_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = std::fs::canonicalize(dir.path()).unwrap().join("many");
    std::fs::create_dir(&logs).unwrap();
    let mut want = Vec::new();
    for f in 0..40 {
        let l = lines(&format!("f{f:02}"), 0..50);
        append(&logs.join(format!("{f:02}.log")), &l);
        want.extend(l);
    }
    let out = dir.path().join("out.jsonl");
    let cfg = config(
        dir.path(),
        &format!(
            "    include: ['{}/*.log']
    start_at: beginning
    poll_interval: 10ms
    max_concurrent_files: 4",
            logs.display()
        ),
        &out,
        "",
    );
    let weir = start(dir.path(), &cfg);
    let mut most = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        most = most.max(open_files_in(weir.id(), &logs));
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_until(&out, Duration::from_secs(20), "all files", |b| {
        b.len() >= 2000
    });
    std::thread::sleep(Duration::from_millis(300));
    stop(weir);
    let mut got = bodies(&out);
    got.sort();
    assert_eq!(got, want);
    assert!(
        most >= 1,
        "never saw an open file: the sampling tests nothing"
    );
    assert!(
        most <= 4,
        "{most} files open at once with max_concurrent_files: 4"
    );
}

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

fn pod_file(logs: &Path, pod_dir: &str, container: &str, n: u32, text: &str) -> PathBuf {
    let dir = logs.join("pods").join(pod_dir).join(container);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{n}.log"));
    std::fs::write(&path, text).unwrap();
    path
}

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

/// Starts weir with the filelog `receiver` (YAML body) checkpointing into `dir/state`
/// (`file_storage/ckpt`, fsync), records to `out`.
fn start_with_storage(dir: &Path, receiver: &str, out: &Path) -> Child {
    let ext = format!(
        "extensions:
  file_storage/ckpt:
    directory: {}
    create_directory: true
    fsync: true",
        dir.join("state").display()
    );
    let receiver = format!("{receiver}\n    storage: file_storage/ckpt");
    let cfg = config(dir, &receiver, out, &ext);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "service:\n",
        "service:\n  extensions: [file_storage/ckpt]\n",
    );
    std::fs::write(&cfg, text).unwrap();
    start(dir, &cfg)
}

/// How often each body arrived in any of `outs`.
fn counts(outs: &[&Path]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for out in outs {
        for b in bodies(out) {
            *count.entry(b).or_default() += 1;
        }
    }
    count
}

/// An entry a recombine operator holds (its next first line has not come yet) survives
/// kill -9: the checkpoint stays at its first line, so after the restart it is read again
/// and, with the line appended meanwhile, arrives whole once. A graceful stop sends what
/// the recombine holds and then moves the checkpoint past it (a third run sends nothing).
#[test]
fn an_entry_held_by_recombine_survives_kill_9_and_a_graceful_stop_flushes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let receiver = format!(
        "    include: ['{}']
    start_at: beginning
    poll_interval: 20ms
    operators:
      - type: recombine
        combine_field: body
        combine_with: \"|\"
        is_first_entry: 'body matches \"^[0-9]{{4}}-\"'
        force_flush_period: 1h",
        file.display()
    );
    std::fs::write(
        &file,
        "2024-01 a\n  cont 1\n2024-02 b\n  cont 2\n  cont 3\n",
    )
    .unwrap();
    let (out1, out2, out3) = (
        dir.path().join("out1.jsonl"),
        dir.path().join("out2.jsonl"),
        dir.path().join("out3.jsonl"),
    );
    let mut weir = start_with_storage(dir.path(), &receiver, &out1);
    wait_until(&out1, Duration::from_secs(20), "the first entry", |b| {
        !b.is_empty()
    });
    // Many polls more: the checkpoint is written after the first entry was taken.
    std::thread::sleep(Duration::from_millis(600));
    weir.kill().unwrap();
    weir.wait().unwrap();
    // The second entry was held (its end is not known yet), not sent.
    assert_eq!(bodies(&out1), vec!["2024-01 a|cont 1"]);

    let weir = start_with_storage(dir.path(), &receiver, &out2);
    append(&file, &["  cont 4".to_string(), "2024-03 c".to_string()]);
    wait_until(
        &out2,
        Duration::from_secs(20),
        "the held entry after the restart",
        |b| b.iter().any(|x| x.starts_with("2024-02")),
    );
    // The third entry is held now; the graceful stop sends it.
    stop(weir);
    let c = counts(&[&out1, &out2]);
    assert_eq!(
        c.keys().cloned().collect::<Vec<_>>(),
        vec![
            "2024-01 a|cont 1".to_string(),
            "2024-02 b|cont 2|cont 3|cont 4".to_string(),
            "2024-03 c".to_string(),
        ],
        "{}",
        support::log_of(dir.path())
    );
    assert_eq!(c["2024-01 a|cont 1"], 1, "the first entry came again");
    assert_eq!(c["2024-02 b|cont 2|cont 3|cont 4"], 1);
    assert_eq!(c["2024-03 c"], 1);

    // After the graceful stop the checkpoint is past everything: nothing comes again.
    let weir = start_with_storage(dir.path(), &receiver, &out3);
    std::thread::sleep(Duration::from_millis(1000));
    stop(weir);
    assert_eq!(bodies(&out3), Vec::<String>::new());
}

/// The container operator's joining of CRI partial lines (logtag P) holds the first parts
/// until the F line: kill -9 in between and a restart give the joined line whole, once.
#[test]
fn a_partial_cri_line_survives_kill_9_and_arrives_joined_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let uid = "12345678-aaaa-bbbb-cccc-1234567890ab";
    let file = pod_file(
        &logs,
        &format!("prod_api-0_{uid}"),
        "server",
        1,
        "2024-04-13T07:59:40.25Z stdout F whole line\n\
         2024-04-13T07:59:41Z stderr P first|\n\
         2024-04-13T07:59:41.1Z stderr P second|\n",
    );
    let receiver = format!(
        "    include: ['{}/pods/*/*/*.log']
    start_at: beginning
    poll_interval: 20ms
    include_file_name: false
    include_file_path: true
    operators:
      - type: container",
        logs.display()
    );
    let (out1, out2) = (dir.path().join("out1.jsonl"), dir.path().join("out2.jsonl"));
    let mut weir = start_with_storage(dir.path(), &receiver, &out1);
    wait_until(&out1, Duration::from_secs(20), "the whole line", |b| {
        !b.is_empty()
    });
    std::thread::sleep(Duration::from_millis(600));
    weir.kill().unwrap();
    weir.wait().unwrap();
    assert_eq!(bodies(&out1), vec!["whole line"]);

    let weir = start_with_storage(dir.path(), &receiver, &out2);
    append(
        &file,
        &["2024-04-13T07:59:41.2Z stderr F third".to_string()],
    );
    wait_until(&out2, Duration::from_secs(20), "the joined line", |b| {
        b.iter().any(|x| x.ends_with("third"))
    });
    std::thread::sleep(Duration::from_millis(300));
    stop(weir);
    let c = counts(&[&out1, &out2]);
    assert_eq!(
        c,
        BTreeMap::from([
            ("first|second|third".to_string(), 1),
            ("whole line".to_string(), 1),
        ]),
        "{}",
        support::log_of(dir.path())
    );
}

/// Without storage a graceful stop still sends what a recombine operator holds.
#[test]
fn a_graceful_stop_sends_the_entry_a_recombine_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    std::fs::write(&file, "2024-01 a\n  cont 1\n2024-02 b\n  cont 2\n").unwrap();
    let receiver = format!(
        "    include: ['{}']
    start_at: beginning
    poll_interval: 20ms
    operators:
      - type: recombine
        combine_field: body
        combine_with: \"|\"
        is_first_entry: 'body matches \"^[0-9]{{4}}-\"'
        force_flush_period: 1h",
        file.display()
    );
    let cfg = config(dir.path(), &receiver, &out, "");
    let weir = start(dir.path(), &cfg);
    wait_until(&out, Duration::from_secs(20), "the first entry", |b| {
        !b.is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bodies(&out), vec!["2024-01 a|cont 1"]);
    stop(weir);
    assert_eq!(
        bodies(&out),
        vec!["2024-01 a|cont 1", "2024-02 b|cont 2"],
        "{}",
        support::log_of(dir.path())
    );
}
