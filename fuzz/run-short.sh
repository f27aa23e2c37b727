#!/usr/bin/env bash
# The CI fuzz run: builds every target once with stable rustc (libFuzzer with
# sanitizer-coverage instrumentation, no sanitizer; see README.md), then runs each for a few
# seconds over a copy of its committed corpus, so the run never changes the repository.
# Fails on any crash, panic, leak of the time or memory bounds, or failed property.
#
# Usage: fuzz/run-short.sh [SECONDS_PER_TARGET] [TARGET...]   (default 5 s, every target)
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-5}"
shift || true
all_targets=(otlp_json_decode otlp_proto_decode config_yaml policy_parse ottl_parse wasm_output
  catalog_ingest policy_sync_request zipkin_json_decode zipkin_proto_decode
  prometheus_text jaeger_thrift_decode metric_splice)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

# The host triple is given explicitly so that build scripts and proc macros (built for the
# host without --target) do not get the instrumentation flags.
triple="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  -Cdebug-assertions -Coverflow-checks"

echo "== fuzz: build (release, $triple, $CARGO_TARGET_DIR)"
cargo build --release --target "$triple" --bins

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
for t in "${targets[@]}"; do
  corpus="$work/corpus-$t"
  mkdir -p "$corpus"
  cp corpus/"$t"/* "$corpus"/
  args=(-max_total_time="$seconds" -runs=2000000 -timeout=10 -rss_limit_mb=2048
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/$t-")
  dict="dicts/$t.dict"
  [ -f "$dict" ] && args+=(-dict="$dict")
  echo "== fuzz: $t (${seconds}s, seeds: $(ls corpus/"$t" | wc -l))"
  if ! "$CARGO_TARGET_DIR/$triple/release/$t" "$corpus" "${args[@]}" >"$work/$t.log" 2>&1; then
    tail -n 60 "$work/$t.log"
    for a in "$work/$t-"*; do
      [ -f "$a" ] || continue
      mkdir -p artifacts/"$t"
      cp "$a" artifacts/"$t"/
      echo "crash input saved as fuzz/artifacts/$t/$(basename "$a") ($(wc -c <"$a") bytes, base64 below)"
      base64 -w0 "$a"; echo
    done
    failed+=("$t")
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$work/$t.log" | tr '\n' ' '
    echo
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
