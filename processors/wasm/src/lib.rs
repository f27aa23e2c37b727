//! Sandboxed WASM processors: user code compiled to wasm32 runs on every batch of a logs,
//! traces or metrics pipeline, inside wasmtime, with a memory cap, a deadline per batch and no
//! access to files, network, clocks or the environment.
//!
//! ```yaml
//! processors:
//!   wasm/drop_debug:
//!     module: plugins/severity_filter.wasm   # compiled once at start
//!     config:                                # any YAML, handed to the guest as JSON
//!       min_severity: 9
//!     memory_limit_mib: 64                   # default 64
//!     timeout: 100ms                         # per batch, default 100ms
//!     on_error: pass                         # pass (default, fail open) | drop
//!     poll_interval: 2s                      # reload the file when it changes; 0s: SIGHUP only
//! ```
//!
//! The guest sees a whole batch per call as OTLP protobuf bytes and answers "unchanged", one
//! keep/drop verdict per item, or replacement bytes (the ABI is in `wasm-sdk/ABI.md`). Any
//! guest failure (trap, deadline, memory cap, panic, malformed or oversized answer, missing
//! export) leaves the batch as it was (or drops it with `on_error: drop`), throws the instance
//! away, raises `weir_wasm_failures_total{module,cause}` and logs the module and the cause.

mod config;
mod engine;
mod error;
mod factory;
#[doc(hidden)]
pub mod fuzzing;
mod guest;
mod live;
mod outcome;
mod run;
mod stage;

use weir_api::Registry;

pub use config::{OnError, WasmConfig};
pub use error::WasmError;
pub use factory::WasmFactory;
pub use guest::{FailureCause, ABI_VERSION};
pub use run::{run_file, FileFormat, RunCounts};
pub use stage::WasmStage;

/// The component type name in configs.
pub const TYPE_NAME: &str = "wasm";

/// Adds the `wasm` processor type to the registry.
pub fn register(registry: &mut Registry) {
    registry.processor(TYPE_NAME, WasmFactory);
}
