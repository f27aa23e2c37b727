#!/usr/bin/env bash
# Re-measures every figure of BENCHMARKS.md in one run, one section after another, with the
# commands BENCHMARKS.md shows. Run it from the repository root on a machine doing nothing
# else (2 cores: the harness on core 1, the target on core 0); each section's output goes to
# OUT/<n>-<name>.txt, and OUT/run.txt says when each section started and ended.
#
# Usage: bench/run-all.sh OUT [SECTION...]
#   With SECTION names, only those run (names as in the list at the end of this file).
# Environment:
#   CARGO_TARGET_DIR   where the release build goes (default: target)
#   ROTEL_NEW          the current rotel's binary, built by bench/peers/build-rotel.sh
#                      (the rotel sections are skipped, and say so, without it)
#   ROTEL_OLD          rotel-agent of the PyPI alpha (default: installed with pip here)
#   WEIR_BEFORE        another build's weir, for the before/after section (skipped without)
#   DURATION, REPEAT   of every weir-bench run (default 5s, 3)
# Needs: the wasm32-unknown-unknown target (rustup), Python 3 with pip, and for the filelog
# section the requirements of tests/requirements.txt (otelcol-contrib).
set -uo pipefail
out=$(realpath -m "${1:?usage: bench/run-all.sh OUT [SECTION...]}")
shift
mkdir -p "$out"
T=${CARGO_TARGET_DIR:-target}
D=${DURATION:-5s}
R=${REPEAT:-3}
W=$T/release/weir
B=$T/release/weir-bench
log() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$out/run.txt"; }
n=0
section() {
  local name=$1
  shift
  n=$((n + 1))
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $name "* ]]; then
    return
  fi
  log "start $n-$name"
  ("$@") >"$out/$n-$name.txt" 2>&1
  log "end   $n-$name (exit $?), load $(cut -d' ' -f1-3 /proc/loadavg)"
}
wanted=("$@")

build() {
  cargo build --release -p weir -p weir-bench
  rustup target add wasm32-unknown-unknown
  cargo build --release --target wasm32-unknown-unknown \
    --manifest-path wasm-sdk/examples/Cargo.toml --target-dir target/wasm-examples
  git log -1 --format='commit %H %s'
}

# The end-to-end table: every scenario, logs/traces/metrics, batches of 1,000 and 100,
# with the current rotel (forward only: it has no policy, WASM or summary processor).
e2e() {
  local rotel=()
  if [ -n "${ROTEL_NEW:-}" ]; then rotel=(--targets weir,rotel --rotel "$ROTEL_NEW"); else
    echo "ROTEL_NEW not set: Weir only"; rotel=(--targets weir); fi
  taskset -c 1 "$B" run "${rotel[@]}" --weir "$W" \
    --scenarios forward,drop,wasm,metadata,edge --signals logs,traces,metrics --batch 1000,100 \
    --duration "$D" --repeat "$R" --cores 0
}

# The old peer: the PyPI alpha of rotel, forward.
rotel_old() {
  local agent=${ROTEL_OLD:-}
  if [ -z "$agent" ]; then
    pip install -q rotel==0.0.1a15 || return 1
    agent=$(python3 -c "import rotel,os;print(os.path.dirname(rotel.__file__))")/rotel-agent
  fi
  taskset -c 1 "$B" run --targets rotel --rotel "$agent" --scenarios forward \
    --signals logs,traces --batch 1000,100 --duration "$D" --repeat "$R" --cores 0
}

# The edge as shipped under more load than 4 connections offer: how much the summariser
# reads (read%) when the data path needs the core.
edge_load() {
  for c in 4 8 16 32; do
    echo "== connections $c"
    taskset -c 1 "$B" run --targets weir --weir "$W" --scenarios drop,edge \
      --signals logs,traces --batch 1000 --connections "$c" --duration "$D" --repeat "$R" --cores 0
  done
  # Issue #21's target: 2 M items/s offered at a fixed rate (64 connections: each request
  # is answered when its batch is exported, so fewer cannot carry 2 M/s).
  echo "== fixed rate 2,000,000 items/s, 64 connections"
  taskset -c 1 "$B" run --targets weir --weir "$W" --scenarios edge \
    --signals logs,traces,metrics --batch 1000 --connections 64 --rate 2000000 \
    --duration "$D" --repeat "$R" --cores 0
}

