#!/usr/bin/env bash
# The project's test command (README "Test"): installs what the tests need on a fresh
# machine, then runs format, lint, the whole test suite and, beside the project, the
# policy conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain targets"
rustup target add wasm32-unknown-unknown wasm32-wasip1

echo "== C toolchain, make and perl (SQLCipher and its OpenSSL are built from source)"
if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1 || ! command -v perl >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential perl >/dev/null
fi

echo "== browser for the UI tests (Debian chromium + chromedriver)"
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

echo "== Prometheus, node_exporter and the Python Prometheus client (an OpenMetrics target) for the Prometheus tests (Debian packages; the tests start their own on loopback)"
if ! command -v prometheus >/dev/null 2>&1 || ! command -v prometheus-node-exporter >/dev/null 2>&1 \
  || ! /usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-node-exporter python3-prometheus-client >/dev/null
fi

echo "== PostgreSQL for the control plane's PostgreSQL store and replica tests (Debian package; the tests start their own server on loopback, as nobody when run as root)"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
# Installed: those tests fail rather than skip.
export WEIR_REQUIRE_POSTGRES=1

echo "== python test clients"
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

echo "== Node.js + npm: OIDC test provider (tests/oidc/, for catalog/tests/oidc.rs); the AssemblyScript guest (processors/wasm/tests/assemblyscript.rs runs npm ci in wasm-sdk/examples/assemblyscript)"
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --prefix tests/oidc --no-audit --no-fund --silent

echo "== format"
cargo fmt --all -- --check

echo "== lint"
cargo clippy --workspace --all-targets -- -D warnings

echo "== wasm-sdk examples (their own workspace): format, lint, native unit tests"
cargo fmt --manifest-path wasm-sdk/examples/Cargo.toml --all -- --check
cargo clippy --manifest-path wasm-sdk/examples/Cargo.toml --all-targets -- -D warnings
cargo test --manifest-path wasm-sdk/examples/Cargo.toml

echo "== wasm-sdk reference (rustdoc, warnings are errors)"
scripts/sdk-docs.sh

echo "== build"
cargo build --workspace --bins

echo "== fuzz smoke run (every fuzz target, 5 s each over its committed corpus; fails on any crash)"
fuzz/run-short.sh 5

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

weir_bin="${CARGO_TARGET_DIR:-target}/debug/weir"

echo "== interop: official OpenTelemetry Python SDK -> weir"
python3 tests/interop/python_sdk.py "$weir_bin"

echo "== interop: OpenTelemetry Python SDK's Zipkin exporters (v2 JSON, v1 JSON, v2 protobuf) -> weir's zipkin receiver"
python3 tests/interop/zipkin_sdk.py "$weir_bin"

echo "== interop: OpenTelemetry Python SDK's Jaeger exporters (Thrift over HTTP and agent UDP, protobuf over gRPC) -> weir's jaeger receiver"
python3 tests/interop/jaeger_sdk.py "$weir_bin"

echo "== connectors: OpenTelemetry Python SDK -> weir with routing, count and forward"
python3 tests/interop/connectors.py "$weir_bin"

echo "== processors: OpenTelemetry Python SDK -> weir with resource, attributes"
python3 tests/interop/processors.py "$weir_bin"

echo "== collector config forms: Python SDK -> weir with key: n, ParseJSON, append, combine, group"
python3 tests/interop/collector_config_forms.py "$weir_bin"

echo "== advice end to end: control plane + edge, Python SDK telemetry from loghub-2k + planted waste"
python3 tests/interop/advice_e2e.py "$weir_bin"

echo "== benchmark harness smoke run (every scenario, one second each; fails on any loss)"
"${CARGO_TARGET_DIR:-target}/debug/weir-bench" run --weir "$weir_bin" --targets direct,weir \
  --scenarios forward,drop,wasm,metadata,edge --signals logs,traces --batch 100 \
  --duration 1s --repeat 1 --cores "" --connections 2 --fail-on-loss
"${CARGO_TARGET_DIR:-target}/debug/weir-bench" run --weir "$weir_bin" --targets direct,weir \
  --scenarios forward,drop,edge --signals metrics --batch 100 \
  --duration 1s --repeat 1 --cores "" --connections 2 --fail-on-loss
"${CARGO_TARGET_DIR:-target}/debug/weir-bench" run --weir "$weir_bin" --targets weir \
  --scenarios limiter,batch,batch-disk --signals logs --batch 100 --sink-delay 50ms \
  --duration 1s --repeat 1 --cores "" --connections 2 --fail-on-loss

conformance=../shared/datasets/policy-conformance
if [ -d "$conformance" ] && [ -f ../shared/tools/policy-conformance.py ]; then
  echo "== policy conformance (../shared)"
  python3 ../shared/tools/policy-conformance.py --cases "$conformance/testcases" -- "$weir_bin" policy eval
fi
