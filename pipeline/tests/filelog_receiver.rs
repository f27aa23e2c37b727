//! The `filelog` receiver with the real binary on real files in a temporary directory,
//! records written by the `file` exporter (one JSON line per batch) and counted exactly:
//! plain files, exclude, start_at, long lines, multiline, rotation by rename and by
//! copytruncate while a writer is writing, a file truncated below its offset, deletion after
//! reading, symlinks, files renamed away with a backlog, and the open-file bound. Restarts
//! and checkpoints: filelog_restart.rs; operators: filelog_operators.rs; the shared helpers:
//! filelog_common/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod filelog_common;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use filelog_common::{append, bodies, config, lines, records, start, stop, wait_until, writer};

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
