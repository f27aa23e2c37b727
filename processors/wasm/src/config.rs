//! The `wasm` processor's config, its factory, and loading the module at parse time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::Module;
use weir_api::reload::Reloadable;
use weir_api::{
    parse_component_config, BuildContext, BuildError, ConfigErrors, Consumer, ProcessorConfig,
    ProcessorFactory, Signal, SignalSet, Stage,
};

use crate::engine::shared_engine;
use crate::guest::{check_exports, linker, GuestInstance, GuestTemplate};
use crate::stage::WasmStage;
use crate::WasmError;

/// What to do with a batch when the guest fails on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Pass the batch on as it arrived (fail open). The default.
    #[default]
    Pass,
    /// Drop the batch (fail closed), e.g. for a redaction module whose failure must not leak
    /// unredacted data.
    Drop,
}

/// Config of a `wasm/<name>` processor.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// Path to the `.wasm` module (ABI in `wasm-sdk/ABI.md`). Required. A relative path is
    /// taken from the working directory, or failing that from the first config file's
    /// directory.
    pub module: String,
    /// Any YAML, handed to the guest's `weir_init` as JSON. Default: none (`null`).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Cap on the guest's linear memory in MiB; growing past it fails the call. Default: 64.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: u32,
    /// Deadline for one batch (and for `weir_init`), enforced by epoch interruption to
    /// within 5ms. Default: 100ms.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// What happens to a batch the guest fails on: `pass` (default) or `drop`.
    #[serde(default)]
    pub on_error: OnError,
    /// Extra powers granted to the guest. Default: none. ABI v1 defines none (no WASI: no
    /// files, network, clocks, randomness or environment), so any entry is refused by name
    /// rather than silently ignored.
    #[serde(default)]
    pub capabilities: serde_json::Map<String, serde_json::Value>,
    /// How often the `.wasm` file is checked for a new version (which is loaded if it
    /// compiles and starts, else the old one keeps running). `0s` turns the check off;
    /// SIGHUP reloads either way. Default: 2s.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_memory_limit_mib() -> u32 {
    64
}

fn default_timeout() -> Duration {
    Duration::from_millis(100)
}

/// Factory of the `wasm` processor type.
pub struct WasmFactory;

