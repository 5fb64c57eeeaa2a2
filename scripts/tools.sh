#!/usr/bin/env bash
# Installs the Python-packaged tools the tests and packaging need into .venv (idempotent):
# moto_server (Secrets Manager + SQS emulator), cargo-lambda, cfn-lint, zig for cross builds, and
# the AWS SAM CLI (`sam validate --lint` in `make validate`).
# Versions are pinned so a fresh machine gets what CI tested; changing PINS re-installs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PINS=(
  "moto[server]==5.2.5"
  "cargo-lambda==1.9.2"
  "cfn-lint==1.58.0"
  "ziglang==0.14.1"
  "aws-sam-cli==1.170.0"
)
stamp="$VENV/.tools-$(printf '%s\n' "${PINS[@]}" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then exit 0; fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
touch "$stamp"
echo "tools installed in $VENV: ${PINS[*]}" >&2
