//! Why a WASM module could not be used.

/// Why a module could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The file could not be read.
    #[error("cannot read WASM module {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// wasmtime rejected the module, or creating or initialising an instance failed.
    #[error("WASM module {path}: {what}: {source}")]
    Wasmtime {
        /// The file.
        path: String,
        /// The step that failed.
        what: &'static str,
        /// What wasmtime said.
        #[source]
        source: wasmtime::Error,
    },
    /// The module does not follow the Weir ABI.
    #[error("WASM module {path}: {message} (see wasm-sdk/ABI.md)")]
    Abi {
        /// The file.
        path: String,
        /// What is missing or wrong.
        message: String,
    },
}
