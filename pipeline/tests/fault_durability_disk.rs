//! Fault: the disk under the disk queue fills up (a small tmpfs), a file-size limit is hit
//! (`ulimit -f`), and the queue's files are damaged (bit flips and truncation at random
//! offsets). Weir refuses what it cannot store (retryable), never dies of SIGXFSZ, starts
//! on a full disk and says so, recovers when space returns, and loses to damage exactly the
//! records the damage touched, counting them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fault_durability/harness.rs"]
mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use support::*;

const CONSUMERS: usize = 4;

fn segments(queue: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(queue)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// A tmpfs of `size` mounted on `at`; unmounted on drop. `None` when mounting is not
/// possible here (not root, no mount(8)).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_starts_saying_so_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mnt) = Tmpfs::mount(&dir.path().join("mnt"), "2m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and mount(8))");
        return;
    };
    let queue_dir = dir.path().join("mnt/queue");
    let upstream = free_port();
    let ports = Ports::pick();
    let setup = Setup {
        ports: &ports,
        upstream,
        queue_dir: &queue_dir,
        batch: false,
        queue_size: 100_000,
        num_consumers: CONSUMERS,
        max_size_mib: 64, // more than the disk holds
    };
    let config = write(dir.path(), "weir.yaml", &setup.yaml());
    let sink = Sink::default();
    sink.refuse(true);
    let server = sink.serve(upstream);
    let sender = Arc::new(Sender::default());

    // The disk fills up: weir refuses with a retryable code and says why.
    let mut weir = start_weir(dir.path(), &config, &ports);
    let started = Instant::now();
    while sender.last_refusal.lock().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the disk never filled: {}",
            log_of(dir.path())
        );
        let until = Instant::now() + Duration::from_millis(500);
        sender.send_until(ports.grpc, 500, 3, until).await;
    }
    assert!(weir.try_wait().unwrap().is_none(), "weir died");
    let acked_full = sender.acked().len();
    assert!(acked_full > 0);
    let (code, message) = sender.last_refusal.lock().unwrap().clone().unwrap();
    // Retryable: RESOURCE_EXHAUSTED with a RetryInfo (HTTP would be 503 with Retry-After).
    assert_eq!(code, tonic::Code::ResourceExhausted, "{message}");
    assert!(
        message.contains("the disk is full or a file-size limit was reached"),
        "{message}"
    );
    let log = log_of(dir.path());
    assert!(
        log.contains("the disk holding the disk queue is full; refusing data until there is room"),
        "{log}"
    );

    // kill -9, and the last bytes taken by something else: a restart on a full disk.
    weir.kill().unwrap();
    weir.wait().unwrap();
    let filler = fill(&dir.path().join("mnt"));
    let mut weir = start_weir(dir.path(), &config, &ports);
    let log = log_of(dir.path());
    assert!(log.contains("disk queue: the disk is full"), "{log}");
    assert_eq!(sender.send_n(ports.grpc, 100, 3).await, 0);
    let (code, message) = sender.last_refusal.lock().unwrap().clone().unwrap();
    assert_eq!(code, tonic::Code::ResourceExhausted, "{message}");
    assert!(message.contains("the disk is full"), "{message}");

    // Space returns: the upstream takes the backlog, which frees the queue's files, and
    // new data is accepted again.
    std::fs::remove_file(filler).unwrap();
    sink.refuse(false);
    let acked = sender.acked();
    wait_delivered(&sink, &acked, Duration::from_secs(30)).await;
    assert_eq!(
        sender.send_n(ports.grpc, 100, 5).await,
        5,
        "not accepting again"
    );
    let acked = sender.acked();
    wait_delivered(&sink, &acked, Duration::from_secs(30)).await;
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
    let got = account(&acked, &sink.counts());
    eprintln!(
        "full disk: {} acknowledged ({acked_full} before the disk filled), {} delivered, {} copies",
        got.acked, got.delivered, got.duplicates
    );
    assert!(
        got.missing.is_empty(),
        "lost {:?}",
        &got.missing[..got.missing.len().min(10)]
    );
    // One kill, while the upstream refused: nothing was sent, so nothing is sent twice.
    assert_eq!(got.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_is_an_error_not_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let upstream = free_port();
    let ports = Ports::pick();
    let setup = Setup {
        ports: &ports,
        upstream,
        queue_dir: &queue_dir,
        batch: false,
        queue_size: 100_000,
        num_consumers: CONSUMERS,
        max_size_mib: 64,
    };
    let config = write(dir.path(), "weir.yaml", &setup.yaml());
    let sink = Sink::default();
    sink.refuse(true);
    let server = sink.serve(upstream);
    let sender = Arc::new(Sender::default());
    // 256 KiB a file, far below the 4 MiB segments: every segment hits EFBIG (and the
    // process gets SIGXFSZ) in the middle of a record.
    let log = std::fs::File::create(dir.path().join("weir.log")).unwrap();
    let mut weir = Command::new("bash")
        .args(["-c", "ulimit -f 256 && exec \"$0\" --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_weir"))
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    assert!(
        wait_for_status(ports.health, "/", 200, Duration::from_secs(30)).is_some(),
        "{}",
        log_of(dir.path())
    );
    // Until a few segments were cut short by the limit.
    let started = Instant::now();
    while segments(&queue_dir).len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            log_of(dir.path())
        );
        let until = Instant::now() + Duration::from_millis(500);
        sender.send_until(ports.grpc, 100, 3, until).await;
        if weir.try_wait().unwrap().is_some() {
            break;
        }
    }
    assert!(
        weir.try_wait().unwrap().is_none(),
        "weir died under a file-size limit: {}",
        log_of(dir.path())
    );
    let files = segments(&queue_dir);
    assert!(files.len() > 1, "{files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 256 * 1024, "{f:?}");
    }
    let log = log_of(dir.path());
    assert!(log.contains("a file-size limit was reached"), "{log}");
    sink.refuse(false);
    let acked = sender.acked();
    wait_delivered(&sink, &acked, Duration::from_secs(30)).await;
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
    let got = account(&acked, &sink.counts());
    eprintln!(
        "file-size limit: {} segments, {} acknowledged, {} delivered, {} copies",
        files.len(),
        got.acked,
        got.delivered,
        got.duplicates
    );
    assert!(
        got.missing.is_empty(),
        "lost {:?}",
        &got.missing[..got.missing.len().min(10)]
    );
    assert_eq!(got.duplicates, 0);
}

