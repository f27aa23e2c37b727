//! The `wasm` processor's factory: checking a parsed config, loading the module at parse time
//! (so `weir validate` reports a bad module), and building a stage per pipeline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use weir_api::{
    parse_component_config, BuildContext, BuildError, ConfigErrors, Consumer, ProcessorConfig,
    ProcessorFactory, Signal, SignalSet, Stage,
};

use crate::config::WasmConfig;
use crate::live::LiveModule;
use crate::stage::WasmStage;

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
                    BuildError::other(&ctx.id, format!("{}.module: {e}", self.path), e)
                })?;
                let _ = self.loaded.set(p.clone());
                p
            }
        };
        prepared.use_for(signal).map_err(|message| {
            BuildError::message(&ctx.id, format!("{}.module: {message}", self.path))
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
