//! A module in force: compiled, ABI-checked and started once ([`PreparedModule`]), and the
//! per-processor holder that replaces it when the `.wasm` file changes ([`LiveModule`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use wasmtime::Module;
use weir_api::reload::Reloadable;
use weir_api::Signal;

use crate::config::WasmConfig;
use crate::engine::shared_engine;
use crate::error::WasmError;
use crate::guest::{check_exports, linker, GuestInstance, GuestTemplate};

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
    pub(crate) fn use_for(&self, signal: Signal) -> Result<(), String> {
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
