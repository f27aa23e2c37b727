//! Hostile and broken guests: each failure leaves the data flowing unchanged (or dropped with
//! `on_error: drop`), raises the failure counter for its cause, and the next batch is handled
//! by a fresh instance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use weir_api::{Batch, Signal};

/// A guest that misbehaves (`misbehave`, WAT instructions) on batches larger than 300 bytes
/// and answers "unchanged" on smaller ones. Before misbehaving it poisons itself: a poisoned
/// instance answers an invalid code, so a reused instance would fail the next batch too.
fn misbehaving(misbehave: &str) -> String {
    format!(
        r#"(module
  (import "weir" "weir_output" (func $output (param i32 i32)))
  (memory (export "memory") 2)
  (global $poisoned (mut i32) (i32.const 0))
  (func (export "weir_abi_version") (result i32) i32.const 1)
  (func (export "weir_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "weir_process_logs") (param $ptr i32) (param $len i32) (result i32)
    global.get $poisoned
    if
      i32.const 99
      return
    end
    local.get $len
    i32.const 300
    i32.gt_u
    if
      i32.const 1
      global.set $poisoned
      {misbehave}
    end
    i32.const 0))"#
    )
}

fn big_batch() -> Batch {
    logs_batch(
        (0..10)
            .map(|i| record(&format!("record number {i} with a body long enough"), 9))
            .collect(),
    )
}

fn small_batch() -> Batch {
    logs_batch(vec![record("ok", 9)])
}

/// Runs a big batch (the guest fails on it) then a small one (the guest handles it), checking
/// the data, the counter for `cause`, and that a fresh instance took the second batch.
async fn fails_open_then_recovers(wat: &str, cause: &str, extra: serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = wat_module(&dir, "hostile", wat);
    let mut config = json!({"module": path.display().to_string(), "timeout": "50ms"});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let h = harness(config, Signal::Logs);

    let big = big_batch();
    let bytes = big.original_bytes().cloned().unwrap();
    let started = Instant::now();
    let out = h.run(big).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.len(), 1, "{cause}: the batch must pass on");
    assert_eq!(
        out[0].original_bytes(),
        Some(&bytes),
        "{cause}: the batch must be unchanged"
    );
    assert_eq!(h.failures(cause), 1, "{cause}: {}", h.telemetry.encode());

    let small = small_batch();
    let out = h.run(small.clone()).await;
    assert_eq!(out[0].original_bytes(), small.original_bytes());
    let text = h.telemetry.encode();
    assert_eq!(
        metric_value(&text, "weir_processor_failures_total", "wasm/test"),
        1,
        "{cause}: the second batch must not fail: {text}"
    );
    assert_eq!(
        metric_value(&text, "weir_wasm_instantiations_total", "module="),
        2,
        "{cause}: a fresh instance must take the second batch: {text}"
    );
}

#[tokio::test]
async fn trap_fails_open() {
    fails_open_then_recovers(&misbehaving("unreachable"), "trap", json!({})).await;
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    fails_open_then_recovers(&misbehaving("(loop $l (br $l))"), "timeout", json!({})).await;
}

#[tokio::test]
async fn growing_memory_without_bound_hits_the_memory_cap() {
    let grow =
        "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";
    fails_open_then_recovers(
        &misbehaving(grow),
        "out_of_memory",
        json!({"memory_limit_mib": 4}),
    )
    .await;
}