impl ProcessorFactory for WasmFactory {
    fn signals(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn parse(
        &self,
        config: &serde_json::Value,
        path: &str,
    ) -> Result<Box<dyn ProcessorConfig>, ConfigErrors> {
        let parsed: WasmConfig = parse_component_config(config, path)?;
        let mut errors = ConfigErrors::default();
        if parsed.memory_limit_mib == 0 || parsed.memory_limit_mib > 4096 {
            errors.push(
                format!("{path}.memory_limit_mib"),
                format!(
                    "must be between 1 and 4096 (a wasm32 memory holds at most 4 GiB), got {}",
                    parsed.memory_limit_mib
                ),
            );
        }
        if parsed.timeout.is_zero() {
            errors.push(format!("{path}.timeout"), "must be more than 0");
        }
        for name in parsed.capabilities.keys() {
            errors.push(
                format!("{path}.capabilities.{name}"),
                format!(
                    "unknown capability `{name}`: ABI v1 grants guests no files, network, \
                     clocks, randomness or environment"
                ),
            );
        }
        if parsed.module.is_empty() {
            errors.push(format!("{path}.module"), "must name a .wasm file");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let loaded: OnceLock<Arc<LiveModule>> = OnceLock::new();
        let relative = Path::new(&parsed.module).is_relative();
        let local = PathBuf::from(&parsed.module);
        // Found from here: load now so `weir validate` reports a bad module. A relative path
        // not found from here may still be found from the config file's directory at build.
        if !relative || local.exists() {
            let live = LiveModule::load(&parsed, &local, path).map_err(|e| {
                ConfigErrors::from(weir_api::ConfigError::new(
                    format!("{path}.module"),
                    e.to_string(),
                ))
            })?;
            let _ = loaded.set(live);
        }
        Ok(Box::new(WasmProcessorConfig {
            config: parsed,
            path: path.to_string(),
            loaded,
        }))
    }
}

/// A compiled, ABI-checked module with everything needed to instantiate it.
pub(crate) struct PreparedModule {
    pub template: GuestTemplate,
    /// The signals the module declares (has `weir_process_<signal>` entry points for).
    pub signals: Vec<Signal>,
}

impl PreparedModule {
    /// Reads and compiles the module, checks its exports, and instantiates it once (running
    /// `weir_init` with the config) so that a module that cannot start is refused now.
    pub(crate) fn from_bytes(config: &WasmConfig, bytes: &[u8]) -> Result<Self, WasmError> {
        let name = config.module.clone();
        let engine = shared_engine();
        let wasmtime = |what, source| WasmError::Wasmtime {
            path: name.clone(),
            what,
            source,
        };
        let module = Module::new(engine, bytes).map_err(|e| wasmtime("cannot compile", e))?;
        let signals = check_exports(&module, &name)?;
        let linker = linker(engine).map_err(|e| wasmtime("cannot link host functions", e))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| wasmtime("imports something the host does not grant", e))?;
        let config_json = if config.config.is_null() {
            Vec::new()
        } else {
            config.config.to_string().into_bytes()
        };
        let template = GuestTemplate {
            module_name: name.clone(),
            pre,
            config_json,
            memory_limit: (config.memory_limit_mib as usize) << 20,
            timeout: config.timeout,
        };
        // Any signal will do: this checks instantiation, version and init.
        GuestInstance::new(&template, Signal::Logs).map_err(|f| WasmError::Abi {
            path: name.clone(),
            message: format!("cannot start: {} ({})", f.detail, f.cause),
        })?;
        Ok(PreparedModule { template, signals })
    }
}

fn read_module(file: &Path) -> Result<Vec<u8>, WasmError> {
    std::fs::read(file).map_err(|source| WasmError::Read {
        path: file.display().to_string(),
        source,
    })
}

/// The module in force for one processor id, replaced in place when its file changes (on a
/// poll or SIGHUP) and the new version compiles and starts; shared by the processor's stages
/// in every pipeline.
pub(crate) struct LiveModule {
    config: WasmConfig,
    file: PathBuf,
    /// `processors.<id>`, for log lines.
    path: String,
    current: RwLock<Arc<PreparedModule>>,
    /// Bumped at each replacement; instances of an older generation are discarded.
    generation: AtomicU64,
    /// The bytes of the module in force.
    bytes: Mutex<Vec<u8>>,
    /// The last refusal logged (logged once until it changes); also serialises reloads.
    reported: Mutex<Option<String>>,
    /// Signals of the pipelines the module was built into: a new version must declare them.
    used: Mutex<Vec<Signal>>,
}

fn signal_names(signals: &[Signal]) -> String {
    signals
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `module` (declaring `declared`) cannot run in a pipeline of `signal`, if it cannot.
fn signal_mismatch(module: &str, declared: &[Signal], signal: Signal) -> Option<String> {
    if declared.contains(&signal) {
        return None;
    }
    Some(format!(
        "WASM module {module} declares the signal(s) {} but is in a {signal} pipeline \
         (it does not export weir_process_{signal}); declare {signal} in the module \
         (weir_wasm_sdk::export!) or move the processor to a {} pipeline",
        signal_names(declared),
        signal_names(declared),
    ))
}

impl LiveModule {
    pub(crate) fn load(
        config: &WasmConfig,
        file: &Path,
        path: &str,
    ) -> Result<Arc<Self>, WasmError> {
        let bytes = read_module(file)?;
        let prepared = PreparedModule::from_bytes(config, &bytes)?;
        let live = Arc::new(LiveModule {
            config: config.clone(),
            file: file.to_path_buf(),
            path: path.to_string(),
            current: RwLock::new(Arc::new(prepared)),
            generation: AtomicU64::new(0),
            bytes: Mutex::new(bytes),
            reported: Mutex::new(None),
            used: Mutex::new(Vec::new()),
        });
        let reloadable: Arc<dyn Reloadable> = live.clone();
        weir_api::reload::register(&reloadable);
        Ok(live)
    }

    /// The module in force and its generation.
    pub(crate) fn current(&self) -> (u64, Arc<PreparedModule>) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (self.generation.load(Ordering::Acquire), current.clone())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn module_name(&self) -> &str {
        &self.config.module
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    /// Why the module in force cannot run in a pipeline of `signal`, if it cannot.
    pub(crate) fn signal_problem(&self, signal: Signal) -> Option<String> {
        let (_, current) = self.current();
        signal_mismatch(&self.config.module, &current.signals, signal)
    }

    /// Notes that the module runs in a pipeline of `signal`, or says why it cannot.
    fn use_for(&self, signal: Signal) -> Result<(), String> {
        if let Some(problem) = self.signal_problem(signal) {
            return Err(problem);
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if !used.contains(&signal) {
            used.push(signal);
        }
        Ok(())
    }
}

impl Reloadable for LiveModule {
    fn describe(&self) -> String {
        format!("{}: WASM module {}", self.path, self.file.display())
    }

    /// Reads the file; when its bytes differ from the module in force, compiles, checks and
    /// starts the new version and puts it in force. A refused version (unreadable, does not
    /// compile, wrong ABI, refuses its config) leaves the old one running; the refusal is
    /// logged once until it changes.
    fn reload(&self) -> Result<bool, String> {
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let attempt = read_module(&self.file).and_then(|bytes| {
            if *self.bytes.lock().unwrap_or_else(|e| e.into_inner()) == bytes {
                return Ok(None);
            }
            let prepared = PreparedModule::from_bytes(&self.config, &bytes)?;
            let used = self.used.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for signal in used {
                if let Some(message) =
                    signal_mismatch(&self.config.module, &prepared.signals, signal)
                {
                    return Err(WasmError::Abi {
                        path: self.config.module.clone(),
                        message,
                    });
                }
            }
            Ok(Some((prepared, bytes)))
        });
        match attempt {
            Ok(None) => {
                if reported.take().is_some() {
                    tracing::info!(processor = %self.path, module = %self.file.display(), "WASM module file is back to the version in force");
                }
                Ok(false)
            }
            Ok(Some((prepared, bytes))) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(prepared);
                self.generation.fetch_add(1, Ordering::AcqRel);
                *self.bytes.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
                *reported = None;
                tracing::info!(processor = %self.path, module = %self.file.display(), "WASM module reloaded; new batches run the new version");
                Ok(true)
            }
            Err(e) => {
                let message = e.to_string();
                if reported.as_deref() != Some(message.as_str()) {
                    tracing::warn!(processor = %self.path, module = %self.file.display(), error = %message, "new WASM module refused; the version in force keeps running");
                    *reported = Some(message.clone());
                }
                Err(message)
            }
        }
    }
}

/// A parsed `wasm` processor config, holding the compiled module once loaded.
struct WasmProcessorConfig {
    config: WasmConfig,
    path: String,
    loaded: OnceLock<Arc<LiveModule>>,
}

impl ProcessorConfig for WasmProcessorConfig {
    fn signal_problems(&self, signal: Signal) -> Vec<(String, String)> {
        // A module found only from the config's directory is checked when it is built.
        self.loaded
            .get()
            .and_then(|m| m.signal_problem(signal))
            .map(|message| (format!("{}.module", self.path), message))
            .into_iter()
            .collect()
    }

    fn build(
        &self,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn Stage>, BuildError> {
        let prepared = match self.loaded.get() {
            Some(p) => p.clone(),
            None => {
                let file = ctx.resolve_path(&self.config.module);
                let p = LiveModule::load(&self.config, &file, &self.path).map_err(|e| {
                    BuildError::Other {
                        id: ctx.id.clone(),
                        message: format!("{}.module: {e}", self.path),
                        source: Some(Box::new(e)),
                    }
                })?;
                let _ = self.loaded.set(p.clone());
                p
            }
        };
        prepared
            .use_for(signal)
            .map_err(|message| BuildError::Other {
                id: ctx.id.clone(),
                message: format!("{}.module: {message}", self.path),
                source: None,
            })?;
        Ok(Arc::new(WasmStage::new(
            ctx,
            signal,
            prepared,
            self.config.on_error,
            next,
        )))
    }
}
