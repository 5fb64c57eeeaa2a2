#!/usr/bin/env bash
# The README's `sam local invoke` route, run for real on this machine, offline: it proves that
# `sam build` + `sam local invoke <Function> -e events/... --env-vars events/env.local.json`
# prints the same answer as `make run` / `invoke --dry-run`, and that a real delivery works
# through SAM (settings from moto's Secrets Manager, uploads to a CleverTap stand-in, the bad
# event dead-lettered into moto's queue). `make test` runs it (via check-readme-commands.sh).
#
# What it needs and starts, all stopped on exit:
#   - Docker from Debian's packages (docker.io, busybox-static), installed when dockerd is
#     missing (root); its own dockerd (own data root and socket under a temporary directory,
#     --iptables=false), serialized by a lock file so two runs never share the bridge.
#   - the base image SAM builds on, public.ecr.aws/lambda/provided:al2023-x86_64, made here
#     with `docker import` (busybox, the binary's shared libraries, the CA bundle): nothing is
#     pulled, SAM runs with --skip-pull-image.
#   - for the delivery run: moto_server and an HTTPS CleverTap stand-in, both bound to the
#     bridge's gateway address of that dockerd (reachable from the container and nowhere else).
#     The queue function delivers the sample batch (secrets from moto, the bad event
#     dead-lettered in moto's queue); the webhook, in queue mode as deployed by default, puts
#     the Function URL sample's events on moto's events queue and answers 202.
#
# The build is `sam build --parameter-overrides Architecture=x86_64` with SAM_BUILD_MODE=debug
# (cargo lambda build without --release): the README's command, on this x86_64 machine, fast.
#
# Usage: scripts/test-sam-local.sh [--offline-only]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
offline_only=false
[ "${1:-}" = "--offline-only" ] && offline_only=true

started=$(date +%s)
bash scripts/tools.sh
export PATH="$root/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
# SAM asks STS who the caller is on every invoke: a closed local port answers at once, where
# the real endpoint would cost ~9 s of retries offline. Dummy credentials: nothing real is used.
export AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none AWS_DEFAULT_REGION=us-east-1 \
  AWS_REGION=us-east-1 AWS_ENDPOINT_URL_STS=http://127.0.0.1:9 AWS_MAX_ATTEMPTS=1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
BASE_IMAGE=public.ecr.aws/lambda/provided:al2023-x86_64

say() { printf 'sam-local: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- Docker
[ "$(id -u)" = 0 ] || die "this test starts its own dockerd, which needs root (run make test as root, e.g. in CI)"
# command -> the Debian package that has it.
declare -A packages=([dockerd]=docker.io [busybox]=busybox-static [ip]=iproute2 [openssl]=openssl [flock]=util-linux)
wanted=()
for tool in "${!packages[@]}"; do command -v "$tool" >/dev/null || wanted+=("${packages[$tool]}"); done
if [ "${#wanted[@]}" -gt 0 ]; then
  say "installing ${wanted[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
fi
docker_cli=$(command -v docker) || die "no docker client"

work=$(mktemp -d /tmp/rc-sam.XXXXXX)
pids=()
had_bridge=false
ip link show docker0 >/dev/null 2>&1 && had_bridge=true
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -f "$work/dockerd.pid" ]; then
    local dpid
    dpid=$(cat "$work/dockerd.pid")
    # Containers first (SAM removes its own; a failed run may leave one), then the daemon.
    DOCKER_HOST="unix://$work/docker.sock" "$docker_cli" ps -aq 2>/dev/null |
      xargs -r env DOCKER_HOST="unix://$work/docker.sock" "$docker_cli" rm -f >/dev/null 2>&1 || true
    kill "$dpid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
  fi
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ! $had_bridge && ip link show docker0 >/dev/null 2>&1; then ip link delete docker0 2>/dev/null || true; fi
  grep -qs " $work/" /proc/mounts && awk -v w="$work/" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null
  rm -rf "$work" 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT

