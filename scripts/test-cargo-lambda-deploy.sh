#!/usr/bin/env bash
# The README's cargo-lambda route, `make deploy-cargo-lambda`, for real against moto (a local
# AWS emulator on 127.0.0.1, started and stopped here): the pinned cargo-lambda creates the
# function in moto's Lambda with a role made in moto's IAM, then the function is read back
# (architecture, memory, timeout, environment, Function URL and its permissions) and checked
# against what the README promises. `make test` runs it (via check-readme-commands.sh).
#
# The package is not rebuilt here (PACKAGE= skips `make build`, an 18-minute release build):
# moto stores the zip and never runs it, so an aarch64 ELF stand-in is deployed in its place,
# and cargo-lambda reads the architecture from it as it would from the real bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/tools.sh
export PATH="$root/.venv/bin:$PATH"
say() { printf 'cargo-lambda-deploy: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
started=$(date +%s)

work=$(mktemp -d /tmp/rc-deploy.XXXXXX)
moto_pid=
cleanup() {
  local status=$?
  [ -n "$moto_pid" ] && { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

moto_server -H 127.0.0.1 -p 0 >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do grep -qs 'Running on' "$work/moto.log" && break; sleep 0.2; done
port=$(grep -o 'Running on http://127.0.0.1:[0-9]*' "$work/moto.log" | head -1 | sed 's/.*://')
[ -n "$port" ] || { cat "$work/moto.log" >&2; die "moto_server did not start"; }
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none \
  AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

role=$(python - <<'PY'
import json, boto3
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "lambda.amazonaws.com"}}]}
print(boto3.client("iam").create_role(RoleName="rudder-clevertap",
      AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
PY
)

# The package where `make build` leaves it, in a target directory of this run's own: a
# 64-byte ELF header for aarch64 (e_machine 0xb7), all cargo-lambda and moto look at.
mkdir -p "$work/target/lambda/rudder-clevertap"
python - "$work/target/lambda/rudder-clevertap/bootstrap" <<'PY'
import struct, sys
header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
header += struct.pack("<HHIQQQIHHHHHH", 2, 0xB7, 1, 0x400078, 64, 0, 0, 64, 56, 0, 64, 0, 0)
open(sys.argv[1], "wb").write(header)
PY
chmod +x "$work/target/lambda/rudder-clevertap/bootstrap"

say "make deploy-cargo-lambda against moto"
CARGO_TARGET_DIR="$work/target" make --no-print-directory deploy-cargo-lambda PACKAGE= \
  ROLE="$role" DEFAULT_DESTINATION_ID=prod >"$work/deploy.log" 2>&1 ||
  { cat "$work/deploy.log" >&2; die "make deploy-cargo-lambda"; }
sed 's/^/  | /' "$work/deploy.log" >&2

python - "$role" <<'PY' || die "the deployed function differs from the README"
import json, sys, boto3
role = sys.argv[1]
lam = boto3.client("lambda")
config = lam.get_function(FunctionName="rudder-clevertap")["Configuration"]
checks = {
    "architecture": (config.get("Architectures"), ["arm64"]),
    "memory": (config.get("MemorySize"), 256),
    "timeout": (config.get("Timeout"), 30),
    "runtime": (config.get("Runtime"), "provided.al2023"),
    "handler": (config.get("Handler"), "bootstrap"),
    "role": (config.get("Role"), role),
}
env = config.get("Environment", {}).get("Variables", {})
want_env = {"SECRET_PREFIX": "rudder-clevertap/", "MAX_CONCURRENT_REQUESTS": "5",
            "RETRY_BUDGET_SECONDS": "20", "SECRETS_TTL_SECONDS": "300",
            "MAX_BODY_BYTES": "5242880", "RUST_LOG": "info", "DEFAULT_DESTINATION_ID": "prod"}
checks["environment"] = ({k: env.get(k) for k in want_env}, want_env)
checks["no offline mode"] = (sorted(k for k in env if k in ("DRY_RUN", "LOCAL_DESTINATIONS",
                             "LOCAL_DESTINATIONS_FILE", "CLEVERTAP_ENDPOINT")), [])
url = lam.get_function_url_config(FunctionName="rudder-clevertap")
checks["function URL auth"] = (url.get("AuthType"), "NONE")
checks["function URL address"] = (url.get("FunctionUrl", "").startswith("http"), True)
policy = json.loads(lam.get_policy(FunctionName="rudder-clevertap")["Policy"])
actions = sorted(statement["Action"] for statement in policy["Statement"])
print(f"cargo-lambda-deploy: resource policy actions: {actions}", file=sys.stderr)
checks["public URL permissions"] = (actions, ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"])
bad = {name: got for name, (got, want) in checks.items() if got != want}
for name, (got, want) in checks.items():
    print(f"cargo-lambda-deploy: {name}: {got}" + ("" if got == want else f" (want {want})"),
          file=sys.stderr)
assert not bad, bad
PY
say "passed in $(($(date +%s) - started)) s"
