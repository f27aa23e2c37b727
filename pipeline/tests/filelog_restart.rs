//! The `filelog` receiver across stops and restarts of the real binary: kill -9 with
//! `file_storage` checkpoints losing nothing, lines written while weir is down, entries held
//! by a recombine operator (or a CRI partial line) surviving kill -9 and sent by a graceful
//! stop, and a storage extension that is not configured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod filelog_common;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use filelog_common::{
    append, batches, bodies, config, lines, pod_file, start, stop, wait_until, writer,
};

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
