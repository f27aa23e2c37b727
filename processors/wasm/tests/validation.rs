//! Modules that cannot run are config errors at parse time, naming the file and the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use weir_api::Signal;

fn error_of(config: serde_json::Value) -> String {
    match parse(config) {
        Ok(_) => panic!("config accepted"),
        Err(e) => e.to_string(),
    }
}

fn wat_error(wat: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = wat_module(&dir, "bad", wat).display().to_string();
    (error_of(json!({"module": path})), path)
}

#[test]
fn missing_file_names_the_field_and_the_file() {
    let e = error_of(json!({"module": "/nonexistent/plugin.wasm"}));
    assert!(
        e.starts_with(
            "processors.wasm/test.module: cannot read WASM module /nonexistent/plugin.wasm:"
        ),
        "{e}"
    );
}

#[test]
fn module_without_the_abi_is_refused() {
    let (e, path) = wat_error(r#"(module (memory (export "memory") 1))"#);
    assert_eq!(
        e,
        format!("processors.wasm/test.module: WASM module {path}: does not export the function `weir_abi_version` (see wasm-sdk/ABI.md)")
    );
}

#[test]
fn module_without_any_entry_point_is_refused() {
    let (e, _) = wat_error(
        r#"(module (memory (export "memory") 1)
        (func (export "weir_abi_version") (result i32) i32.const 1)
        (func (export "weir_alloc") (param i32) (result i32) i32.const 0))"#,
    );
    assert!(
        e.contains("exports none of weir_process_logs, weir_process_traces, weir_process_metrics"),
        "{e}"
    );
}

#[test]
fn entry_point_with_the_wrong_type_is_refused() {
    let (e, _) = wat_error(
        r#"(module (memory (export "memory") 1)
        (func (export "weir_abi_version") (result i32) i32.const 1)
        (func (export "weir_alloc") (param i32) (result i32) i32.const 0)
        (func (export "weir_process_logs") (param i32) (result i32) i32.const 0))"#,
    );
    assert!(
        e.contains("`weir_process_logs` has type (i32) -> (i32), expected (i32, i32) -> (i32)"),
        "{e}"
    );
}

#[test]
fn other_abi_version_is_refused() {
    let (e, _) = wat_error(
        r#"(module (memory (export "memory") 1)
        (func (export "weir_abi_version") (result i32) i32.const 2)
        (func (export "weir_alloc") (param i32) (result i32) i32.const 0)
        (func (export "weir_process_logs") (param i32 i32) (result i32) i32.const 0))"#,
    );
    assert!(
        e.contains("cannot start: guest speaks ABI version 2, this host speaks 1"),
        "{e}"
    );
}

#[test]
fn importing_wasi_is_refused_because_nothing_is_granted() {
    let (e, _) = wat_error(
        r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "weir_abi_version") (result i32) i32.const 1)
        (func (export "weir_alloc") (param i32) (result i32) i32.const 0)
        (func (export "weir_process_logs") (param i32 i32) (result i32) i32.const 0))"#,
    );
    assert!(
        e.contains("imports something the host does not grant"),
        "{e}"
    );
    assert!(e.contains("wasi_snapshot_preview1"), "{e}");
}

#[test]
fn init_that_loops_forever_is_refused_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(module (memory (export "memory") 1)
        (func (export "weir_abi_version") (result i32) i32.const 1)
        (func (export "weir_alloc") (param i32) (result i32) i32.const 16)
        (func (export "weir_init") (param i32 i32) (result i32) (loop $l (br $l)) i32.const 0)
        (func (export "weir_process_logs") (param i32 i32) (result i32) i32.const 0))"#;
    let path = wat_module(&dir, "slow_init", wat).display().to_string();
    let started = std::time::Instant::now();
    let e = error_of(json!({"module": path, "timeout": "20ms"}));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(e.contains("weir_init: ran past timeout (timeout)"), "{e}");
}

#[test]
fn guest_rejecting_its_config_is_a_validation_error_with_its_reason() {
    let path = example_wasm("severity_filter").display().to_string();
    let e = error_of(json!({"module": path, "config": {"min_severity": 99}}));
    assert!(
        e.contains("weir_init rejected the config (code -1): init failed: min_severity must be 0..24, got 99"),
        "{e}"
    );
}

#[test]
fn capabilities_are_not_granted_in_abi_v1() {
    let path = example_wasm("severity_filter").display().to_string();
    let e = error_of(json!({"module": path, "capabilities": {"network": true}}));
    assert_eq!(
        e,
        "processors.wasm/test.capabilities.network: unknown capability `network`: ABI v1 grants \
         guests no files, network, clocks, randomness or environment"
    );
}

#[test]
fn limits_are_checked() {
    let e = error_of(json!({"module": "x.wasm", "memory_limit_mib": 0, "timeout": "0s"}));
    assert_eq!(
        e,
        "processors.wasm/test.memory_limit_mib: must be between 1 and 4096 (a wasm32 memory holds at most 4 GiB), got 0\nprocessors.wasm/test.timeout: must be more than 0"
    );
}

#[test]
fn defaults_round_trip() {
    let c: weir_wasm::WasmConfig = serde_json::from_value(json!({"module": "m.wasm"})).unwrap();
    assert_eq!(c.memory_limit_mib, 64);
    assert_eq!(c.timeout, std::time::Duration::from_millis(100));
    assert_eq!(c.on_error, weir_wasm::OnError::Pass);
    let back: weir_wasm::WasmConfig =
        serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    assert_eq!(back.module, "m.wasm");
    assert_eq!(back.timeout, c.timeout);
}

/// The SDK's `export!(T, signals...)` exports only the declared entry points; a module on a
/// pipeline of another signal is a config problem naming the module and both signals.
#[test]
fn example_modules_declare_their_signals() {
    let check = |name: &str, ok: &[Signal], refused: &[Signal]| {
        let path = example_wasm(name).display().to_string();
        let config = match name {
            "severity_filter" => json!({"module": path, "config": {"min_severity": 9}}),
            "trace_sampler" => json!({"module": path, "config": {"one_in": 2}}),
            "drop_matching" => {
                json!({"module": path, "config": {"field": "severity_text", "equals": "DEBUG"}})
            }
            _ => json!({"module": path}),
        };
        let parsed = parse(config).unwrap_or_else(|e| panic!("{name}: {e}"));
        for s in ok {
            assert!(parsed.signal_problems(*s).is_empty(), "{name} on {s}");
        }
        for s in refused {
            let p = parsed.signal_problems(*s);
            assert_eq!(p.len(), 1, "{name} on {s}: {p:?}");
            assert_eq!(p[0].0, "processors.wasm/test.module");
            assert!(p[0].1.contains(&path), "{}", p[0].1);
            assert!(
                p[0].1.contains(&format!("but is in a {s} pipeline")),
                "{}",
                p[0].1
            );
        }
        parsed
    };
    let sf = check(
        "severity_filter",
        &[Signal::Logs],
        &[Signal::Traces, Signal::Metrics],
    );
    assert!(sf.signal_problems(Signal::Metrics)[0]
        .1
        .contains("declares the signal(s) logs but is in a metrics pipeline"));
    let ts = check(
        "trace_sampler",
        &[Signal::Traces],
        &[Signal::Logs, Signal::Metrics],
    );
    assert!(ts.signal_problems(Signal::Logs)[0]
        .1
        .contains("declares the signal(s) traces but is in a logs pipeline"));
    check("drop_matching", &Signal::ALL, &[]);
}
