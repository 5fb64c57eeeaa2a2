"""What the benchmarks that run the release binary as Lambda does share (stdlib only):
the event mix and SQS records, a mock CleverTap, a stand-in Secrets Manager, the Lambda Runtime
API, and the CPU and memory of a process from /proc.

Used by scripts/bench_whole_path.py (BENCHMARKS.md, "Whole path") and
scripts/bench_throughput.py (BENCHMARKS.md, "Throughput of one instance").
"""

import json
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    """What the mock CleverTap and the stand-in Secrets Manager saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.uploads = 0
        self.records = 0
        self.secret_calls = 0
        self.in_flight = 0
        # (perf_counter, requests in flight from then on): every change, for a time-weighted mean
        self.timeline = []
        self.records_per_request = []
        self.arrivals = []  # perf_counter of each upload's arrival
        self.statuses = {}
        self.late = 0  # answers sent more than 20 ms after the configured latency

    def reset(self):
        with self.lock:
            self.uploads = self.records = self.secret_calls = self.late = 0
            self.timeline = [(time.perf_counter(), self.in_flight)]
            self.records_per_request = []
            self.arrivals = []
            self.statuses = {}


STATS = Stats()


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, ~40 ms on Linux loopback, which would add to every answer.
    disable_nagle_algorithm = True

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
    """POST /1/upload. By default every record is accepted at once; a subclass may set
    `latency_ms` (each answer leaves that long after the request arrived, the mock's own parsing
    included), `max_in_flight` (429 to a request beyond that many in flight, as CleverTap's
    limit of 15 per account) and `max_records` (400 to a request of more records)."""

    stats = STATS
    latency_ms = 0.0
    max_in_flight = None
    max_records = None

    def do_POST(self):
        arrived = time.perf_counter()
        st = self.stats
        with st.lock:
            st.in_flight += 1
            st.timeline.append((time.perf_counter(), st.in_flight))
            st.arrivals.append(arrived)
            over = self.max_in_flight is not None and st.in_flight > self.max_in_flight
        try:
            self.answer(arrived, over)
        finally:
            with st.lock:
                st.in_flight -= 1
                st.timeline.append((time.perf_counter(), st.in_flight))

    def answer(self, arrived, over):
        st = self.stats
        data = self.body()
        if over:
            self.reply(429, {"status": "fail", "error": "too many concurrent requests"})
            return
        if self.headers.get("X-CleverTap-Passcode") != PASSCODE:
            self.reply(401, {"status": "fail", "error": "wrong passcode"})
            return
        try:
            count = len(json.loads(data).get("d", []))
        except ValueError:
            self.reply(400, {"status": "fail", "error": "bad json"})
            return
        if self.max_records is not None and count > self.max_records:
            self.reply(400, {"status": "fail", "error": f"{count} records, more than allowed"})
            return
        with st.lock:
            st.uploads += 1
            st.records += count
            st.records_per_request.append(count)
        if self.latency_ms:
            wait = arrived + self.latency_ms / 1000 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.020:
                with st.lock:
                    st.late += 1
        self.reply(200, {"status": "success", "processed": count, "unprocessed": []})

    def reply(self, status, body):
        with self.stats.lock:
            self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        self.send(status, json.dumps(body).encode(), [("Content-Type", "application/json")])


class SecretsManager(Quiet):
    """GetSecretValue of `rudder-clevertap/bench` (the AWS JSON 1.1 protocol)."""

    stats = STATS

    def do_POST(self):
        self.body()
        with self.stats.lock:
            self.stats.secret_calls += 1
        secret = json.dumps({"accountId": "W9R-000-BNCH", "passcode": PASSCODE, "region": "eu1",
                             "trackAnonymous": True})
        reply = json.dumps({
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rudder-clevertap/bench-AbCdEf",
            "Name": "rudder-clevertap/bench", "VersionId": "v1", "SecretString": secret,
            "VersionStages": ["AWSCURRENT"], "CreatedDate": 1709634030.0,
        })
        self.send(200, reply.encode(), [("Content-Type", "application/x-amz-json-1.1")])


class Runtime:
    """The Lambda Runtime API: hands out queued invocations, collects answers with timings.
    `on_answer`, when set, is called with the request id as an answer arrives, before the
    function gets its 202 (the function is then waiting): what it returns is kept in `marks`."""

    def __init__(self):
        self.queue = queue.Queue()
        self.answers = {}
        self.answered = threading.Condition()
        self.first_poll = None
        self.handed_out = {}
        self.on_answer = None
        self.marks = {}

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
    # What each invocation says of itself; a benchmark's subclass may change them.
    deadline_seconds = 900
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:rudder-clevertap"

    def do_GET(self):
        RUNTIME = self.runtime
        if self.path != PREFIX + "/invocation/next":
            self.send(404, b"")
            return
        if RUNTIME.first_poll is None:
            RUNTIME.first_poll = time.perf_counter()
        request_id, payload = RUNTIME.queue.get()
        deadline_ms = int(time.time() * 1000) + self.deadline_seconds * 1000
        RUNTIME.handed_out[request_id] = time.perf_counter()
        self.send(200, payload, [
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", self.function_arn),
            ("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=0"),
            ("Content-Type", "application/json"),
        ])

    def do_POST(self):
        RUNTIME = self.runtime
        data = self.body()
        tail = self.path[len(PREFIX + "/invocation/"):]
        request_id, _, kind = tail.partition("/")
        now = time.perf_counter()
        if RUNTIME.on_answer is not None:
            RUNTIME.marks[request_id] = RUNTIME.on_answer(request_id)
        self.send(202, b"")
        with RUNTIME.answered:
            RUNTIME.answers[request_id] = (kind, data, now)
            RUNTIME.answered.notify_all()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # CleverTap stand-in: 15+ connections may arrive at once

    def handle_error(self, request, client_address):
        pass  # the binary is killed at the end with its connections open


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def aws_env(secrets_port, clevertap_port):
    """The environment Lambda gives the function, minus what each benchmark sets: fake
    credentials, no AWS config file, Secrets Manager and CleverTap on 127.0.0.1."""
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_NAME": "rudder-clevertap",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHMARK",
        "AWS_SECRET_ACCESS_KEY": "bench-not-a-secret",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": f"http://127.0.0.1:{secrets_port}",
        "CLEVERTAP_ENDPOINT": f"http://127.0.0.1:{clevertap_port}",
    }


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