#[tokio::test]
async fn unknown_return_code_is_malformed() {
    fails_open_then_recovers(
        &misbehaving("i32.const 7 return"),
        "malformed_output",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn output_outside_guest_memory_is_malformed() {
    let out = "(call $output (i32.const 0x7fff0000) (i32.const 100)) i32.const 1 return";
    fails_open_then_recovers(&misbehaving(out), "malformed_output", json!({})).await;
}

#[tokio::test]
async fn wrong_number_of_verdicts_is_malformed() {
    let out = "(i32.store8 (i32.const 0) (i32.const 1)) (call $output (i32.const 0) (i32.const 1)) i32.const 1 return";
    fails_open_then_recovers(&misbehaving(out), "malformed_output", json!({})).await;
}

#[tokio::test]
async fn replacement_that_is_not_protobuf_is_malformed() {
    let out = "(i64.store (i32.const 0) (i64.const -1)) (call $output (i32.const 0) (i32.const 8)) i32.const 2 return";
    fails_open_then_recovers(&misbehaving(out), "malformed_output", json!({})).await;
}

#[tokio::test]
async fn replacement_with_more_items_than_the_input_is_oversized() {
    // Protobuf concatenation merges messages: the input twice holds every record twice.
    let out = "(memory.copy (i32.const 65536) (local.get $ptr) (local.get $len))
      (memory.copy (i32.add (i32.const 65536) (local.get $len)) (local.get $ptr) (local.get $len))
      (call $output (i32.const 65536) (i32.mul (local.get $len) (i32.const 2)))
      i32.const 2 return";
    fails_open_then_recovers(&misbehaving(out), "oversized_output", json!({})).await;
}

#[tokio::test]
async fn replacement_larger_than_the_byte_cap_is_oversized() {
    let out = "(call $output (i32.const 0) (i32.const 0x100000)) i32.const 2 return";
    fails_open_then_recovers(&misbehaving(out), "oversized_output", json!({})).await;
}

#[tokio::test]
async fn unbounded_recursion_traps_on_the_stack_limit() {
    let wat = misbehaving("call $deep drop").replace(
        "(func (export \"weir_abi_version\")",
        "(func $deep (result i32) call $deep)\n  (func (export \"weir_abi_version\")",
    );
    fails_open_then_recovers(&wat, "trap", json!({})).await;
}

#[tokio::test]
async fn alloc_returning_a_region_outside_memory_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "weir_abi_version") (result i32) i32.const 1)
      (func (export "weir_alloc") (param $len i32) (result i32)
        (select (i32.const 0xfff0) (i32.const 16) (i32.gt_u (local.get $len) (i32.const 64))))
      (func (export "weir_process_logs") (param i32 i32) (result i32) i32.const 0))"#;
    let path = wat_module(&dir, "bad_alloc", wat);
    let h = harness(json!({"module": path.display().to_string()}), Signal::Logs);
    let big = big_batch();
    let bytes = big.original_bytes().cloned().unwrap();
    assert_eq!(h.run(big).await[0].original_bytes(), Some(&bytes));
    assert_eq!(h.failures("malformed_output"), 1);
}

#[tokio::test]
async fn on_error_drop_drops_the_failed_batch_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = wat_module(&dir, "trap", &misbehaving("unreachable"));
    let h = harness(
        json!({"module": path.display().to_string(), "on_error": "drop"}),
        Signal::Logs,
    );
    assert!(h.run(big_batch()).await.is_empty());
    assert_eq!(h.failures("trap"), 1);
    let text = h.telemetry.encode();
    assert_eq!(
        metric_value(&text, "weir_processor_dropped_items_total", "wasm/test"),
        10
    );
    assert_eq!(h.run(small_batch()).await[0].item_count(), 1);
}

#[test]
fn a_module_without_the_pipelines_signal_is_refused_naming_both_signals() {
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "weir_abi_version") (result i32) i32.const 1)
      (func (export "weir_alloc") (param i32) (result i32) i32.const 0)
      (func (export "weir_process_traces") (param i32 i32) (result i32) unreachable))"#;
    let path = wat_module(&dir, "traces_only", wat);
    let parsed = parse(json!({"module": path.display().to_string()})).unwrap();
    let problems = parsed.signal_problems(Signal::Logs);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "processors.wasm/test.module");
    assert!(
        problems[0].1.starts_with(&format!(
            "WASM module {} declares the signal(s) traces but is in a logs pipeline",
            path.display()
        )),
        "{}",
        problems[0].1
    );
    assert!(parsed.signal_problems(Signal::Traces).is_empty());
    let ctx =
        weir_api::BuildContext::for_component(weir_api::ComponentId::parse("wasm/test").unwrap());
    let sink: Arc<dyn weir_api::Consumer> = Arc::new(Sink::default());
    let err = match parsed.build(&ctx, Signal::Logs, sink) {
        Ok(_) => panic!("built a traces-only module into a logs pipeline"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("declares the signal(s) traces but is in a logs pipeline"),
        "{err}"
    );
}

fn sdk_chaos(mode: &str) -> Harness {
    sdk_chaos_with_timeout(mode, "50ms")
}

fn sdk_chaos_with_timeout(mode: &str, timeout: &str) -> Harness {
    harness(
        json!({"module": example_wasm("chaos").display().to_string(),
               "config": {"mode": mode}, "timeout": timeout, "memory_limit_mib": 16}),
        Signal::Logs,
    )
}

