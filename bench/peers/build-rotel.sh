#!/usr/bin/env bash
# Builds the current rotel release from its public source, for the side-by-side runs in
# BENCHMARKS.md. Its Cargo.toml takes three git dependencies; this machine reaches only the
# package registries, so they come from local copies:
#   - opentelemetry, opentelemetry_sdk, opentelemetry-proto: a checkout of
#     github.com/open-telemetry/opentelemetry-rust at the revision rotel pins (0948c61),
#     pointed at by a [patch] section;
#   - daemonize (rotel pins a fork, branch passy-pr54, that makes `ErrorKind` and
#     `Error::kind` public, which rotel's main.rs matches on): crates.io's daemonize 0.5.0
#     with those two items made public, the only difference rotel relies on;
#   - opentelemetry-prometheus-text-exporter (a fork, optional, only for rotel's
#     `prometheus` feature, which serves rotel's own metrics): removed with that feature.
# Built with --no-default-features: the defaults add Kafka (librdkafka built from C), AWS
# IAM, the file receiver and the Rust processor SDK, none of which the OTLP -> OTLP forward
# benchmark uses. Release profile as rotel ships it (fat LTO).
#
# Usage: bench/peers/build-rotel.sh ROTEL_SRC OTEL_RUST_SRC WORK_DIR
#   ROTEL_SRC      a checkout of github.com/streamfold/rotel (BENCHMARKS.md names the commit)
#   OTEL_RUST_SRC  a checkout of github.com/open-telemetry/opentelemetry-rust
#   WORK_DIR       where the patched copies go; the binary is WORK_DIR/target/release/rotel
#                  (or $CARGO_TARGET_DIR/release/rotel when that is set)
# Needs cmake and protoc (Debian: cmake, protobuf-compiler).
set -euo pipefail
rotel_src=$(realpath "$1"); otel_src=$(realpath "$2"); work=$(realpath -m "$3")
mkdir -p "$work"
rm -rf "$work/rotel" "$work/otel-rust" "$work/daemonize"
git clone -q "$rotel_src" "$work/rotel"
git clone -q "$otel_src" "$work/otel-rust"
git -C "$work/otel-rust" checkout -q 0948c61

# daemonize 0.5.0 from crates.io, through a throwaway project so cargo downloads it.
probe="$work/daemonize-probe"
rm -rf "$probe"; mkdir -p "$probe/src"
printf '[package]\nname = "probe"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ndaemonize = "=0.5.0"\n' >"$probe/Cargo.toml"
echo 'fn main() {}' >"$probe/src/main.rs"
(cd "$probe" && cargo fetch -q)
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/daemonize-0.5.0 | head -n1)
cp -r "$src" "$work/daemonize"
rm -rf "$probe" "$work/daemonize/.cargo_vcs_info.json"
sed -i 's/^    kind: ErrorKind,/    pub kind: ErrorKind,/' "$work/daemonize/src/error.rs"
sed -i 's/^pub use self::error::Error;/pub use self::error::{Error, ErrorKind};/;
        s/^use self::error::{check_err, errno, ErrorKind};/use self::error::{check_err, errno};/' \
  "$work/daemonize/src/lib.rs"

python3 - "$work/rotel/Cargo.toml" <<'PY'
import re, sys
path = sys.argv[1]
s = open(path).read()
s, n = re.subn(r'(?m)^daemonize = \{ git = [^\n]*\}$', 'daemonize = { path = "../daemonize" }', s)
assert n == 1, "daemonize dependency line not found"
s, n = re.subn(r'(?m)^opentelemetry-prometheus-text-exporter = \{ git = [^\n]*\}\n', '', s)
assert n == 1, "prometheus text exporter dependency line not found"
s = re.sub(r'(?m)^prometheus = \["dep:opentelemetry-prometheus-text-exporter"\]\n', '', s)
s += '''
[patch."https://github.com/open-telemetry/opentelemetry-rust"]
opentelemetry = { path = "../otel-rust/opentelemetry" }
opentelemetry_sdk = { path = "../otel-rust/opentelemetry-sdk" }
opentelemetry-proto = { path = "../otel-rust/opentelemetry-proto" }
'''
open(path, "w").write(s)
PY

cd "$work/rotel"
# rotel pins a toolchain (rust-toolchain.toml) that may not be installed; stable builds it.
target="${CARGO_TARGET_DIR:-$work/target}"
RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}" CARGO_TARGET_DIR="$target" \
  cargo build --release --no-default-features --bin rotel
"$target/release/rotel" --version
