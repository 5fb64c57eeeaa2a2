#!/usr/bin/env bash
# Runs the README's commands that can run on any machine (no AWS account, no internet), so the
# README cannot silently rot, and checks that every file name the docs mention exists. Commands
# that cannot run here are listed as skipped, with why. The three local routes of "Try it
# locally" all run: `make run`, `sam build` + `sam local invoke` (scripts/test-sam-local.sh,
# Docker installed and started by it), `make invoke-local` (cargo lambda watch + invoke); and
# `make deploy-cargo-lambda` against moto (scripts/test-cargo-lambda-deploy.sh).
#
# Usage: scripts/check-readme-commands.sh [--with-build] [--with-arm64]
#   --with-build  also run `make build-x86` (a release build through cargo-lambda and zig:
#                 6 to 20+ minutes from scratch, depending on load) and check that it produced
#                 an x86-64 target/lambda/rudder-clevertap/bootstrap.
#   --with-arm64  also run `make build`, the arm64 package template.yaml deploys (as long
#                 again; adds the aarch64 Rust target first if it is missing, which needs
#                 internet) and check that it produced an aarch64 bootstrap.
#
# `make test` runs it after the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

with_build=false with_arm64=false
for arg in "$@"; do
  case "$arg" in
    --with-build) with_build=true ;;
    --with-arm64) with_arm64=true ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

