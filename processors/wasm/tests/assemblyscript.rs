//! A second guest language: the AssemblyScript example (wasm-sdk/examples/assemblyscript),
//! which implements ABI.md directly without the Rust SDK, built here with the npm
//! `assemblyscript` compiler (pinned by its package-lock.json) and run through the real `wasm`
//! stage with exact counts, side by side with the Rust `severity_filter` on the same batches.
//! Node and npm are required (scripts/test.sh installs them); a missing toolchain fails the
//! test, it is not skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::json;
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::{Payload, Signal};

/// Installs the pinned compiler (`npm ci`) and compiles the module once per test process.
/// Test runners start one process per test, and `npm ci` empties `node_modules` first, so
/// the install and compile hold an exclusive file lock (released when the process ends,
/// however it ends) and each process compiles to its own file.
fn assemblyscript_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let dir = root.join("wasm-sdk/examples/assemblyscript");
            let out_dir = root.join("target/wasm-examples/assemblyscript");
            std::fs::create_dir_all(&out_dir).unwrap();
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(out_dir.join(".build.lock"))
                .unwrap();
            lock.lock().unwrap();
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(&dir)
                .status()
                .expect(
                    "run npm to install the AssemblyScript compiler (install Node.js and npm; \
                     scripts/test.sh does)",
                );
            assert!(status.success(), "npm ci in {} failed", dir.display());
            let out = out_dir.join(format!("severity_filter_as-{}.wasm", std::process::id()));
            let status = Command::new("node")
                .arg("node_modules/assemblyscript/bin/asc.js")
                .args([
                    "assembly/index.ts",
                    "--runtime",
                    "stub",
                    "--use",
                    "abort=",
                    "-O3",
                ])
                .arg("-o")
                .arg(&out)
                .current_dir(&dir)
                .status()
                .expect("run node to compile the AssemblyScript example");
            assert!(status.success(), "asc failed on {}", dir.display());
            drop(lock);
            out
        })
        .clone()
}

fn severities() -> Vec<LogRecord> {
    [
        ("trace", 1),
        ("debug", 5),
        ("unset", 0),
        ("info", 9),
        ("warn", 13),
        ("debug2", 6),
        ("error", 17),
        ("fatal", 21),
    ]
    .into_iter()
    .map(|(b, s)| record(b, s))
    .collect()
}

#[tokio::test]
async fn assemblyscript_module_filters_like_the_rust_one() {
    let module = assemblyscript_wasm().display().to_string();
    let config = json!({"min_severity": 13});
    let asc = harness(json!({"module": module, "config": config}), Signal::Logs);
    let rust = harness(
        json!({"module": example_wasm("severity_filter").display().to_string(), "config": config}),
        Signal::Logs,
    );
    let from_asc = asc.run(logs_batch(severities())).await;
    let from_rust = rust.run(logs_batch(severities())).await;
    assert_eq!(
        log_bodies(&from_asc[0]),
        ["unset", "warn", "error", "fatal"]
    );
    assert_eq!(from_asc[0].item_count(), 4);
    assert_eq!(log_bodies(&from_rust[0]), log_bodies(&from_asc[0]));
    assert_eq!(
        metric_value(
            &asc.telemetry.encode(),
            "weir_processor_dropped_items_total",
            "wasm/test"
        ),
        4
    );
    // Verdicts were applied to the host's batch: both resources survive with their attributes.
    let Payload::Logs(r) = from_asc[0].payload() else {
        unreachable!()
    };
    assert_eq!(r.resource_logs.len(), 2);
    assert_eq!(asc.failures("malformed_output"), 0);
    assert_eq!(asc.failures("trap"), 0);
}

#[tokio::test]
async fn assemblyscript_module_answers_unchanged_and_keeps_the_original_bytes() {
    let module = assemblyscript_wasm().display().to_string();
    let h = harness(json!({"module": module}), Signal::Logs);
    let batch = logs_batch(vec![record("a", 9), record("b", 21), record("c", 0)]);
    let bytes = batch.original_bytes().cloned().unwrap();
    let out = h.run(batch).await;
    assert_eq!(out[0].original_bytes(), Some(&bytes));
    assert_eq!(out[0].item_count(), 3);
}

#[test]
fn assemblyscript_module_refusing_its_config_is_a_validation_error_with_its_reason() {
    let module = assemblyscript_wasm().display().to_string();
    let e = match parse(json!({"module": module, "config": {"min_severity": 99}})) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("min_severity must be a whole number 0..24"),
        "{e}"
    );
}

#[test]
fn assemblyscript_module_declares_only_logs() {
    let module = assemblyscript_wasm().display().to_string();
    let parsed = parse(json!({"module": module})).unwrap();
    let mut ctx =
        weir_api::BuildContext::for_component(weir_api::ComponentId::parse("wasm/test").unwrap());
    ctx.pipeline = Some("traces".into());
    let sink = std::sync::Arc::new(Sink::default());
    let e = match parsed.build(&ctx, Signal::Traces, sink) {
        Ok(_) => panic!("a logs-only module was accepted in a traces pipeline"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("logs") && e.contains("traces"), "{e}");
}
