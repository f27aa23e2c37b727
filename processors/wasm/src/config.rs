//! The `wasm` processor's config: what a `wasm/<name>` entry in the YAML holds, and its
//! defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