passed=0 failed=0 skipped=0
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# check NAME COMMAND...: runs COMMAND, counts it, shows its output's tail when it fails.
check() {
  local name=$1 log="$logdir/$((passed + failed + skipped)).log"
  shift
  printf '%-44s ' "$name"
  if "$@" >"$log" 2>&1; then
    echo ok
    passed=$((passed + 1))
  else
    echo "FAILED (exit $?): $*"
    tail -n 30 "$log" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

# skip NAME REASON: counts a README command this script does not run, and says why.
skip() {
  printf '%-44s skipped: %s\n' "$1" "$2"
  skipped=$((skipped + 1))
}

# An ELF executable for the given machine (e_machine 0x3e x86-64, 0xb7 aarch64).
is_elf_for() {
  local file=$1 machine=$2
  [ -f "$file" ] || { echo "missing $file"; return 1; }
  [ "$(head -c 4 "$file" | od -An -c | tr -d ' ')" = '177ELF' ] || { echo "$file is not ELF"; return 1; }
  [ "$(od -An -tx1 -j18 -N1 "$file" | tr -d ' ')" = "$machine" ] || { echo "$file is for another CPU"; return 1; }
}

# `make run`: the handler's SQS batch response on stdout, one message reported for retry.
run_main_job() {
  local out
  out=$(make --no-print-directory -s run 2>/dev/null)
  python3 -c 'import json,sys; r=json.load(sys.stdin); f=r["batchItemFailures"]; assert [x["itemIdentifier"] for x in f]==["0c2b8f6e-1a1e-4d1c-9a55-000000000006"], r' <<<"$out"
}

# `make transform-sample`: the transform's JSON (exit 0: all ok, 1: some event rejected).
run_transform_sample() {
  local out status=0
  out=$(make --no-print-directory -s transform-sample) || status=$?
  [ "$status" -le 1 ] || return "$status"
  grep -q '"results"' <<<"$out"
}

# The README's stdin example prints exactly the JSON the README shows.
run_transform_stdin() {
  local out
  out=$(echo '{"type":"track","userId":"u1","event":"Signed Up"}' |
    cargo run -q -- transform --destination events/destination.example.json -)
  python3 - "$out" <<'PY'
import json, sys
got = json.loads(sys.argv[1])
want = {"requests": [{"method": "POST", "url": "https://api.clevertap.com/1/upload",
         "headers": {"X-CleverTap-Account-Id": "W9R-000-EXAM", "X-CleverTap-Passcode": "<redacted>",
                     "Content-Type": "application/json"},
         "body": {"d": [{"evtName": "Signed Up", "evtData": {}, "type": "event", "identity": "u1"}]},
         "events": [0]}],
        "results": [{"index": 0, "messageId": None, "status": "ok"}]}
assert got == want, json.dumps(got)
PY
}

# `invoke --dry-run` on the webhook sample: an API Gateway v2 response with per-event results.
run_invoke_webhook() {
  local out
  out=$(cargo run -q -- invoke --dry-run --destinations events/destinations.example.json \
    events/apigw-v2-request.json 2>/dev/null)
  python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["statusCode"]==200, r; b=json.loads(r["body"]); assert b["delivered"]>0 and b["retry"]==0, b' <<<"$out"
}

# The README's regulation example: one delete request with both identities.
run_transform_regulation() {
  local out
  out=$(echo '{"regulationType":"suppress_with_delete","users":[{"userId":"u-1"},{"userId":"u-2"}]}' |
    cargo run -q -- transform --destination events/destination.example.json -)
  python3 -c 'import json,sys; r=json.load(sys.stdin); q=r["requests"]; assert len(q)==1 and q[0]["url"].endswith("/1/delete/profiles.json") and q[0]["body"]=={"identity":["u-1","u-2"]}, r' <<<"$out"
}

run_invoke_sqs_regulation() {
  local out
  out=$(cargo run -q -- invoke --dry-run --destinations events/destinations.example.json \
    events/sqs-regulation.json 2>/dev/null)
  python3 -c 'import json,sys; r=json.load(sys.stdin); assert r=={"batchItemFailures":[]}, r' <<<"$out"
}

run_invoke_http_regulation() {
  local out
  out=$(cargo run -q -- invoke --dry-run --destinations events/destinations.example.json \
    events/http-regulation.json 2>/dev/null)
  python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["statusCode"]==200, r' <<<"$out"
}

# `make invoke-local`: the Lambda loop under cargo lambda watch, offline, answers as `make run` /
# `invoke --dry-run` do on the same event.
run_invoke_local() {
  local event=$1 got want
  got=$(make --no-print-directory -s invoke-local INVOKE_EVENT="$event" 2>/dev/null | tail -n 1)
  want=$(cargo run -q -- invoke --dry-run --destinations events/destinations.example.json "$event" 2>/dev/null)
  python3 -c 'import json,sys; g,w=json.loads(sys.argv[1]),json.loads(sys.argv[2]); assert g==w, (g,w)' "$got" "$want"
}

run_version() {
  [ "$(cargo run -q -- --version)" = "rudder-clevertap $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ]
}

check "file names in README and docs exist" python3 scripts/check_doc_paths.py
check "README's cost table = cost_per_million.py" \
  python3 scripts/cost_per_million.py --check README.md docs/bench/throughput.jsonl
check "make help" make --no-print-directory help
check "make tools" make --no-print-directory tools
check "make validate (cfn-lint template.yaml)" make --no-print-directory validate
check "make run (handler on events/sqs-batch.json)" run_main_job
check "make transform-sample" run_transform_sample
check "transform from stdin (README example)" run_transform_stdin
check "invoke --dry-run events/apigw-v2-request.json" run_invoke_webhook
check "transform a regulation from stdin" run_transform_regulation
check "invoke --dry-run events/sqs-regulation.json" run_invoke_sqs_regulation
check "invoke --dry-run events/http-regulation.json" run_invoke_http_regulation
check "make -n deploy (target exists)" make --no-print-directory -n deploy
check "make -n deploy-cargo-lambda (target exists)" \
  make --no-print-directory -n deploy-cargo-lambda ROLE=arn:aws:iam::123456789012:role/example
skip "make test" "this script is part of it"
skip "make lint" "run by CI"
skip "make bench" "minutes of release-mode benchmarking; figures are in BENCHMARKS.md"
skip "make bench-throughput" "needs root and a cgroup v1 cpu controller; figures are in BENCHMARKS.md"
if $with_arm64; then
  check "make build (arm64)" make --no-print-directory build
  check "build made an aarch64 bootstrap" \
    is_elf_for target/lambda/rudder-clevertap/bootstrap b7
else
  skip "make build (arm64)" "slow release build; pass --with-arm64 to run it"
fi
if $with_build; then
  check "make build-x86" make --no-print-directory build-x86
  check "build-x86 made an x86-64 bootstrap" \
    is_elf_for target/lambda/rudder-clevertap/bootstrap 3e
else
  skip "make build-x86" "slow release build; pass --with-build to run it"
fi
check "rudder-clevertap --version" run_version
check "make invoke-local (sqs-batch.json, offline)" run_invoke_local events/sqs-batch.json
check "make invoke-local (function-url-request.json)" run_invoke_local events/function-url-request.json
check "sam build + sam local invoke (Docker)" bash scripts/test-sam-local.sh
check "make deploy-cargo-lambda against moto" bash scripts/test-cargo-lambda-deploy.sh
skip "make deploy" "needs an AWS account and credentials"
skip "dead-letters summary / redrive" "need a deployed queue; tests/it/dead_letters.rs runs both against moto"
skip "make invoke-local OFFLINE=" "the handler would call Secrets Manager and CleverTap"

echo
echo "readme-commands: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
