//! Fault: `kill -9` at random points, over and over, while a sender numbers every record
//! and an independent upstream counts what arrives (sometimes refusing everything). With
//! the disk queue, every record weir answered OK for arrives, with or without the `batch`
//! processor and with the exporter's queue full; copies only within the at-least-once
//! bound (a batch sent upstream whose acknowledgement was not yet written when weir died:
//! at most `num_consumers` batches per kill).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fault_durability/harness.rs"]
mod harness;
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use support::*;

struct Scenario {
    name: &'static str,
    batch: bool,
    queue_size: u64,
    lives: usize,
    /// Chance, in percent, that the upstream refuses everything during one life.
    refusing_pct: u64,
    per_request: u64,
}

const CONSUMERS: usize = 4;

async fn kill_loop(sc: Scenario) {
    let mut rng = Rng::from_env_or_time(sc.name);
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let upstream = free_port();
    let ports = Ports::pick();
    let setup = Setup {
        ports: &ports,
        upstream,
        queue_dir: &queue_dir,
        batch: sc.batch,
        queue_size: sc.queue_size,
        num_consumers: CONSUMERS,
        max_size_mib: 64,
    };
    let config = write(dir.path(), "weir.yaml", &setup.yaml());
    let sink = Sink::default();
    let server = sink.serve(upstream);
    let sender = Arc::new(Sender::default());
    let grpc = ports.grpc;
    let started = Instant::now();
    for _ in 0..sc.lives {
        sink.refuse(rng.range(0, 100) < sc.refusing_pct);
        let mut weir = start_weir(dir.path(), &config, &ports);
        let kill_at = Instant::now() + Duration::from_millis(rng.range(50, 400));
        // The sender goes on a little past the kill: it sees the failures a client would.
        let sending = {
            let sender = sender.clone();
            let until = kill_at + Duration::from_millis(30);
            let per_request = sc.per_request;
            tokio::spawn(async move { sender.send_until(grpc, per_request, 3, until).await })
        };
        tokio::time::sleep_until(kill_at.into()).await;
        weir.kill().unwrap(); // SIGKILL: no shutdown, no drain, no flush
        weir.wait().unwrap();
        sending.await.unwrap();
    }
    // The last life: the upstream takes everything; weir sends what it holds.
    sink.refuse(false);
    let mut weir = start_weir(dir.path(), &config, &ports);
    let acked = sender.acked();
    wait_delivered(&sink, &acked, Duration::from_secs(30)).await;
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
    let got = account(&acked, &sink.counts());
    let max_batch = if sc.batch { 200 } else { sc.per_request };
    let bound = sc.lives as u64 * CONSUMERS as u64 * max_batch;
    eprintln!(
        "{}: {} lives in {:?}; {} records acknowledged, {} delivered, {} refused requests, {} copies (bound {bound})",
        sc.name,
        sc.lives,
        started.elapsed(),
        got.acked,
        got.delivered,
        sender.refused_requests.load(Ordering::SeqCst),
        got.duplicates
    );
    assert!(got.acked > 0, "nothing was ever acknowledged");
    assert!(
        got.missing.is_empty(),
        "{} of {} acknowledged records lost, first {:?}; weir log:\n{}",
        got.missing.len(),
        got.acked,
        &got.missing[..got.missing.len().min(10)],
        log_of(dir.path())
    );
    assert!(
        got.duplicates <= bound,
        "{} copies, bound {bound}",
        got.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_no_acknowledged_record() {
    kill_loop(Scenario {
        name: "disk queue",
        batch: false,
        queue_size: 1000,
        lives: 20,
        refusing_pct: 30,
        per_request: 10,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_the_batch_processor_loses_no_acknowledged_record() {
    kill_loop(Scenario {
        name: "batch + disk queue",
        batch: true,
        queue_size: 1000,
        lives: 20,
        refusing_pct: 30,
        per_request: 10,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_a_full_exporter_queue_refuses_and_adds_no_copies() {
    // The upstream refuses in most lives, and the queue holds 3 batches: most requests are
    // refused. The refused ones must neither be delivered as acknowledged nor replayed.
    kill_loop(Scenario {
        name: "batch + full queue",
        batch: true,
        queue_size: 3,
        lives: 10,
        refusing_pct: 80,
        per_request: 10,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upstream_then_sigterm_then_restart_delivers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let upstream = free_port();
    let ports = Ports::pick();
    let setup = Setup {
        ports: &ports,
        upstream,
        queue_dir: &queue_dir,
        batch: true,
        queue_size: 1000,
        num_consumers: CONSUMERS,
        max_size_mib: 64,
    };
    let config = write(dir.path(), "weir.yaml", &setup.yaml());
    // The upstream takes the connection and every request, and never answers.
    let sink = Sink::default();
    sink.delay_ms.store(3_600_000, Ordering::SeqCst);
    let server = sink.serve(upstream);
    let sender = Arc::new(Sender::default());
    let mut weir = start_weir(dir.path(), &config, &ports);
    assert_eq!(sender.send_n(ports.grpc, 10, 30).await, 30);
    // Past the exporter's 2 s timeout: the attempts time out and are retried.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    sigterm(&weir);
    let status = wait_exit(&mut weir, Duration::from_secs(15));
    assert!(
        status.is_some(),
        "weir hung on shutdown: {}",
        log_of(dir.path())
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    let log = log_of(dir.path());
    assert!(
        log.contains("leaving the rest of the sending queue on disk for the next start"),
        "{log}"
    );
    // The upstream recovers; the next start sends what the first one held.
    sink.delay_ms.store(0, Ordering::SeqCst);
    let mut weir = start_weir(dir.path(), &config, &ports);
    let acked = sender.acked();
    wait_delivered(&sink, &acked, Duration::from_secs(30)).await;
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
    let got = account(&acked, &sink.counts());
    assert_eq!(got.acked, 300);
    assert!(got.missing.is_empty(), "lost {:?}", got.missing);
    // The hung attempts never reached the count: nothing arrives twice.
    assert_eq!(got.duplicates, 0);
}
