//! `weir wasm run`: one module on one batch from a file, as the `wasm` processor runs it,
//! with the verdict counts.

use std::path::Path;
use std::time::Duration;

use weir_api::{json, Batch, Signal};

use crate::config::{OnError, WasmConfig};
use crate::guest::{GuestAnswer, GuestInstance};
use crate::live::PreparedModule;
use crate::outcome::{apply, max_output};

/// OTLP encodings of the input and output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// OTLP/JSON.
    Json,
    /// OTLP protobuf (an `Export*ServiceRequest`).
    Protobuf,
}

impl FileFormat {
    /// From a file's extension: `.json` is JSON; `.pb`, `.bin`, `.binpb`, `.proto` protobuf.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(FileFormat::Json),
            "pb" | "bin" | "binpb" | "proto" | "protobuf" => Some(FileFormat::Protobuf),
            _ => None,
        }
    }
}

/// What the module did to the batch, in items (log records, spans, data points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCounts {
    /// Items in the input.
    pub input: usize,
    /// Items passed on as they were (an "unchanged" answer, or a keep verdict).
    pub kept: usize,
    /// Items removed (drop verdicts, or missing from replacement bytes).
    pub dropped: usize,
    /// Items passed on from replacement bytes (possibly edited).
    pub replaced: usize,
}

/// Runs `module` (with `config` as its guest config) on the `signal` batch in `input`
/// (encoded as `format`) and returns the result's bytes in `out_format` with the counts.
/// Errors name the step and say why.
pub fn run_file(
    module: &Path,
    config: serde_json::Value,
    signal: Signal,
    input: &[u8],
    format: FileFormat,
    out_format: FileFormat,
    timeout: Duration,
) -> Result<(Vec<u8>, RunCounts), String> {
    let wasm_config = WasmConfig {
        module: module.display().to_string(),
        config,
        memory_limit_mib: 64,
        timeout,
        on_error: OnError::Pass,
        capabilities: Default::default(),
        poll_interval: Duration::ZERO,
    };
    let bytes = std::fs::read(module)
        .map_err(|e| format!("cannot read WASM module {}: {e}", module.display()))?;
    let prepared = PreparedModule::from_bytes(&wasm_config, &bytes).map_err(|e| e.to_string())?;
    if !prepared.signals.contains(&signal) {
        let declared: Vec<&str> = prepared.signals.iter().map(|s| s.as_str()).collect();
        return Err(format!(
            "WASM module {} declares the signal(s) {} but --signal is {signal}",
            module.display(),
            declared.join(", ")
        ));
    }
    let mut batch = match format {
        FileFormat::Json => {
            let payload = json::decode(signal, input)
                .map_err(|e| format!("input is not OTLP/JSON {signal}: {e}"))?;
            Batch::new(payload)
        }
        FileFormat::Protobuf => Batch::decode(signal, input.to_vec().into())
            .map_err(|e| format!("input is not an OTLP protobuf {signal} request: {e}"))?,
    };
    let before = batch.item_count();
    let mut guest = GuestInstance::new(&prepared.template, signal)
        .map_err(|f| format!("cannot start the module: {} ({})", f.detail, f.cause))?;
    let encoded;
    let input_bytes: &[u8] = match batch.original_bytes() {
        Some(b) => b,
        None => {
            encoded = batch.payload().encode_to_vec();
            &encoded
        }
    };
    let answer = guest
        .process(input_bytes, max_output(input_bytes.len()))
        .map_err(|f| format!("the module failed ({}): {}", f.cause, f.detail))?;
    let replacement = matches!(answer, GuestAnswer::Replacement(_));
    apply(&mut batch, answer).map_err(|f| {
        format!(
            "the module's answer was refused ({}): {}",
            f.cause, f.detail
        )
    })?;
    let after = batch.item_count();
    let counts = RunCounts {
        input: before,
        kept: if replacement { 0 } else { after },
        dropped: before.saturating_sub(after),
        replaced: if replacement { after } else { 0 },
    };
    let out = match out_format {
        FileFormat::Json => json::encode(batch.payload()),
        FileFormat::Protobuf => match batch.original_bytes() {
            Some(b) => b.to_vec(),
            None => batch.payload().encode_to_vec(),
        },
    };
    Ok((out, counts))
}
