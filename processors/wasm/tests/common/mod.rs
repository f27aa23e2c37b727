//! Helpers shared by the weir-wasm integration tests: building the example guests, building a
//! `wasm` stage from a config, a collecting sink, and batches.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
use weir_api::otlp::collector::trace::v1::ExportTraceServiceRequest;
use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use weir_api::{
    Batch, BuildContext, ComponentId, ConfigErrors, ConsumeError, Consumer, Payload,
    ProcessorFactory, Signal, Stage, Telemetry,
};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Builds every guest in wasm-sdk/examples for wasm32-unknown-unknown, once per test binary
/// (cargo's own lock serialises test binaries building at the same time), and returns the
/// path of the `.wasm` of `name`.
pub fn example_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = workspace_root();
        let target_dir = root.join("target/wasm-examples");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
            ])
            .arg(root.join("wasm-sdk/examples/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // Flags meant for the host build (coverage, sanitizers) must not reach the guests.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .status()
            .expect("run cargo to build the example guests");
        assert!(
            status.success(),
            "building wasm-sdk/examples failed (is the wasm32-unknown-unknown target installed? \
             `rustup target add wasm32-unknown-unknown`)"
        );
        target_dir.join("wasm32-unknown-unknown/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Writes a module in WAT text to a temp file (the tests build wasmtime with its `wat`
/// feature, so the loader accepts the text form) and returns the path.
pub fn wat_module(dir: &tempfile::TempDir, name: &str, wat: &str) -> PathBuf {
    let path = dir.path().join(format!("{name}.wat"));
    std::fs::write(&path, wat).unwrap();
    path
}

/// Collects what the stage hands on.
#[derive(Default)]
pub struct Sink(pub Mutex<Vec<Batch>>);

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

impl Sink {
    pub fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub struct Harness {
    pub stage: Arc<dyn Stage>,
    pub sink: Arc<Sink>,
    pub telemetry: Telemetry,
}

impl Harness {
    /// Runs one batch through the stage and returns what came out (empty when dropped).
    pub async fn run(&self, batch: Batch) -> Vec<Batch> {
        self.stage.consume(batch).await.unwrap();
        self.sink.take()
    }

    /// Value of `weir_wasm_failures_total` for `cause` (0 when absent).
    pub fn failures(&self, cause: &str) -> u64 {
        metric_value(
            &self.telemetry.encode(),
            "weir_wasm_failures_total",
            &format!("cause=\"{cause}\""),
        )
    }
}

/// The value of the first sample of `name` whose labels contain `label`.
pub fn metric_value(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .next()
        .unwrap_or(0)
}

pub fn parse(
    config: serde_json::Value,
) -> Result<Box<dyn weir_api::ProcessorConfig>, ConfigErrors> {
    weir_wasm::WasmFactory.parse(&config, "processors.wasm/test")
}

/// Builds a `wasm/test` stage for `signal` from `config` (`module` must be absolute).
pub fn harness(config: serde_json::Value, signal: Signal) -> Harness {
    let parsed = parse(config).unwrap_or_else(|e| panic!("config rejected: {e}"));
    let mut ctx = BuildContext::for_component(ComponentId::parse("wasm/test").unwrap());
    ctx.pipeline = Some(signal.as_str().to_string());
    let telemetry = ctx.telemetry.clone();
    let sink = Arc::new(Sink::default());
    let stage = parsed.build(&ctx, signal, sink.clone()).unwrap();
    Harness {
        stage,
        sink,
        telemetry,
    }
}

pub fn string_value(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    })
}

pub fn attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: string_value(v),
        ..Default::default()
    }
}

/// A log record with this body and severity.
pub fn record(body: &str, severity: i32) -> LogRecord {
    LogRecord {
        body: string_value(body),
        severity_number: severity,
        time_unix_nano: 1_700_000_000_000_000_000,
        ..Default::default()
    }
}

/// Logs in two resources (so canonical order spans several containers), arriving as
/// protobuf bytes like a receiver's batches.
pub fn logs_batch(records: Vec<LogRecord>) -> Batch {
    let half = records.len() / 2;
    let mut first = records;
    let second = first.split_off(half);
    let request = ExportLogsServiceRequest {
        resource_logs: [first, second]
            .into_iter()
            .enumerate()
            .map(|(i, log_records)| ResourceLogs {
                resource: Some(weir_api::otlp::resource::v1::Resource {
                    attributes: vec![attr("service.name", &format!("svc-{i}"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    };
    encoded(Payload::Logs(request))
}

pub fn encoded(payload: Payload) -> Batch {
    Batch::decode(payload.signal(), payload.encode_to_vec().into()).unwrap()
}

pub fn span(name: &str, trace_id: [u8; 16]) -> Span {
    Span {
        name: name.to_string(),
        trace_id: trace_id.to_vec(),
        span_id: vec![1; 8],
        ..Default::default()
    }
}

pub fn spans_batch(spans: Vec<Span>) -> Batch {
    encoded(Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

pub fn log_bodies(batch: &Batch) -> Vec<String> {
    let Payload::Logs(r) = batch.payload() else {
        panic!("not logs")
    };
    r.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .map(|lr| match lr.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

pub fn span_names(batch: &Batch) -> Vec<String> {
    let Payload::Traces(r) = batch.payload() else {
        panic!("not traces")
    };
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect()
}
