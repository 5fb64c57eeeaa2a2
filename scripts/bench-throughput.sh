#!/usr/bin/env bash
# Throughput of one instance (BENCHMARKS.md, "Throughput of one instance (issue 22)"): the
# release binary under a local Lambda Runtime API, its CPU limited to the share of a vCPU the
# template's MemorySize buys (a cgroup v1 cpu group: needs root), batches as Lambda hands them
# out at the template's BatchSize under a full queue (<= 6 MB), a CleverTap stand-in answering
# after LATENCY_MS that enforces 15 in flight and 1000 records (scripts/bench_throughput.py,
# Python stdlib only). Prints a table and one JSON line per run.
#   scripts/bench-throughput.sh                          # builds the release binary first
#   BIN=target/release/rudder-clevertap RUNS=3 scripts/bench-throughput.sh
#   BATCH_SIZE=100 INVOCATIONS=50 BIN=... scripts/bench-throughput.sh   # the old BatchSize
#   MEMORY_MB=512 BIN=... scripts/bench-throughput.sh                    # another memory setting
# Other knobs: RUNS (default 1), LATENCY_MS (150), INVOCATIONS (20), RESULTS (append each run's
# JSON line to this file; scripts/cost_per_million.py reads it), LOG_FILE, TIMEOUT, TEMPLATE.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench-throughput needs root: it limits the function's CPU with a cgroup under /sys/fs/cgroup/cpu" >&2
  exit 2
fi
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --release --bin rudder-clevertap
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  BIN="$TARGET_DIR/release/rudder-clevertap"
fi
PYTHON="${PYTHON:-$(command -v python3)}"
for run in $(seq 1 "${RUNS:-1}"); do
  [ "${RUNS:-1}" = 1 ] || echo "--- run $run of $RUNS" >&2
  "$PYTHON" scripts/bench_throughput.py "$BIN"
done
