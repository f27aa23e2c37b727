//! The project's own conformance fixtures (tests/fixtures/<case>/): each case runs
//! `weir policy eval` on `input.json` and compares the surviving telemetry with
//! `expected.json` (decoded, so field order and JSON spelling do not matter, but record,
//! attribute and tracestate content and order do) and the stats with `stats.json` exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use weir_api::{json, Signal};
use weir_policy::cli::{eval, EvalArgs, SignalArg};

fn run_case(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let (signal, arg) = match name.split('_').next() {
        Some("logs") => (Signal::Logs, SignalArg::Log),
        Some("metrics") => (Signal::Metrics, SignalArg::Metric),
        Some("traces") => (Signal::Traces, SignalArg::Trace),
        _ => return Err(format!("{name}: unknown signal prefix")),
    };
    let policies = ["policies.yaml", "policies.json"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .ok_or(format!("{name}: no policies file"))?;
    let tmp = tempfile::tempdir().unwrap();
    let args = EvalArgs {
        policies,
        input: dir.join("input.json"),
        output: tmp.path().join("out.json"),
        stats: Some(tmp.path().join("stats.json")),
        signal: arg,
    };
    eval(&args).map_err(|e| format!("{name}: eval failed: {e}"))?;
    let got = json::decode(signal, &std::fs::read(&args.output).unwrap()).unwrap();
    let want = json::decode(signal, &std::fs::read(dir.join("expected.json")).unwrap())
        .map_err(|e| format!("{name}: expected.json: {e}"))?;
    if got != want {
        return Err(format!(
            "{name}: output differs\n got: {}\nwant: {}",
            String::from_utf8_lossy(&json::encode(&got)),
            String::from_utf8_lossy(&json::encode(&want))
        ));
    }
    let got: serde_json::Value =
        serde_json::from_slice(&std::fs::read(args.stats.as_ref().unwrap()).unwrap()).unwrap();
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
    if got != want {
        return Err(format!("{name}: stats differ\n got: {got}\nwant: {want}"));
    }
    Ok(())
}

#[test]
fn every_fixture_passes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "fixtures missing: {}", dirs.len());
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
