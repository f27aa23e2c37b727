//! `weir wasm run` with the SDK's example modules built for wasm32: exact verdict counts,
//! JSON and protobuf in and out, and errors naming what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use support::*;

/// Builds wasm-sdk/examples for wasm32-unknown-unknown (as weir-wasm's tests do, into the
/// same directory, so a build there is reused) and returns the path of `name`.
fn example_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .canonicalize()
            .unwrap();
        let target_dir = root.join("target/wasm-examples");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
            .arg("--manifest-path")
            .arg(root.join("wasm-sdk/examples/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .status()
            .unwrap();
        assert!(status.success(), "building wasm-sdk/examples failed");
        target_dir.join("wasm32-unknown-unknown/release")
    });
    dir.join(format!("{name}.wasm"))
}

/// Ten records, severity 1..=10; bodies 2, 5 and 8 hold an e-mail address.
fn input() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (1..=10)
                    .map(|i| LogRecord {
                        severity_number: i,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(if i % 3 == 2 {
                                format!("user{i}@example.com logged in")
                            } else {
                                format!("record {i}")
                            })),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn run(args: &[&str]) -> (bool, String) {
    let out = weir().args(["wasm", "run"]).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn bodies(req: &ExportLogsServiceRequest) -> Vec<String> {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| match l.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            _ => String::new(),
        })
        .collect()
}

#[test]
fn wasm_run_prints_exact_verdict_counts_for_json_and_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let json_in = d.join("in.json");
    std::fs::write(
        &json_in,
        serde_json::to_vec(&serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords":
            (1..=10).map(|i| serde_json::json!({"severityNumber": i, "body": {"stringValue": format!("r{i}")}})).collect::<Vec<_>>()
        }]}]}))
        .unwrap(),
    )
    .unwrap();
    let pb_in = d.join("in.pb");
    std::fs::write(&pb_in, input().encode_to_vec()).unwrap();

    // Verdicts: severity >= 9 kept.
    let sf = example_wasm("severity_filter");
    let out = d.join("out.json");
    let (ok, text) = run(&[
        "--module",
        sf.to_str().unwrap(),
        "--signal",
        "logs",
        "--input",
        json_in.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--config",
        r#"{"min_severity": 9}"#,
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "10 items in: kept 2, dropped 8, replaced 0");
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let records = written["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap();
    let kept: Vec<&str> = records
        .iter()
        .map(|r| r["body"]["stringValue"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["r9", "r10"]);

    // Replacement bytes, protobuf in and out.
    let re = example_wasm("redact_emails");
    let out = d.join("out.pb");
    let (ok, text) = run(&[
        "--module",
        re.to_str().unwrap(),
        "--signal",
        "logs",
        "--input",
        pb_in.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "10 items in: kept 0, dropped 0, replaced 10");
    let back = ExportLogsServiceRequest::decode(&std::fs::read(&out).unwrap()[..]).unwrap();
    let b = bodies(&back);
    assert_eq!(b.len(), 10);
    assert_eq!(b.iter().filter(|s| s.contains("[REDACTED]")).count(), 3);
    assert!(b.iter().all(|s| !s.contains('@')), "{b:?}");

    // "Unchanged": nothing to redact in the JSON input; --format for an extension-less output.
    let out = d.join("out-unchanged");
    let (ok, text) = run(&[
        "--module",
        re.to_str().unwrap(),
        "--signal",
        "logs",
        "--input",
        json_in.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--format",
        "protobuf",
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "10 items in: kept 10, dropped 0, replaced 0");
    let back = ExportLogsServiceRequest::decode(&std::fs::read(&out).unwrap()[..]).unwrap();
    assert_eq!(bodies(&back).len(), 10);
}

#[test]
fn wasm_run_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pb_in = d.join("in.pb");
    std::fs::write(&pb_in, input().encode_to_vec()).unwrap();
    let out = d.join("out.pb");
    let ts = example_wasm("trace_sampler");
    let (ok, text) = run(&[
        "--module",
        ts.to_str().unwrap(),
        "--signal",
        "logs",
        "--input",
        pb_in.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        text.contains("declares the signal(s) traces but --signal is logs"),
        "{text}"
    );
    let (ok, text) = run(&[
        "--module",
        ts.to_str().unwrap(),
        "--signal",
        "logs",
        "--input",
        pb_in.to_str().unwrap(),
        "--output",
        d.join("out.txt").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(text.contains("cannot tell the encoding"), "{text}");
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let (ok, text) = run(&[
        "--module",
        example_wasm("severity_filter").to_str().unwrap(),
        "--signal",
        "logs",
        "--input",
        bad.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(text.contains("input is not OTLP/JSON logs"), "{text}");
}