exec 9>/tmp/rudder-clevertap-sam-local.lock
flock -w 900 9 || die "another run holds /tmp/rudder-clevertap-sam-local.lock"
export DOCKER_HOST="unix://$work/docker.sock"
dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
  -H "$DOCKER_HOST" --storage-driver overlay2 \
  --iptables=false --ip-forward=false --ip-masq=false >"$work/dockerd.log" 2>&1 9>&- &
pids+=($!)
for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null 2>&1 || { tail -n 20 "$work/dockerd.log" >&2; die "dockerd did not start"; }
gateway=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1 | head -1)
[ -n "$gateway" ] || die "the docker bridge has no gateway address"
say "dockerd up; bridge gateway $gateway"

# ---------------------------------------------------------------- sam build (debug, x86_64)
say "sam build (SAM_BUILD_MODE=debug, Architecture=x86_64)"
SAM_BUILD_MODE=debug sam build --parameter-overrides Architecture=x86_64 >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; die "sam build"; }
bootstrap=$(ls .aws-sam/build/*/bootstrap 2>/dev/null | head -1)
[ -x "$bootstrap" ] || die "sam build made no .aws-sam/build/*/bootstrap"

# ---------------------------------------------------------------- the base image
# A CA for the CleverTap stand-in; the image trusts it next to Debian's bundle.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=rudder-clevertap test CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" -addext basicConstraints=critical,CA:TRUE >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=$gateway" -keyout "$work/stub.key" \
  -out "$work/stub.csr" >/dev/null 2>&1
openssl x509 -req -in "$work/stub.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 1 -extfile <(printf 'subjectAltName=IP:%s\n' "$gateway") -out "$work/stub.pem" >/dev/null 2>&1

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,tmp,var/task,var/runtime,opt,etc/ssl/certs,etc/pki/tls/certs}
cp /usr/bin/busybox "$rootfs/bin/"
for tool in sh mv chmod cp rm mkdir ls cat; do ln -s busybox "$rootfs/bin/$tool"; done
# The binary's shared libraries, the loader included, at the paths it asks for.
ldd "$bootstrap" | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
cat /etc/ssl/certs/ca-certificates.crt "$work/ca.pem" >"$rootfs/etc/ssl/certs/ca-certificates.crt"
cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$rootfs/etc/pki/tls/certs/ca-bundle.crt"
chmod 1777 "$rootfs/tmp"
tar -C "$rootfs" -c . | docker import --change 'ENV PATH=/bin' --change 'WORKDIR /var/task' \
  - "$BASE_IMAGE" >/dev/null
say "base image $BASE_IMAGE imported"

# invoke FUNCTION EVENT ENV_VARS OUT: sam local invoke, stdout (the answer) to OUT.json,
# stderr (SAM's and the function's logs) to OUT.log.
invoke() {
  sam local invoke "$1" -e "$2" --env-vars "$3" --parameter-overrides Architecture=x86_64 \
    --skip-pull-image ${4:+--template "$4"} \
    >"$work/$5.json" 2>"$work/$5.log" || true
}

# expect_same NAME GOT WANT: two JSON answers are equal.
expect_same() {
  python3 - "$@" <<'PY' || { tail -n 30 "$work/$1.log" >&2; die "$1: the answer differs"; }
import json, sys
name, got, want = sys.argv[1:]
def last_json(text):
    lines = [l for l in text.splitlines() if l.strip().startswith("{")]
    if not lines:
        raise SystemExit(f"{name}: no JSON answer on stdout: {text!r}")
    return json.loads(lines[-1])
g, w = last_json(open(got).read()), json.loads(open(want).read())
assert g == w, f"{name}:\n got  {g}\n want {w}"
print(f"sam-local: {name}: {json.dumps(g)[:160]}", file=sys.stderr)
PY
}

# ---------------------------------------------------------------- run 1: offline (dry run)
cargo run -q -- invoke --dry-run --destinations events/destinations.example.json \
  events/sqs-batch.json >"$work/want-queue.json" 2>/dev/null