# Before/after, alternating, one run each per round (WEIR_BEFORE: another build's weir;
# skipped without it): the edge as shipped and the summary scenario.
pair() {
  if [ -z "${WEIR_BEFORE:-}" ]; then echo "WEIR_BEFORE not set: skipped"; return 0; fi
  for r in $(seq "$R"); do
    for b in "$WEIR_BEFORE" "$W"; do
      echo "== round $r: $b"
      taskset -c 1 "$B" run --targets weir --weir "$b" --scenarios metadata,edge \
        --signals logs,traces --batch 1000 --duration "$D" --repeat 1 --cores 0
    done
  done
}

# Added latency: a fixed rate straight to the sink (direct) and through Weir.
latency() {
  taskset -c 1 "$B" run --targets direct,weir --weir "$W" --scenarios forward \
    --signals logs --batch 1000 --rate 1000000 --duration "$D" --repeat "$R" --cores 0
  taskset -c 1 "$B" run --targets direct,weir --weir "$W" --scenarios forward \
    --signals logs --batch 100 --rate 500000 --duration "$D" --repeat "$R" --cores 0
}

durability() {
  taskset -c 1 "$B" run --targets weir --weir "$W" --scenarios limiter --signals logs \
    --batch 1000 --sink-delay 300ms --duration 15s --repeat "$R" --cores 0
  taskset -c 1 "$B" run --targets weir --weir "$W" --scenarios forward,batch,batch-disk \
    --signals logs --batch 1000 --duration "$D" --repeat "$R" --cores 0
}

summariser() {
  taskset -c 1 "$B" summarise --signal logs --passes 10
  taskset -c 1 "$B" summarise --signal traces --passes 10
}

loghub() {
  cargo build --release -p weir-summary --example loghub_accuracy
  taskset -c 1 "$T/release/examples/loghub_accuracy" ../shared/datasets/loghub-2k
  WEIR_BENCH_ONLY=1 WEIR_BENCH_PROCESSOR=1 taskset -c 1 \
    "$T/release/examples/loghub_accuracy" ../shared/datasets/loghub-2k
}

prom() {
  taskset -c 1 "$B" prom-scrape --scale 200 --duration "$D" --repeat "$R"
}

fleet() {
  ulimit -n 20000
  "$B" fleet --weir "$W" --edges 10,100,500,1000,2000,5000 --duration 60s --json "$out/fleet.json"
  "$B" fleet --weir "$W" --edges 200 --compress 10 --duration 30s
}

filelog() {
  cargo test --release -p weir --test filelog_vs_collector --no-run
  WEIR_BIN=$(realpath "$W") FILELOG_BENCH_LINES=250000 FILELOG_BENCH_ROUNDS=3 \
    timeout 1800 taskset -c 1 cargo test --release -p weir --test filelog_vs_collector bench \
    -- --ignored --nocapture
}

components() {
  cargo bench -p weir-api --bench receipt_check
  cargo bench -p weir-bench --bench receive
  cargo bench -p weir-policy-engine --bench policy_match
  cargo bench -p weir-wasm --bench drop_rule
  cargo bench -p weir-wasm --bench signal_jobs -- --warm-up-time 1 --measurement-time 4
}

section build build
if ! grep -q "end   1-build (exit 0)" "$out/run.txt" && { [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" build "* ]]; }; then
  log "the build failed: nothing is measured on old binaries"
  exit 1
fi
section e2e e2e
section rotel_old rotel_old
section edge_load edge_load
section pair pair
section latency latency
section durability durability
section summariser summariser
section loghub loghub
section prom prom
section fleet fleet
section filelog filelog
section components components
log "done"
