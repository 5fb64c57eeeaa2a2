#!/usr/bin/env bash
# Whole-path benchmark (BENCHMARKS.md, "Whole path"): the release binary under a local Lambda
# Runtime API, with a mock CleverTap and a stand-in Secrets Manager, all on 127.0.0.1
# (scripts/bench_whole_path.py, Python stdlib only). Prints cold start, the wall and CPU time of
# the largest SQS batch Lambda hands over (as many messages as fit 6 MB of invocation payload,
# worked out and printed by the script), peak RSS and the binary's size, as JSON.
#   scripts/bench-whole-path.sh                      # builds the release binary first
#   BIN=target/release/rudder-clevertap MESSAGES=1000 WARM_RUNS=5 scripts/bench-whole-path.sh
#   MESSAGES=10000 BIN=... scripts/bench-whole-path.sh  # 14 MB: above what Lambda delivers
# Other knobs: MOCK_LATENCY_MS (CleverTap's answer delay), TIMEOUT (s, default 300),
# LOG_FILE (the function's stdout and stderr: logs and EMF lines), FUNCTION_RUST_LOG (its RUST_LOG).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --release --bin rudder-clevertap
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  BIN="$TARGET_DIR/release/rudder-clevertap"
fi
PYTHON="${PYTHON:-$(command -v python3)}"
exec "$PYTHON" scripts/bench_whole_path.py "$BIN"
