//! Guest-side SDK for Weir WASM processors (see ABI.md).
