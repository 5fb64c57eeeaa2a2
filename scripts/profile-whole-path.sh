#!/usr/bin/env bash
# Profiles the whole path (BENCHMARKS.md, "Whole path"): the bench-profile binary (optimised,
# symbols kept) under scripts/bench_whole_path.py, one cold start and one 6 MB batch (4,490 messages),
# with one tool wrapped around the function's process and around the `transform` command's:
#   scripts/profile-whole-path.sh callgrind   # instructions per function (valgrind)
#   scripts/profile-whole-path.sh dhat        # allocations per call site (valgrind)
#   scripts/profile-whole-path.sh perf        # on-CPU samples, kernel included (perf, cpu-clock)
# Output files go to OUT (default: a new directory under /tmp); the function's is the larger
# one of each pair. Needs valgrind or perf (Debian: `apt-get install valgrind linux-perf`).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOL="${1:?usage: $0 callgrind|dhat|perf}"
OUT="${OUT:-$(mktemp -d /tmp/profile-whole-path.XXXXXX)}"
mkdir -p "$OUT"
CARGO_PROFILE_BENCH_DEBUG=line-tables-only cargo build --quiet --profile bench --bin rudder-clevertap
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="$TARGET_DIR/release/rudder-clevertap"
case "$TOOL" in
  callgrind) RUN="valgrind --tool=callgrind --callgrind-out-file=$OUT/callgrind.%p" ;;
  dhat) RUN="valgrind --tool=dhat --dhat-out-file=$OUT/dhat.%p" ;;
  perf) RUN="perf record -q -e cpu-clock -F 4000 -g -o $OUT/perf.\$\$.data --" ;;
  *) echo "unknown tool: $TOOL (callgrind, dhat or perf)" >&2; exit 2 ;;
esac
WRAPPER="$OUT/run-function.sh"
printf '#!/bin/sh\nexec %s %s "$@"\n' "$RUN" "$BIN" > "$WRAPPER"
chmod +x "$WRAPPER"
COLD_STARTS=1 WARM_RUNS="${WARM_RUNS:-1}" TRANSFORM_REPEAT=1 TIMEOUT="${TIMEOUT:-900}" \
  python3 scripts/bench_whole_path.py "$WRAPPER" > "$OUT/bench.json"
ls -S "$OUT"
echo "profiles in $OUT (callgrind_annotate --inclusive=yes FILE; perf report -i FILE)" >&2