cargo run -q -- invoke --dry-run --destinations events/destinations.example.json \
  events/function-url-request.json >"$work/want-webhook.json" 2>/dev/null
t0=$(date +%s)
invoke QueueFunction events/sqs-batch.json events/env.local.json "" offline-queue
expect_same offline-queue "$work/offline-queue.json" "$work/want-queue.json"
grep -q 'dry-run: would send this CleverTap request' "$work/offline-queue.log" ||
  die "offline-queue: no dry-run request printed"
grep -q 'dry-run: would dead-letter this message' "$work/offline-queue.log" ||
  die "offline-queue: no dead letter printed"
! grep -q 'FAKE-PASSCODE' "$work/offline-queue.log" || die "offline-queue: a passcode reached the logs"
invoke WebhookFunction events/function-url-request.json events/env.local.json "" offline-webhook
expect_same offline-webhook "$work/offline-webhook.json" "$work/want-webhook.json"
say "offline invokes took $(($(date +%s) - t0)) s"
if $offline_only; then say "passed (offline only) in $(($(date +%s) - started)) s"; exit 0; fi

# ---------------------------------------------------------------- run 2: moto + CleverTap stand-in
moto_server -H "$gateway" -p 0 >"$work/moto.log" 2>&1 9>&- &
pids+=($!)
for _ in $(seq 1 100); do grep -qs 'Running on' "$work/moto.log" && break; sleep 0.2; done
moto_port=$(grep -o "Running on http://$gateway:[0-9]*" "$work/moto.log" | head -1 | sed 's/.*://')
[ -n "$moto_port" ] || { cat "$work/moto.log" >&2; die "moto_server did not start"; }
moto="http://$gateway:$moto_port"

