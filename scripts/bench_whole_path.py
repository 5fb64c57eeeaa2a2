#!/usr/bin/env python3
"""Whole-path benchmark of the rudder-clevertap Lambda binary (BENCHMARKS.md, "Whole path").

Runs the real binary exactly as Lambda does: this script is the Lambda Runtime API the binary
polls, a mock CleverTap (every record accepted) and a stand-in Secrets Manager (GetSecretValue
only), all on 127.0.0.1, stdlib only. It measures:

  * cold start: process start to the binary's first GET /invocation/next (init), and to the
    first invocation (one SQS message, its destination's secret fetched) answered; COLD_STARTS
    processes, median and range;
  * a batch of MESSAGES SQS messages (default 10,000, the SQS maximum) through the handler:
    wall time (invocation handed out -> response posted), CPU time of the function process
    (its threads' run time from /proc/PID/task/*/schedstat, in ns; and the user/system split
    and minor page faults from /proc/PID/stat, in 10 ms ticks), repeated WARM_RUNS times in
    the same container;
  * peak RSS of the function process (VmHWM from /proc/PID/status) and the binary's size;
  * in the same run, the `transform` command of the same binary on the same events as NDJSON
    (TRANSFORM_REPEAT times over, default 20), its CPU time from getrusage; and the two rates
    in events per CPU-second, and their ratio: the figure that holds on a noisy machine.

Everything stops by itself: a watchdog kills the binary and exits after TIMEOUT seconds.
Usage: bench_whole_path.py BINARY
  (env: MESSAGES, WARM_RUNS, COLD_STARTS, MOCK_LATENCY_MS, TIMEOUT, LOG_FILE,
   FUNCTION_RUST_LOG)
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MESSAGES = int(os.environ.get("MESSAGES", "10000"))
WARM_RUNS = int(os.environ.get("WARM_RUNS", "3"))
COLD_STARTS = max(1, int(os.environ.get("COLD_STARTS", "5")))
TRANSFORM_REPEAT = max(1, int(os.environ.get("TRANSFORM_REPEAT", "20")))
MOCK_LATENCY_MS = float(os.environ.get("MOCK_LATENCY_MS", "0"))
TIMEOUT = float(os.environ.get("TIMEOUT", "300"))
DESTINATION = "bench"
PASSCODE = "bench-passcode-not-a-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PREFIX = "/2018-06-01/runtime"

CONTEXT = {
    "library": {"name": "RudderLabs JavaScript SDK", "version": "3.0.3"},
    "locale": "en-GB",
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36",
    "page": {"path": "/pricing", "referrer": "https://www.google.com/", "title": "Pricing",
             "url": "https://shop.example.com/pricing?utm_source=newsletter"},
    "traits": {"email": "ana@example.com"},
}


def event(i):
    """The transform benchmark's mix: identify, track, page, screen, track with products, alias."""
    head = {
        "messageId": f"m-{i:07d}", "anonymousId": f"a-7f3c9e2b-{i:07d}", "userId": f"u-{i:07d}",
        "channel": "web", "originalTimestamp": "2024-03-05T10:20:30.123Z", "context": CONTEXT,
    }
    k = i % 6
    if k == 0:
        head.update(type="identify", traits={"email": "ana@example.com", "name": "Ana Lima",
                                             "plan": "pro", "address": {"city": "Pune"}})
    elif k == 1:
        head.update(type="track", event="Plan Upgraded",
                    properties={"from": "basic", "to": "pro", "price": 19.99})
    elif k == 2:
        head.update(type="page", name="Pricing", properties={"path": "/pricing"})
    elif k == 3:
        head.update(type="screen", name="Checkout", properties={"step": 2})
    elif k == 4:
        head.update(type="track", event="Order Completed",
                    properties={"checkout_id": "chk-77", "revenue": 42.5,
                                "products": [{"product_id": "p1", "price": 30},
                                             {"product_id": "p2", "price": 6.25}]})
    else:
        head.update(type="alias", previousId="a-old")
    return json.dumps(head, separators=(",", ":"))


def sqs_record(i, body):
    return {
        "messageId": f"0c7a3f1e-5b2d-4e8f-9a61-{i:012d}",
        "receiptHandle": "AQEB" + "x" * 160 + f"{i:08d}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1709634030000",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                       "ApproximateFirstReceiveTimestamp": "1709634030010"},
        "messageAttributes": {"destinationId": {"stringValue": DESTINATION, "dataType": "String",
                                                "stringListValues": [], "binaryListValues": []}},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:rudder-events",
        "awsRegion": "us-east-1",
    }


def sqs_batch(n):
    return json.dumps({"Records": [sqs_record(i, event(i)) for i in range(n)]},
                      separators=(",", ":")).encode()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.uploads = 0
        self.records = 0
        self.secret_calls = 0


STATS = Stats()


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, payload, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)


