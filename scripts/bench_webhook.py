#!/usr/bin/env python3
"""Webhook queue-mode benchmark of the rudder-clevertap Lambda binary (BENCHMARKS.md, "Webhook").

Runs the real binary as Lambda does, with WEBHOOK_MODE=queue: this script is the Lambda Runtime
API the binary polls, and feeds it single-event webhook requests (Lambda Function URL payloads,
a valid bearer token, one track event each) one after another, as one Lambda instance gets
them. Secrets Manager and SQS are a real moto_server (.venv/bin/moto_server, started here); with
SQS=stub, SQS is instead a stdlib stand-in that accepts every SendMessageBatch at once, to show
what the function sustains when the queue is not the bottleneck. Stdlib only.

It measures, per run of REQUESTS requests (after WARMUP requests, which also read the secret;
the queue is checked and emptied after each run):
  * requests per second of the one instance (first invocation handed out -> last answer);
  * CPU time of the function process per request (utime+stime from /proc), and moto's;
  * invocation latency (handed out -> answer posted): median, p99, max.
Every answer must be 202 with one `queued` result, and the queue must hold every event.
Everything stops by itself: a watchdog kills the processes after TIMEOUT seconds.
Usage: bench_webhook.py BINARY   (env: REQUESTS, WARMUP, RUNS, SQS=moto|stub, MOTO, TIMEOUT,
                                   LOG_FILE, FUNCTION_RUST_LOG)
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from bench_common import CLK_TCK, CONTEXT, Quiet, Runtime, RuntimeApi, serve

REQUESTS = int(os.environ.get("REQUESTS", "1000"))
WARMUP = int(os.environ.get("WARMUP", "50"))
RUNS = max(1, int(os.environ.get("RUNS", "3")))
SQS = os.environ.get("SQS", "moto")
TIMEOUT = float(os.environ.get("TIMEOUT", "600"))
MOTO = os.environ.get("MOTO", os.path.join(os.path.dirname(__file__), "..", ".venv", "bin",
                                           "moto_server"))
DESTINATION = "bench"
TOKEN = "bench-webhook-token-not-a-secret"
ACCOUNT = "123456789012"


def event(i):
    return json.dumps({
        "type": "track", "event": "Plan Upgraded", "messageId": f"m-{i:08d}",
        "userId": f"u-{i:08d}", "anonymousId": f"a-7f3c9e2b-{i:08d}", "channel": "web",
        "originalTimestamp": "2024-03-05T10:20:30.123Z", "context": CONTEXT,
        "properties": {"from": "basic", "to": "pro", "price": 19.99},
    }, separators=(",", ":"))


def request(i):
    """A Function URL request, as RudderStack's Webhook destination sends one event."""
    return json.dumps({
        "version": "2.0", "routeKey": "$default", "rawPath": "/",
        "rawQueryString": f"destinationId={DESTINATION}",
        "headers": {"authorization": f"Bearer {TOKEN}", "content-type": "application/json",
                    "host": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
                    "user-agent": "RudderLabs", "x-forwarded-proto": "https"},
        "queryStringParameters": {"destinationId": DESTINATION},
        "requestContext": {
            "accountId": "anonymous", "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "RudderLabs"},
            "requestId": f"8e1f0c3d-6a2b-4c5d-9e8f-{i:012d}", "routeKey": "$default",
            "stage": "$default", "time": "05/Mar/2024:10:25:00 +0000",
            "timeEpoch": 1709634300000},
        "body": event(i), "isBase64Encoded": False,
    }, separators=(",", ":")).encode()


class StubSqs(Quiet):
    """SendMessageBatch (AWS JSON 1.0): every entry accepted at once, counted."""

    sent = 0
    lock = threading.Lock()

    def do_POST(self):
        data = json.loads(self.body() or b"{}")
        entries = data.get("Entries", [])
        with StubSqs.lock:
            StubSqs.sent += len(entries)
        reply = {"Successful": [{"Id": e["Id"], "MessageId": f"stub-{e['Id']}",
                                 "MD5OfMessageBody": "0" * 32} for e in entries], "Failed": []}
        self.send(200, json.dumps(reply).encode(),
                  [("Content-Type", "application/x-amz-json-1.0")])


