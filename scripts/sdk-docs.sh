#!/usr/bin/env bash
# Builds the WASM SDK reference (rustdoc of wasm-sdk, weir-wasm-sdk) and fails on any rustdoc
# warning (broken links, missing docs: the crate denies missing_docs). Output:
#   ${CARGO_TARGET_DIR:-target}/doc/weir_wasm_sdk/index.html
# The doc examples themselves run as doctests in `cargo test -p weir-wasm-sdk`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTDOCFLAGS="-D warnings" cargo doc -p weir-wasm-sdk --no-deps
echo "SDK reference: ${CARGO_TARGET_DIR:-target}/doc/weir_wasm_sdk/index.html"