class CleverTap(Quiet):
    """POST /1/upload: every record accepted."""

    def do_POST(self):
        data = self.body()
        try:
            count = len(json.loads(data).get("d", []))
        except ValueError:
            self.send(400, b'{"status":"fail","error":"bad json"}')
            return
        with STATS.lock:
            STATS.uploads += 1
            STATS.records += count
        if MOCK_LATENCY_MS:
            time.sleep(MOCK_LATENCY_MS / 1000)
        reply = json.dumps({"status": "success", "processed": count, "unprocessed": []})
        self.send(200, reply.encode(), [("Content-Type", "application/json")])


class SecretsManager(Quiet):
    """GetSecretValue of `rudder-clevertap/bench` (the AWS JSON 1.1 protocol)."""

    def do_POST(self):
        self.body()
        with STATS.lock:
            STATS.secret_calls += 1
        secret = json.dumps({"accountId": "W9R-000-BNCH", "passcode": PASSCODE, "region": "eu1",
                             "trackAnonymous": True})
        reply = json.dumps({
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rudder-clevertap/bench-AbCdEf",
            "Name": "rudder-clevertap/bench", "VersionId": "v1", "SecretString": secret,
            "VersionStages": ["AWSCURRENT"], "CreatedDate": 1709634030.0,
        })
        self.send(200, reply.encode(), [("Content-Type", "application/x-amz-json-1.1")])


class Runtime:
    """The Lambda Runtime API: hands out queued invocations, collects answers with timings."""

    def __init__(self):
        self.queue = queue.Queue()
        self.answers = {}
        self.answered = threading.Condition()
        self.first_poll = None
        self.handed_out = {}

    def invoke(self, request_id, payload):
        self.queue.put((request_id, payload))

    def wait(self, request_id, timeout):
        with self.answered:
            ok = self.answered.wait_for(lambda: request_id in self.answers, timeout)
        if not ok:
            raise SystemExit(f"invocation {request_id} got no answer in {timeout} s")
        return self.answers[request_id]