python3 - "$gateway" "$work" >"$work/stub.port" 2>"$work/stub.log" 9>&- <<'PY' &
# A CleverTap stand-in over HTTPS: every upload accepted, every request body kept.
import http.server, json, ssl, sys
host, work = sys.argv[1:]
class Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(f"{work}/stub-requests.ndjson", "a") as f:
            f.write(json.dumps({"path": self.path, "account": self.headers.get("X-CleverTap-Account-Id"),
                                "passcode": self.headers.get("X-CleverTap-Passcode"),
                                "body": json.loads(body)}) + "\n")
        records = len(json.loads(body).get("d", []))
        answer = json.dumps({"status": "success", "processed": records, "unprocessed": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
server = http.server.ThreadingHTTPServer((host, 0), Stub)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(f"{work}/stub.pem", f"{work}/stub.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
pids+=($!)
for _ in $(seq 1 50); do [ -s "$work/stub.port" ] && break; sleep 0.2; done
stub="https://$gateway:$(cat "$work/stub.port")"

# Secrets and the dead-letter queue in moto (the SDK of moto's own package, boto3).
read -r dlq_url events_url < <(AWS_ENDPOINT_URL="$moto" "$root/.venv/bin/python" - <<'PY'
import json, boto3
dests = json.load(open("events/destinations.example.json"))
sm = boto3.client("secretsmanager")
for dest_id, settings in dests.items():
    sm.create_secret(Name=f"rudder-clevertap/{dest_id}", SecretString=json.dumps(settings))
sqs = boto3.client("sqs")
print(sqs.create_queue(QueueName="rudder-clevertap-dlq")["QueueUrl"],
      sqs.create_queue(QueueName="rudder-clevertap-queue")["QueueUrl"])
PY
)
[ -n "$dlq_url" ] && [ -n "$events_url" ] || die "no queues in moto"

# The built template, with the two variables this run adds declared (SAM sets only declared
# ones): CLEVERTAP_ENDPOINT (test-only, never in template.yaml) and AWS_ENDPOINT_URL (moto).
"$root/.venv/bin/python" - "$work/template.yaml" "$root" <<'PY'
import sys, yaml
template = yaml.safe_load(open(".aws-sam/build/template.yaml"))
variables = template["Globals"]["Function"]["Environment"]["Variables"]
variables["CLEVERTAP_ENDPOINT"] = ""
variables["AWS_ENDPOINT_URL"] = ""
for resource in template["Resources"].values():
    code = (resource.get("Properties") or {}).get("CodeUri")
    if isinstance(code, str) and not code.startswith("/"):
        resource["Properties"]["CodeUri"] = f"{sys.argv[2]}/.aws-sam/build/{code}"
yaml.safe_dump(template, open(sys.argv[1], "w"), sort_keys=False)
PY
python3 - "$work/env.moto.json" "$dlq_url" "$stub" "$moto" "$events_url" <<'PY'
import json, sys
path, dlq, stub, moto, events = sys.argv[1:]
common = {"DEAD_LETTER_QUEUE_URL": dlq, "CLEVERTAP_ENDPOINT": stub, "AWS_ENDPOINT_URL": moto}
# The webhook as the template deploys it by default: queue mode, onto the events queue.
json.dump({"QueueFunction": common,
           "WebhookFunction": dict(common, WEBHOOK_MODE="queue", EVENTS_QUEUE_URL=events)},
          open(path, "w"))
PY

t0=$(date +%s)
invoke QueueFunction events/sqs-batch.json "$work/env.moto.json" "$work/template.yaml" moto-queue
expect_same moto-queue "$work/moto-queue.json" "$work/want-queue.json"
AWS_ENDPOINT_URL="$moto" "$root/.venv/bin/python" - "$work" "$dlq_url" <<'PY' ||
import json, sys, boto3
work, dlq = sys.argv[1:]
requests = [json.loads(l) for l in open(f"{work}/stub-requests.ndjson")]
records = sum(len(r["body"].get("d", [])) for r in requests)
assert requests and records > 0, requests
assert {r["account"] for r in requests} <= {"TEST-4W5-Z9R1", "TEST-8K2-Q7P3"}, requests
assert all(r["passcode"].startswith("FAKE-PASSCODE-") for r in requests), "passcodes from moto"
letters = boto3.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10,
                                              MessageAttributeNames=["All"]).get("Messages", [])
assert len(letters) == 1, letters
code = letters[0]["MessageAttributes"]["rejectionCode"]["StringValue"]
print(f"sam-local: moto-queue: {len(requests)} uploads, {records} records at the stand-in; "
      f"1 dead letter in moto ({code})", file=sys.stderr)
PY
  { tail -n 40 "$work/moto-queue.log" >&2; die "moto-queue: delivery or dead letter missing"; }
! grep -q 'FAKE-PASSCODE' "$work/moto-queue.log" || die "moto-queue: a passcode reached the logs"
invoke WebhookFunction events/function-url-request.json "$work/env.moto.json" "$work/template.yaml" moto-webhook
AWS_ENDPOINT_URL="$moto" "$root/.venv/bin/python" - "$work/moto-webhook.json" "$events_url" <<'PY' ||
import json, sys, boto3
answer_file, queue = sys.argv[1:]
lines = [l for l in open(answer_file).read().splitlines() if l.startswith("{")]
assert lines, "no answer"
answer = json.loads(lines[-1])
assert answer.get("statusCode") == 202, answer
queued = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                             MessageAttributeNames=["All"]).get("Messages", [])
assert queued, "nothing on the events queue"
assert all(m["MessageAttributes"]["destinationId"]["StringValue"] == "dest-a" for m in queued), queued
print(f"sam-local: moto-webhook: 202, {len(queued)} message(s) on moto's events queue", file=sys.stderr)
PY
  { tail -n 40 "$work/moto-webhook.log" >&2; die "moto-webhook: queue mode did not queue the events"; }
say "delivery invokes took $(($(date +%s) - t0)) s"
say "passed in $(($(date +%s) - started)) s"