class WebhookApi(RuntimeApi):
    """The Runtime API as the webhook function sees it: a Function URL's 30 s."""

    deadline_seconds = 30
    function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rudder-clevertap-webhook"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws(endpoint, target, body, version):
    """One AWS JSON-protocol call to moto, which checks no signature but reads the service from
    the credential scope."""
    service = "secretsmanager" if target.startswith("secretsmanager.") else "sqs"
    req = urllib.request.Request(endpoint + "/", data=json.dumps(body).encode(), headers={
        "X-Amz-Target": target, "Content-Type": f"application/x-amz-json-{version}",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20240305/us-east-1/{service}/"
                         "aws4_request, SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def start_moto():
    port = free_port()
    proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("moto_server did not start")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    moto, endpoint = start_moto()
    children = [moto]
    watchdog = threading.Timer(TIMEOUT, lambda: ([c.kill() for c in children], os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    try:
        secret = {"accountId": "W9R-000-BNCH", "passcode": "bench-passcode-not-a-secret",
                  "webhookToken": TOKEN}
        aws(endpoint, "secretsmanager.CreateSecret",
            {"Name": f"rudder-clevertap/{DESTINATION}", "SecretString": json.dumps(secret)}, "1.1")
        queue_url = aws(endpoint, "AmazonSQS.CreateQueue", {"QueueName": "events"},
                        "1.0")["QueueUrl"]
        sqs_endpoint = endpoint
        if SQS == "stub":
            sqs_endpoint = f"http://127.0.0.1:{serve(StubSqs).server_port}"

        runtime = Runtime()
        api = serve(type("Api", (WebhookApi,), {"runtime": runtime}))
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": "rudder-clevertap-webhook",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
            "WEBHOOK_MODE": "queue",
            "EVENTS_QUEUE_URL": queue_url,
            "RUST_LOG": os.environ.get("FUNCTION_RUST_LOG", "info"),
        }
        log = open(os.environ.get("LOG_FILE", "/dev/null"), "wb")
        proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)
        children.append(proc)

        def run(first, count):
            """`count` requests queued at once: the instance takes the next as soon as it
            answers, as a busy Lambda instance does. Returns wall, CPU and latencies."""
            ids = [f"r-{first + n}" for n in range(count)]
            fn_cpu, moto_cpu = cpu_seconds(proc.pid), cpu_seconds(moto.pid)
            for n, rid in enumerate(ids):
                runtime.invoke(rid, request(first + n))
            latencies = []
            for rid in ids:
                kind, data, answered = runtime.wait(rid, 60)
                if kind != "response":
                    raise SystemExit(f"{rid} failed: {data[:300]!r}")
                response = json.loads(data)
                body = json.loads(response.get("body") or "{}")
                if response.get("statusCode") != 202 or body.get("queued") != 1:
                    raise SystemExit(f"{rid} was not queued: {data[:500]!r}")
                latencies.append(answered - runtime.handed_out[rid])
            wall = runtime.answers[ids[-1]][2] - runtime.handed_out[ids[0]]
            return (wall, cpu_seconds(proc.pid) - fn_cpu, cpu_seconds(moto.pid) - moto_cpu,
                    sorted(latencies))

        def drain(expected):
            """Checks that the queue got every event, then empties it: moto's SendMessageBatch
            costs more the more messages its queue holds, and a Lambda event source keeps the
            real queue short."""
            if SQS == "stub":
                got, StubSqs.sent = StubSqs.sent, 0
            else:
                got = int(aws(endpoint, "AmazonSQS.GetQueueAttributes",
                              {"QueueUrl": queue_url,
                               "AttributeNames": ["ApproximateNumberOfMessages"]},
                              "1.0")["Attributes"]["ApproximateNumberOfMessages"])
                # PurgeQueue may run once a minute: delete the queue and create it again.
                aws(endpoint, "AmazonSQS.DeleteQueue", {"QueueUrl": queue_url}, "1.0")
                aws(endpoint, "AmazonSQS.CreateQueue", {"QueueName": "events"}, "1.0")
            if got != expected:
                raise SystemExit(f"the queue got {got} messages, expected {expected}")
            return got

        run(0, WARMUP)
        queued = drain(WARMUP)
        runs = []
        for r in range(RUNS):
            runs.append(run(WARMUP + r * REQUESTS, REQUESTS))
            queued += drain(REQUESTS)
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
        watchdog.cancel()

    def ms(x):
        return round(x * 1000, 2)

    result = {
        "sqs": SQS,
        "requests_per_run": REQUESTS,
        "runs": RUNS,
        "requests_per_second": [round(REQUESTS / w) for w, _, _, _ in runs],
        "function_cpu_ms_per_request": [round(c * 1000 / REQUESTS, 3) for _, c, _, _ in runs],
        "moto_cpu_ms_per_request": ([round(m * 1000 / REQUESTS, 3) for _, _, m, _ in runs]
                                    if SQS == "moto" else None),
        "latency_ms_median": [ms(l[len(l) // 2]) for _, _, _, l in runs],
        "latency_ms_p99": [ms(l[int(len(l) * 0.99)]) for _, _, _, l in runs],
        "latency_ms_max": [ms(l[-1]) for _, _, _, l in runs],
        "messages_queued": queued,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
