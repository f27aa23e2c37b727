//! Fault: a slow upstream and a fast sender with `memory_limiter` in front. Resident memory
//! stays under the hard limit (the soft limit plus what arrives between two readings), and
//! once the upstream catches up and the queue is empty, data is accepted again within a
//! second. Without help the allocator (mimalloc) keeps freed pages resident until the
//! threads that own them allocate again, which kept RSS above the soft limit for seconds
//! after the data was gone; the limiter asks it to return them when a reading is above the
//! soft limit (`WEIR_RSS_TIMELINE=1` prints RSS every 200 ms after the queue emptied, before
//! the next send). docs/DURABILITY.md has the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fault_durability/harness.rs"]
mod harness;
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use support::*;

fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

const LIMIT_MIB: u64 = 160;
const SPIKE_MIB: u64 = 32;

fn config(ports: &Ports, upstream: u16) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc}'}}
processors:
  memory_limiter: {{check_interval: 1s, limit_mib: {LIMIT_MIB}, spike_limit_mib: {SPIKE_MIB}}}
exporters:
  otlp/up:
    endpoint: 127.0.0.1:{upstream}
    tls: {{insecure: true}}
    timeout: 10s
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0s}}
    sending_queue: {{num_consumers: 2, queue_size: 100000}}
extensions:
  health_check: {{endpoint: '127.0.0.1:{health}'}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: '127.0.0.1:{metrics}'}}
  pipelines:
    logs: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlp/up]}}
",
        grpc = ports.grpc,
        health = ports.health,
        metrics = ports.metrics,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_near_the_limit_and_acceptance_resumes_when_the_queue_drains() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = free_port();
    let ports = Ports::pick();
    let cfg = write(dir.path(), "weir.yaml", &config(&ports, upstream));
    let sink = Sink::default();
    sink.delay_ms.store(300, Ordering::SeqCst);
    let server = sink.serve(upstream);
    let mut weir = start_weir(dir.path(), &cfg, &ports);
    let pid = weir.id();
    let idle = rss_mib(pid, "VmRSS:");

    // A fast sender against a slow upstream until memory_limiter has refused for a while:
    // at least 8 s, then until 20 requests were refused (at most 60 s; the queue must grow
    // to the soft limit first, which takes longer on a busy machine).
    let sender = Arc::new(Sender::default());
    sender.pad.store(1000, Ordering::SeqCst);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_sampling = stop.clone();
    let sampler = tokio::spawn(async move {
        let mut peak: f64 = 0.0;
        while !stop_sampling.load(Ordering::SeqCst) {
            peak = peak.max(rss_mib(pid, "VmRSS:"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    });
    let start = Instant::now();
    loop {
        let until = Instant::now() + Duration::from_secs(2);
        sender.send_until(ports.grpc, 500, 4, until).await;
        let refused = sender.refused_requests.load(Ordering::SeqCst);
        if start.elapsed() >= Duration::from_secs(8) && refused >= 20
            || start.elapsed() >= Duration::from_secs(60)
        {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let peak_sampled = sampler.await.unwrap();
    let hwm = rss_mib(pid, "VmHWM:");
    let refused = sender.refused_requests.load(Ordering::SeqCst);
    let refusal = sender.last_refusal.lock().unwrap().clone();
    eprintln!(
        "idle {idle:.1} MiB, peak sampled {peak_sampled:.1} MiB, VmHWM {hwm:.1} MiB; limit {LIMIT_MIB} MiB (soft {}); sent for {:?}: {} records accepted, {refused} requests refused, last refusal {refusal:?}",
        LIMIT_MIB - SPIKE_MIB,
        start.elapsed(),
        sender.acked().len()
    );
    assert!(
        refused >= 20,
        "memory_limiter refused only {refused} requests"
    );

    // The upstream catches up: once the queue is empty, data is accepted again.
    sink.delay_ms.store(0, Ordering::SeqCst);
    let drained = Instant::now();
    while metric(ports.metrics, "weir_exporter_queue_size") != Some(0.0) {
        assert!(
            drained.elapsed() < Duration::from_secs(60),
            "queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut empty_at = Instant::now();
    if std::env::var("WEIR_RSS_TIMELINE").is_ok() {
        let mut line = String::new();
        while empty_at.elapsed() < Duration::from_secs(5) {
            line += &format!(" {:.0}", rss_mib(pid, "VmRSS:"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("RSS every 200 ms after the queue emptied:{line}");
        // The time to accept again is then counted from the end of the timeline.
        empty_at = Instant::now();
    }
    let mut resumed = None;
    while empty_at.elapsed() < Duration::from_secs(60) {
        if sender.send_n(ports.grpc, 10, 1).await == 1 {
            resumed = Some(empty_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "queue drained in {:?}; accepting again {resumed:?} after it was empty; RSS then {:.1} MiB",
        empty_at - drained,
        rss_mib(pid, "VmRSS:")
    );
    sigterm(&weir);
    assert!(wait_exit(&mut weir, Duration::from_secs(15)).is_some());
    server.abort();
    let resumed = resumed.expect("never accepted again");
    assert!(
        resumed < Duration::from_secs(1),
        "accepting again only {resumed:?} after the queue was empty"
    );
    assert!(
        hwm <= LIMIT_MIB as f64,
        "peak RSS {hwm:.1} MiB over the limit of {LIMIT_MIB} MiB"
    );
}