/// An SDK-built guest failing on every batch: each batch passes unchanged, each failure is
/// counted under `cause`, and each batch gets a fresh instance.
async fn sdk_guest_fails_open(mode: &str, cause: &str) {
    sdk_guest_fails_open_within(mode, cause, "50ms").await;
}

async fn sdk_guest_fails_open_within(mode: &str, cause: &str, timeout: &str) {
    let h = sdk_chaos_with_timeout(mode, timeout);
    for n in 1..=2u64 {
        let batch = big_batch();
        let bytes = batch.original_bytes().cloned().unwrap();
        let out = h.run(batch).await;
        assert_eq!(out[0].original_bytes(), Some(&bytes), "{mode}");
        assert_eq!(h.failures(cause), n, "{mode}: {}", h.telemetry.encode());
    }
    let text = h.telemetry.encode();
    assert_eq!(
        metric_value(&text, "weir_wasm_instantiations_total", "module="),
        2,
        "{text}"
    );
}

#[tokio::test]
async fn sdk_guest_panic_is_reported_as_a_panic() {
    sdk_guest_fails_open("panic", "guest_panic").await;
}

#[tokio::test]
async fn sdk_guest_error_code_fails_open() {
    sdk_guest_fails_open("error", "guest_error").await;
}

#[tokio::test]
async fn sdk_guest_allocating_without_bound_is_out_of_memory() {
    // A deadline far beyond what growing to the 16 MiB cap takes, even on a loaded machine:
    // the guest must be stopped by the memory cap, never by the clock (with 50 ms it
    // sometimes timed out first under load).
    sdk_guest_fails_open_within("alloc", "out_of_memory", "10s").await;
}

#[tokio::test]
async fn sdk_guest_spinning_forever_times_out() {
    sdk_guest_fails_open("loop", "timeout").await;
}

#[tokio::test]
async fn concurrent_batches_each_get_an_instance() {
    let h = std::sync::Arc::new(sdk_chaos("count"));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.stage.consume(big_batch()).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        h.sink.take().iter().map(Batch::item_count).sum::<usize>(),
        40
    );
    assert_eq!(
        metric_value(
            &h.telemetry.encode(),
            "weir_processor_failures_total",
            "wasm/test"
        ),
        0
    );
}

/// Several memories would each get `memory_limit_mib`: the proposal is off, so such a
/// module is refused when the processor is built, naming the cause.
#[test]
fn a_module_with_several_memories_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(module
  (memory (export "memory") 1)
  (memory $second 1000)
  (func (export "weir_abi_version") (result i32) i32.const 1)
  (func (export "weir_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "weir_process_logs") (param i32 i32) (result i32) i32.const 0))"#;
    let path = wat_module(&dir, "multi", wat);
    let config = json!({"module": path.display().to_string(), "memory_limit_mib": 4});
    let err = match parse(config) {
        Err(e) => e.to_string(),
        Ok(parsed) => {
            let ctx = weir_api::BuildContext::for_component(
                weir_api::ComponentId::parse("wasm/test").unwrap(),
            );
            match parsed.build(&ctx, Signal::Logs, std::sync::Arc::new(Sink::default())) {
                Err(e) => format!("{e:?}"),
                Ok(_) => panic!("a module with two memories was accepted"),
            }
        }
    };
    assert!(err.contains("multi"), "{err}");
}

/// A guest busy for 1 s (until its timeout) runs off the async workers: on a one-thread runtime, a timer
/// task still ticks every 50 ms meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_guest_does_not_hold_the_async_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = wat_module(&dir, "slow", &misbehaving("(loop $l (br $l))"));
    let h = harness(
        json!({"module": path.display().to_string(), "timeout": "1000ms"}),
        Signal::Logs,
    );
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let started = Instant::now();
    let out = h.run(big_batch()).await;
    let took = started.elapsed();
    ticker.abort();
    assert_eq!(out.len(), 1, "failed open: the batch passes");
    let n = ticks.load(std::sync::atomic::Ordering::SeqCst) as u128;
    // Every 50 ms of the guest's run the ticker ran (give or take scheduling).
    assert!(
        n * 50 >= took.as_millis() / 2,
        "ticker ran {n} times in {took:?}: the guest blocked the runtime"
    );
    assert!(
        took >= Duration::from_millis(200),
        "the guest did not run: {took:?}"
    );
}
