#!/usr/bin/env bash
# Throughput of one instance (BENCHMARKS.md, "Throughput of one instance (issue 22)"): the
# release binary under a local Lambda Runtime API, its CPU limited to the share of a vCPU the
# template's MemorySize buys (a cgroup v1 cpu group: needs root), batches as Lambda hands them
# out at the template's BatchSize under a full queue (<= 6 MB), a CleverTap stand-in answering
# after LATENCY_MS that enforces 15 in flight and 1000 records (scripts/bench_throughput.py,
# Python stdlib only). Prints a table and one JSON line per run.
#   scripts/bench-throughput.sh          # builds the release binary, 3 runs at the template's
#                                        # defaults, 1 at BatchSize 100, then the cost table
#   BIN=target/release/rudder-clevertap RUNS=1 COMPARE_BATCH_SIZE= scripts/bench-throughput.sh
#   MEMORY_MB=512 BIN=... scripts/bench-throughput.sh                  # another memory setting
#   BATCH_SIZE=100 INVOCATIONS=50 COMPARE_BATCH_SIZE= BIN=... scripts/bench-throughput.sh
# Knobs: RUNS (3), COMPARE_BATCH_SIZE (100; empty: no comparison run), COMPARE_INVOCATIONS (50),
# BATCH_SIZE, MEMORY_MB, LATENCY_MS (150), INVOCATIONS (20), RESULTS (the JSON lines go there;
# default a fresh file under /tmp, named at the end), LOG_FILE, TIMEOUT, TEMPLATE.
# scripts/cost_per_million.py RESULTS prints the cost table again; --write README.md puts it in.
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
RESULTS="${RESULTS:-$(mktemp /tmp/bench-throughput.XXXXXX.jsonl)}"
export RESULTS
RUNS="${RUNS:-3}"
for run in $(seq 1 "$RUNS"); do
  echo "--- run $run of $RUNS" >&2
  "$PYTHON" scripts/bench_throughput.py "$BIN"
done
COMPARE_BATCH_SIZE="${COMPARE_BATCH_SIZE-100}"
if [ -n "$COMPARE_BATCH_SIZE" ]; then
  echo "--- BatchSize $COMPARE_BATCH_SIZE, for the comparison" >&2
  BATCH_SIZE="$COMPARE_BATCH_SIZE" INVOCATIONS="${COMPARE_INVOCATIONS:-50}" \
    "$PYTHON" scripts/bench_throughput.py "$BIN"
fi
echo "--- a million events, from the runs above ($RESULTS)" >&2
"$PYTHON" scripts/cost_per_million.py "$RESULTS"