/// Where each record of a `.wal` segment ends (marker, length, checksum, body).
fn record_ends(data: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        assert_eq!(data[at..at + 4], [0xF7, 0x57, 0x51, 0xA5], "marker at {at}");
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 12 + len;
        ends.push(at);
    }
    assert_eq!(at, data.len());
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bit_flips_and_truncation_cost_exactly_the_records_they_touch() {
    const PER_REQUEST: u64 = 5;
    let mut rng = Rng::from_env_or_time("damaged queue");
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let queue_dir = dir.path().join("queue");
        let upstream = free_port();
        let ports = Ports::pick();
        let setup = Setup {
            ports: &ports,
            upstream,
            queue_dir: &queue_dir,
            batch: false,
            queue_size: 100_000,
            num_consumers: CONSUMERS,
            max_size_mib: 64,
        };
        let config = write(dir.path(), "weir.yaml", &setup.yaml());
        let sender = Sender::default();
        // Upstream down: everything stays in the queue.
        let mut weir = start_weir(dir.path(), &config, &ports);
        assert_eq!(sender.send_n(ports.grpc, PER_REQUEST, 60).await, 60);
        weir.kill().unwrap();
        weir.wait().unwrap();

        let files = segments(&queue_dir);
        assert_eq!(files.len(), 1);
        let mut data = std::fs::read(&files[0]).unwrap();
        let ends = record_ends(&data);
        assert_eq!(ends.len(), 60);
        let record_of = |offset: usize| ends.iter().position(|&e| offset < e).unwrap();
        let mut damaged = std::collections::BTreeSet::new();
        let what = if round % 2 == 0 {
            // 1 to 4 flipped bytes anywhere.
            for _ in 0..rng.range(1, 5) {
                let at = rng.range(0, data.len() as u64) as usize;
                data[at] ^= 1 << rng.range(0, 8);
                damaged.insert(record_of(at));
            }
            format!("flips in records {damaged:?}")
        } else {
            // Cut anywhere after the first record, inside a record (a cut exactly at a
            // record's end looks like fewer writes: nothing tells what is missing).
            let mut cut = rng.range(ends[0] as u64, data.len() as u64) as usize;
            if ends.contains(&cut) {
                cut -= 1;
            }
            damaged.extend(record_of(cut)..60);
            data.truncate(cut);
            format!("cut at {cut} of {}", ends[59])
        };
        std::fs::write(&files[0], &data).unwrap();

        let sink = Sink::default();
        let server = sink.serve(upstream);
        let mut weir = start_weir(dir.path(), &config, &ports);
        let acked = sender.acked();
        let want: std::collections::BTreeSet<u64> = (0..60usize)
            .filter(|r| !damaged.contains(r))
            .flat_map(|r| r as u64 * PER_REQUEST..(r as u64 + 1) * PER_REQUEST)
            .collect();
        wait_delivered(&sink, &want, Duration::from_secs(20)).await;
        let lost_metric = metric(ports.metrics, "weir_exporter_queue_lost_records_total");
        sigterm(&weir);
        assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
        server.abort();
        let counts = sink.counts();
        let got = account(&acked, &counts);
        let log = log_of(dir.path());
        eprintln!(
            "round {round}: {what}: {} of {} records delivered",
            got.delivered, got.acked
        );
        // Exactly the records the damage touched are missing, and counted.
        let delivered: std::collections::BTreeSet<u64> = counts.keys().copied().collect();
        assert_eq!(delivered, want, "{what}; log:\n{log}");
        assert_eq!(got.duplicates, 0, "{what}");
        // Counted exactly when intact records follow the damage; at the end of the file,
        // the record the damage starts in and one per record marker left in it (what was cut
        // off entirely leaves no trace).
        let lost = lost_metric.unwrap() as usize;
        if round % 2 == 1 {
            assert_eq!(lost, 1, "{what}; log:\n{log}");
        } else if damaged.contains(&59) {
            assert!(
                (1..=damaged.len()).contains(&lost),
                "{lost}: {what}; log:\n{log}"
            );
        } else {
            assert_eq!(lost, damaged.len(), "{what}; log:\n{log}");
        }
        assert!(
            log.contains("damaged or torn records skipped"),
            "{what}; log:\n{log}"
        );
        let _ = sender.refused_requests.load(Ordering::SeqCst);
    }
}