class RuntimeApi(Quiet):
    """One per process: a killed process's pending poll must not swallow the next invocation."""

    runtime = None  # set on the subclass made for each process

    def do_GET(self):
        RUNTIME = self.runtime
        if self.path != PREFIX + "/invocation/next":
            self.send(404, b"")
            return
        if RUNTIME.first_poll is None:
            RUNTIME.first_poll = time.perf_counter()
        request_id, payload = RUNTIME.queue.get()
        deadline_ms = int(time.time() * 1000) + 900_000
        RUNTIME.handed_out[request_id] = time.perf_counter()
        self.send(200, payload, [
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn",
             "arn:aws:lambda:us-east-1:123456789012:function:rudder-clevertap"),
            ("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=0"),
            ("Content-Type", "application/json"),
        ])

    def do_POST(self):
        RUNTIME = self.runtime
        data = self.body()
        tail = self.path[len(PREFIX + "/invocation/"):]
        request_id, _, kind = tail.partition("/")
        now = time.perf_counter()
        self.send(202, b"")
        with RUNTIME.answered:
            RUNTIME.answers[request_id] = (kind, data, now)
            RUNTIME.answered.notify_all()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the binary is killed at the end with its connections open


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def on_cpu_seconds(pid):
    """Time the process's threads have run, in ns from /proc/PID/task/*/schedstat (the
    scheduler's own account: finer than utime+stime, which count 10 ms ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended since the listing
    return total / 1e9


def proc_times(pid):
    """(user CPU s, system CPU s, minor page faults) of the process so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK, int(fields[7])


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    clevertap, secrets = serve(CleverTap), serve(SecretsManager)
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_NAME": "rudder-clevertap",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHMARK",
        "AWS_SECRET_ACCESS_KEY": "bench-not-a-secret",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": f"http://127.0.0.1:{secrets.server_port}",
        "CLEVERTAP_ENDPOINT": f"http://127.0.0.1:{clevertap.server_port}",
        "RUST_LOG": os.environ.get("FUNCTION_RUST_LOG", "info"),
    }

    batch = sqs_batch(MESSAGES)
    first = sqs_batch(1)
    log_path = os.environ.get("LOG_FILE", "/dev/null")
    log = open(log_path, "wb")

    def start(runtime):
        handler = type("Api", (RuntimeApi,), {"runtime": runtime})
        server = serve(handler)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_port}"
        proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)
        watchdog = threading.Timer(TIMEOUT, lambda: (proc.kill(), os._exit(3)))
        watchdog.daemon = True
        watchdog.start()
        return proc, watchdog

    def stop(proc, watchdog):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        watchdog.cancel()

    def cold(n):
        """Process start to the binary's first poll (init) and to the first answer."""
        RUNTIME = Runtime()
        started = time.perf_counter()
        proc, watchdog = start(RUNTIME)
        rid = f"cold-{n}"
        RUNTIME.invoke(rid, first)
        kind, _, answered = RUNTIME.wait(rid, 30)
        if kind != "response":
            stop(proc, watchdog)
            raise SystemExit(f"cold invocation failed: {kind}")
        init_ms = (RUNTIME.first_poll - started) * 1000
        return RUNTIME, proc, watchdog, init_ms, (answered - started) * 1000

    colds = []
    for n in range(COLD_STARTS - 1):
        _, proc, watchdog, init_ms, cold_ms = cold(n)
        stop(proc, watchdog)
        colds.append((init_ms, cold_ms))
    RUNTIME, proc, watchdog, init_ms, cold_ms = cold(COLD_STARTS)
    colds.append((init_ms, cold_ms))
    try:
        rss_idle_kb = status_kb(proc.pid, "VmRSS")
        runs = []
        splits = []
        for n in range(WARM_RUNS):
            rid = f"batch-{n}"
            user_before, sys_before, faults_before = proc_times(proc.pid)
            cpu_before = on_cpu_seconds(proc.pid)
            RUNTIME.invoke(rid, batch)
            kind, data, answered = RUNTIME.wait(rid, 600)
            cpu = on_cpu_seconds(proc.pid) - cpu_before
            user_after, sys_after, faults_after = proc_times(proc.pid)
            user, system = user_after - user_before, sys_after - sys_before
            wall = answered - RUNTIME.handed_out[rid]
            if kind != "response":
                raise SystemExit(f"batch invocation failed: {data[:500]!r}")
            failures = json.loads(data).get("batchItemFailures", [])
            if failures:
                raise SystemExit(f"{len(failures)} messages failed: {failures[:3]}")
            runs.append((wall, cpu))
            splits.append((user, system, faults_after - faults_before))
        peak_kb = status_kb(proc.pid, "VmHWM")
        rss_end_kb = status_kb(proc.pid, "VmRSS")
    finally:
        stop(proc, watchdog)

    transform_cpu, transform_events = transform_rate(binary)
    path_cpu = sum(c for _, c in runs)
    path_rate = MESSAGES * len(runs) / path_cpu if path_cpu else 0.0
    transform_rate_value = transform_events / transform_cpu if transform_cpu else 0.0

    inits = sorted(i for i, _ in colds)
    firsts = sorted(c for _, c in colds)
    result = {
        "binary_bytes": os.path.getsize(binary),
        "messages": MESSAGES,
        "payload_bytes": len(batch),
        "cold_starts": COLD_STARTS,
        "cold_init_ms_median": round(inits[len(inits) // 2], 1),
        "cold_init_ms_min_max": [round(inits[0], 1), round(inits[-1], 1)],
        "cold_first_answer_ms_median": round(firsts[len(firsts) // 2], 1),
        "cold_first_answer_ms_min_max": [round(firsts[0], 1), round(firsts[-1], 1)],
        "batch_wall_ms": [round(w * 1000, 1) for w, _ in runs],
        "batch_cpu_ms": [round(c * 1000, 1) for _, c in runs],
        "batch_user_ms": [round(u * 1000) for u, _, _ in splits],
        "batch_system_ms": [round(s * 1000) for _, s, _ in splits],
        "batch_minor_page_faults": [f for _, _, f in splits],
        "events_per_second": round(MESSAGES / min(w for w, _ in runs)) if runs else 0,
        "rss_after_cold_start_mb": round(rss_idle_kb / 1024, 1),
        "rss_after_batches_mb": round(rss_end_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "clevertap_uploads": STATS.uploads,
        "clevertap_records": STATS.records,
        "secrets_manager_calls": STATS.secret_calls,
        "whole_path_events_per_cpu_second": round(path_rate),
        "transform_events": transform_events,
        "transform_cpu_ms": round(transform_cpu * 1000, 1),
        "transform_events_per_cpu_second": round(transform_rate_value),
        "whole_path_to_transform_ratio": round(path_rate / transform_rate_value, 3)
        if transform_rate_value
        else None,
    }
    if STATS.records < MESSAGES * WARM_RUNS + COLD_STARTS:
        raise SystemExit(f"CleverTap got fewer records than events: {result}")
    print(json.dumps(result, indent=2))
    print(f"whole path {result['whole_path_events_per_cpu_second']:,} events/CPU-s, transform "
          f"{result['transform_events_per_cpu_second']:,} events/CPU-s: ratio "
          f"{result['whole_path_to_transform_ratio']}", file=sys.stderr)


def transform_rate(binary):
    """CPU seconds of `binary transform` on the batch's events as NDJSON, TRANSFORM_REPEAT times
    over, and how many events that was."""
    import resource
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        events_path = os.path.join(tmp, "events.ndjson")
        settings_path = os.path.join(tmp, "destination.json")
        with open(events_path, "w") as f:
            lines = "".join(event(i) + "\n" for i in range(MESSAGES))
            for _ in range(TRANSFORM_REPEAT):
                f.write(lines)
        with open(settings_path, "w") as f:
            json.dump({"accountId": "W9R-000-BNCH", "passcode": PASSCODE, "region": "eu1",
                       "trackAnonymous": True}, f)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([binary, "transform", "--destination", settings_path, events_path],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=TIMEOUT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"transform exited {done.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, MESSAGES * TRANSFORM_REPEAT


if __name__ == "__main__":
    main()
