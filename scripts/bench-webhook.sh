#!/usr/bin/env bash
# Webhook queue-mode benchmark (BENCHMARKS.md, "Webhook"): the release binary under a local
# Lambda Runtime API (scripts/bench_webhook.py, Python stdlib), WEBHOOK_MODE=queue, single-event
# webhook requests one after another, Secrets Manager and SQS on moto_server (.venv, installed by
# scripts/tools.sh). Prints requests per second of one instance, CPU time per request of the
# function and of moto, and latencies, as JSON.
#   scripts/bench-webhook.sh                      # builds the release binary first
#   BIN=target/release/rudder-clevertap REQUESTS=1000 RUNS=3 scripts/bench-webhook.sh
#   SQS=stub scripts/bench-webhook.sh             # SQS answered by a stdlib stand-in instead
# Other knobs: WARMUP, TIMEOUT (s, default 600), LOG_FILE, FUNCTION_RUST_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/moto_server ] || bash scripts/tools.sh
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --release --bin rudder-clevertap
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  BIN="$TARGET_DIR/release/rudder-clevertap"
fi
PYTHON="${PYTHON:-$(command -v python3)}"
exec "$PYTHON" scripts/bench_webhook.py "$BIN"
