#!/usr/bin/env python3
"""Throughput of one instance of the rudder-clevertap Lambda binary (BENCHMARKS.md, "Throughput
of one instance (issue 22)").

Runs the real binary as Lambda runs one warm instance under a full queue: this script is the
Lambda Runtime API the binary polls (scripts/bench_common.py), with a CleverTap stand-in and a
stand-in Secrets Manager, all on 127.0.0.1, stdlib only.

  * CPU: the function process (only it) runs in a cgroup v1 `cpu` child group with
    cpu.cfs_period_us 100000 and cpu.cfs_quota_us round(100000 x MemorySize / 1769): the share
    of one vCPU Lambda gives that memory setting (1 vCPU at 1,769 MB). MemorySize comes from
    template.yaml's Globals (MEMORY_MB overrides). Needs root and /sys/fs/cgroup/cpu; the
    group is removed at the end, also on failure.
  * Batches: as Lambda hands them out at the template's BatchSize (QueueBatchSize's default,
    else the standard queue's BatchSize; BATCH_SIZE overrides): as many one-event SQS
    messages (the whole-path benchmark's event mix, each with the destinationId attribute, one
    destination) as fit BatchSize and Lambda's 6 MB invocation payload (the whole JSON <=
    6,291,456 bytes, PAYLOAD_LIMIT).
  * The function's environment: template.yaml's Globals variables (literal values, and
    parameters' defaults), JSON logs at the LogLevel default; the destination's settings from
    the stand-in Secrets Manager.
  * CleverTap: every answer leaves LATENCY_MS (150) after its request arrived; 429 to a request
    beyond CLEVERTAP_MAX_IN_FLIGHT (15) in flight, 400 to one of more than
    CLEVERTAP_MAX_RECORDS (1000) records, 401 to a wrong passcode. Threaded: holds any number
    of requests at once. It records requests in flight over time, records per request and
    every status it answered.
  * Run: one warm-up invocation (cold start, the secret read), then INVOCATIONS (20) back to
    back in the same container, all queued at once so the next is handed out as the previous
    is answered.

Figures: events/s of the instance (events / wall time from the first measured invocation
handed out to the last answer posted), its share of the in-flight limit
(MaxConcurrentRequests x 1000 records / latency), records per request, requests in flight (mean
weighted by time over the window, and max), 429s, CPU per invocation (schedstat) and the
periods the quota throttled, invocation duration (handed out -> answered), the function's log
bytes per invocation. Printed as a table and one JSON line (also appended to RESULTS when set).
Checks (exit 1): every event delivered (each invocation's summary line), no message reported
failed, no 400/401, every invocation answered, the passcode in no log line.

Usage: bench_throughput.py BINARY   (env: BATCH_SIZE, MEMORY_MB, LATENCY_MS, INVOCATIONS,
  TEMPLATE, PAYLOAD_LIMIT, CLEVERTAP_MAX_IN_FLIGHT, CLEVERTAP_MAX_RECORDS, RESULTS, LOG_FILE,
  TIMEOUT, BENCH_COMMIT)
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from bench_common import (PASSCODE, CleverTap, Runtime, RuntimeApi, SecretsManager, Stats,
                          aws_env, event, on_cpu_seconds, serve, sqs_record, status_kb)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEMPLATE = os.environ.get("TEMPLATE", os.path.join(ROOT, "template.yaml"))
LATENCY_MS = float(os.environ.get("LATENCY_MS", "150"))
INVOCATIONS = max(1, int(os.environ.get("INVOCATIONS", "20")))
PAYLOAD_LIMIT = int(os.environ.get("PAYLOAD_LIMIT", str(6 * 1024 * 1024)))
MAX_IN_FLIGHT = int(os.environ.get("CLEVERTAP_MAX_IN_FLIGHT", "15"))
MAX_RECORDS = int(os.environ.get("CLEVERTAP_MAX_RECORDS", "1000"))
TIMEOUT = float(os.environ.get("TIMEOUT", "300"))
CGROUP_V1_CPU = "/sys/fs/cgroup/cpu"
CFS_PERIOD_US = 100_000
FULL_VCPU_MB = 1769  # Lambda: one vCPU's worth of CPU at 1,769 MB, in proportion below


# ------------------------------------------------------------------------ template.yaml

def yaml_block(lines, path):
    """The value after `key:` and the lines of its block, for nested mapping keys (block
    style, as template.yaml is written); None when a key is missing."""
    start, end, value = 0, len(lines), None
    for key in path:
        indent, hit = None, None
        for i in range(start, end):
            text = lines[i].lstrip(" ")
            if not text or text.startswith("#"):
                continue
            level = len(lines[i]) - len(text)
            if indent is None:
                indent = level
            if level < indent:
                break
            if level == indent and text.startswith(key + ":"):
                hit, value = i, text[len(key) + 1:].split(" #")[0].strip()
                break
        if hit is None:
            return None
        j = hit + 1
        while j < end:
            text = lines[j].lstrip(" ")
            if text and not text.startswith("#") and len(lines[j]) - len(text) <= indent:
                break
            j += 1
        start, end = hit + 1, j
    return value, lines[start:end]


def children(block):
    """(key, value) of a block's direct members."""
    indent = None
    for line in block:
        text = line.lstrip(" ")
        if not text or text.startswith("#"):
            continue
        level = len(line) - len(text)
        indent = level if indent is None else indent
        if level == indent and ":" in text:
            key, _, value = text.partition(":")
            yield key.strip(), value.split(" #")[0].strip()


def unquote(value):
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


class Template:
    def __init__(self, path):
        with open(path) as f:
            self.lines = f.read().splitlines()

    def get(self, *path):
        found = yaml_block(self.lines, path)
        return None if found is None else found[0]

    def default(self, parameter):
        value = self.get("Parameters", parameter, "Default")
        return None if value is None else unquote(value)

    def memory_mb(self):
        value = self.get("Globals", "Function", "MemorySize")
        if value is None:
            raise SystemExit(f"{TEMPLATE}: no Globals.Function.MemorySize")
        return int(value)

    def batch_size(self):
        """(BatchSize of the standard queue's trigger, where it came from)."""
        if self.default("QueueBatchSize") is not None:
            return int(self.default("QueueBatchSize")), "QueueBatchSize default"
        found = yaml_block(self.lines, ("Resources", "QueueFunction", "Properties", "Events",
                                        "Queue", "Properties", "BatchSize"))
        if found is None:
            raise SystemExit(f"{TEMPLATE}: no BatchSize on QueueFunction's Queue event")
        text = " ".join([found[0]] + [line.strip() for line in found[1]])
        ref = re.search(r"Ref:\s*(\w+)", text)
        if ref and self.default(ref.group(1)) is not None:
            return int(self.default(ref.group(1))), f"{ref.group(1)} default"
        branch = re.search(r"Fn::If:\s*\[\s*IsFifo\s*,\s*\d+\s*,\s*(\d+)\s*\]", text)
        if branch:
            return int(branch.group(1)), "BatchSize (standard queue)"
        if text.strip().isdigit():
            return int(text.strip()), "BatchSize"
        raise SystemExit(f"{TEMPLATE}: cannot read QueueFunction's BatchSize from {text!r}")

    def function_env(self):
        """Globals.Function.Environment.Variables: literal values and parameters' defaults;
        (variables, names left out because they name a resource or are conditional)."""
        found = yaml_block(self.lines, ("Globals", "Function", "Environment", "Variables"))
        if found is None:
            raise SystemExit(f"{TEMPLATE}: no Globals.Function.Environment.Variables")
        env, skipped = {}, []
        for name, value in children(found[1]):
            ref = re.fullmatch(r"\{\s*Ref:\s*(\w+)\s*\}", value)
            if ref:
                default = self.default(ref.group(1))
                if default is None:
                    skipped.append(name)  # a resource (the dead-letter queue's URL)
                else:
                    env[name] = default
            elif value and not value.startswith("{"):
                env[name] = unquote(value)
            else:
                skipped.append(name)
        return env, skipped


# ------------------------------------------------------------------------ the cgroup

class CpuLimit:
    """A cgroup v1 `cpu` child group holding only the function process."""

    def __init__(self, memory_mb):
        self.quota_us = round(CFS_PERIOD_US * memory_mb / FULL_VCPU_MB)
        if os.geteuid() != 0:
            raise SystemExit("bench_throughput: the CPU limit needs root (it creates a cgroup "
                             f"under {CGROUP_V1_CPU}); run as root, e.g. sudo make bench-throughput")
        if not os.path.exists(os.path.join(CGROUP_V1_CPU, "cpu.cfs_quota_us")):
            raise SystemExit(f"bench_throughput: no cgroup v1 cpu controller at {CGROUP_V1_CPU} "
                             "(cpu.cfs_quota_us missing); this benchmark needs one to limit the "
                             "function's CPU")
        self.path = os.path.join(CGROUP_V1_CPU, f"rudder-clevertap-bench-{os.getpid()}")
        os.mkdir(self.path)
        try:
            self.write("cpu.cfs_period_us", CFS_PERIOD_US)
            self.write("cpu.cfs_quota_us", self.quota_us)
            if os.path.exists(os.path.join(self.path, "cpu.cfs_burst_us")):
                self.write("cpu.cfs_burst_us", 0)  # no carried-over quota
        except OSError:
            self.remove()
            raise

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def procs(self):
        return os.path.join(self.path, "cgroup.procs")

    def stat(self):
        with open(os.path.join(self.path, "cpu.stat")) as f:
            return {k: int(v) for k, v in (line.split() for line in f if line.strip())}

    def holds(self, pid):
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if "cpu" in controllers.split(","):
                    return path == "/" + os.path.basename(self.path)
        return False

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)  # the process is still exiting
        print(f"bench_throughput: could not remove {self.path}", file=sys.stderr)


# ------------------------------------------------------------------------ the batch

def lambda_batch(batch_size, limit):
    """As many one-event messages as fit BatchSize and Lambda's payload limit: (bytes, count)."""
    head, tail = b'{"Records":[', b"]}"
    parts, size = [], len(head) + len(tail)
    for i in range(batch_size):
        record = sqs_record(i, event(i))
        record["md5OfMessageAttributes"] = "c8f4c3e1a7f0b5d2e9a6b3c0d7e4f1a8"
        data = json.dumps(record, separators=(",", ":")).encode()
        grow = len(data) + (1 if parts else 0)
        if size + grow > limit:
            break
        parts.append(data)
        size += grow
    return head + b",".join(parts) + tail, len(parts)


# ------------------------------------------------------------------------ figures

def in_flight(timeline, t0, t1):
    """(mean weighted by time over [t0, t1], mean while at least one is in flight, max)."""
    current, last, area, busy, peak = 0, t0, 0.0, 0.0, 0
    for t, n in timeline:
        if t <= t0:
            current = n
            continue
        if t >= t1:
            break
        area += current * (t - last)
        busy += (t - last) if current else 0.0
        peak = max(peak, current)
        current, last = n, t
    area += current * (t1 - last)
    busy += (t1 - last) if current else 0.0
    peak = max(peak, current)
    span = t1 - t0
    return area / span if span else 0.0, area / busy if busy else 0.0, peak


def spread(values, digits=1):
    values = sorted(values)
    return {"median": round(statistics.median(values), digits),
            "min": round(values[0], digits), "max": round(values[-1], digits)}


def commit():
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def read_log(path, rids):
    """Per measured invocation: its summary line's fields, and its log bytes by kind."""
    summaries, bytes_by_kind, lines = {}, {"summary": 0, "emf": 0, "other": 0}, 0
    with open(path, "rb") as f:
        raw = f.read()
    if PASSCODE.encode() in raw:
        raise SystemExit("CHECK FAILED: the passcode is in the function's log")
    for line in raw.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        rid = doc.get("requestId") or (doc.get("span") or {}).get("requestId")
        if rid not in rids:
            continue
        lines += 1
        fields = doc.get("fields") or {}
        if "_aws" in doc:
            kind = "emf"
        elif fields.get("message") == "invocation summary":
            kind = "summary"
            summaries[rid] = fields
        else:
            kind = "other"
        bytes_by_kind[kind] += len(line) + 1
    return summaries, bytes_by_kind, lines


# ------------------------------------------------------------------------ the run

def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    template = Template(TEMPLATE)
    memory_mb = int(os.environ.get("MEMORY_MB") or template.memory_mb())
    if os.environ.get("BATCH_SIZE"):
        batch_size, batch_source = int(os.environ["BATCH_SIZE"]), "BATCH_SIZE"
    else:
        batch_size, batch_source = template.batch_size()
    function_env, skipped = template.function_env()
    log_level = function_env.get("RUST_LOG", "info")
    max_concurrent = int(function_env.get("MAX_CONCURRENT_REQUESTS", "5"))
    limit_events_s = max_concurrent * MAX_RECORDS / (LATENCY_MS / 1000)

    payload, messages = lambda_batch(batch_size, PAYLOAD_LIMIT)
    stats = Stats()
    mock = type("Mock", (CleverTap,), {"stats": stats, "latency_ms": LATENCY_MS,
                                       "max_in_flight": MAX_IN_FLIGHT,
                                       "max_records": MAX_RECORDS})
    secrets_stats = Stats()
    clevertap = serve(mock)
    secrets = serve(type("Secrets", (SecretsManager,), {"stats": secrets_stats}))
    runtime = Runtime()
    api = serve(type("Api", (RuntimeApi,), {"runtime": runtime}))

    env = aws_env(secrets.server_port, clevertap.server_port)
    env.update(function_env)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_port}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_LEVEL": log_level.upper(),  # LoggingConfig.ApplicationLogLevel
    })

    keep_log = os.environ.get("LOG_FILE")
    tmp = tempfile.TemporaryDirectory()
    log_path = keep_log or os.path.join(tmp.name, "function.log")
    limit = CpuLimit(memory_mb)
    proc = None
    done = threading.Event()

    def stop():
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        limit.remove()

    def watchdog():
        if not done.wait(TIMEOUT):
            print(f"bench_throughput: no result in {TIMEOUT} s, stopping", file=sys.stderr)
            stop()
            os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with open(log_path, "wb") as log:
            # The shell puts itself (its pid is the binary's after exec) into the group, so
            # the binary's first instruction already runs under the quota.
            proc = subprocess.Popen(
                ["/bin/sh", "-c", 'echo $$ > "$1" && exec "$2"', "sh", limit.procs(), binary],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        pid = proc.pid
        runtime.on_answer = lambda rid: (on_cpu_seconds(pid), limit.stat())

        def wait(rid, timeout):
            """The answer to `rid`; stops at once if the function exits instead."""
            end = time.monotonic() + timeout
            with runtime.answered:
                while rid not in runtime.answers:
                    if proc.poll() is not None:
                        with open(log_path, "rb") as f:
                            tail = f.read()[-2000:].decode(errors="replace")
                        raise SystemExit(f"CHECK FAILED: the function exited ({proc.returncode}) "
                                         f"before answering {rid}; the end of its log:\n{tail}")
                    if time.monotonic() > end:
                        raise SystemExit(f"CHECK FAILED: {rid} got no answer in {timeout} s")
                    runtime.answered.wait(0.5)
            return runtime.answers[rid]

        runtime.invoke("warm-up", payload)
        kind, data, _ = wait("warm-up", 120)
        if kind != "response":
            raise SystemExit(f"CHECK FAILED: the warm-up invocation failed: {data[:500]!r}")
        if not limit.holds(pid):
            raise SystemExit("CHECK FAILED: the function process is not in the CPU-limited group")
        stats.reset()
        secrets_stats.reset()
        rids = [f"inv-{n}" for n in range(INVOCATIONS)]
        for rid in rids:
            runtime.invoke(rid, payload)
        failed = 0
        for rid in rids:
            kind, data, _ = wait(rid, 120)
            if kind != "response":
                raise SystemExit(f"CHECK FAILED: invocation {rid} failed: {data[:500]!r}")
            failed += len(json.loads(data).get("batchItemFailures") or [])
        time.sleep(0.3)  # the last lines the function writes after answering
        peak_rss_mb = status_kb(pid, "VmHWM") / 1024
    finally:
        stop()
        done.set()

    # ---------------------------------------------------------------- figures
    t0 = runtime.handed_out[rids[0]]
    t1 = runtime.answers[rids[-1]][2]
    wall = t1 - t0
    events = messages * INVOCATIONS
    durations = [(runtime.answers[r][2] - runtime.handed_out[r]) * 1000 for r in rids]
    # hand-out -> the invocation's first upload arriving at CleverTap, and its last answer ->
    # the function's response: the parts of an invocation not spent waiting on CleverTap
    firsts, tails = [], []
    for r in rids:
        start, end = runtime.handed_out[r], runtime.answers[r][2]
        mine = [t for t in stats.arrivals if start <= t <= end]
        if mine:
            firsts.append((min(mine) - start) * 1000)
            tails.append((end - max(mine)) * 1000 - LATENCY_MS)
    previous = ["warm-up"] + rids[:-1]
    cpus = [(runtime.marks[r][0] - runtime.marks[p][0]) * 1000 for r, p in zip(rids, previous)]
    stat_first, stat_last = runtime.marks["warm-up"][1], runtime.marks[rids[-1]][1]
    throttled = [runtime.marks[r][1].get("nr_throttled", 0) - runtime.marks[p][1].get("nr_throttled", 0)
                 for r, p in zip(rids, previous)]
    mean_in_flight, busy_in_flight, max_in_flight = in_flight(stats.timeline, t0, t1)
    summaries, log_bytes, log_lines = read_log(log_path, set(rids))
    per_request = stats.records_per_request
    statuses = stats.statuses

    problems = []
    if failed:
        problems.append(f"{failed} messages reported failed (batchItemFailures)")
    for rid in rids:
        s = summaries.get(rid)
        if s is None:
            problems.append(f"{rid}: no invocation summary line in the log")
        elif s.get("delivered", 0) + s.get("filtered", 0) != messages or s.get("rejected") \
                or s.get("retried"):
            problems.append(f"{rid}: summary {{delivered {s.get('delivered')}, filtered "
                            f"{s.get('filtered')}, rejected {s.get('rejected')}, retried "
                            f"{s.get('retried')}}} for {messages} messages")
    for status in (400, 401):
        if statuses.get(status):
            problems.append(f"CleverTap stand-in answered {status} {statuses[status]} times")

    result = {
        "bench": "throughput",
        "commit": commit(),
        "binary_bytes": os.path.getsize(binary),
        "memory_mb": memory_mb,
        "cpu_quota_us": limit.quota_us,
        "cpu_period_us": CFS_PERIOD_US,
        "batch_size": batch_size,
        "batch_size_from": batch_source,
        "messages_per_invocation": messages,
        "payload_bytes": len(payload),
        "latency_ms": LATENCY_MS,
        "max_concurrent_requests": max_concurrent,
        "invocations": INVOCATIONS,
        "wall_s": round(wall, 3),
        "events_per_second": round(events / wall),
        "in_flight_limit_events_per_second": round(limit_events_s),
        "share_of_limit": round(events / wall / limit_events_s, 3),
        "requests": len(per_request),
        "records_per_request_mean": round(sum(per_request) / len(per_request), 1) if per_request else 0,
        "records_per_request_min_max": [min(per_request), max(per_request)] if per_request else [],
        "requests_per_invocation": round(len(per_request) / INVOCATIONS, 2),
        "in_flight_mean": round(mean_in_flight, 2),
        "in_flight_mean_while_uploading": round(busy_in_flight, 2),
        "in_flight_max": max_in_flight,
        "http_429": statuses.get(429, 0),
        "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "clevertap_answers_late": stats.late,
        "cpu_ms_per_invocation": spread(cpus),
        "cpu_ms_total": round(sum(cpus), 1),
        "throttled_periods_per_invocation": spread(throttled, 0),
        "throttled_ms_total": round((stat_last.get("throttled_time", 0)
                                     - stat_first.get("throttled_time", 0)) / 1e6, 1),
        "invocation_ms": spread(durations),
        "to_first_upload_ms": spread(firsts or [0]),
        "last_answer_to_response_ms": spread(tails or [0]),
        "handler_duration_ms": spread([summaries[r].get("duration_ms", 0) for r in rids
                                       if r in summaries] or [0], 0),
        "log_bytes_per_invocation": round(sum(log_bytes.values()) / INVOCATIONS),
        "log_bytes_per_invocation_by_kind": {k: round(v / INVOCATIONS) for k, v in log_bytes.items()},
        "log_lines_per_invocation": round(log_lines / INVOCATIONS, 1),
        "log_level": log_level,
        "secrets_manager_calls_measured": secrets_stats.secret_calls,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "template_variables_not_set": skipped,
        "checks": "passed" if not problems else problems,
    }
    result["target_met"] = result["share_of_limit"] >= 0.5 and result["http_429"] == 0
    print_table(result)
    line = json.dumps(result, separators=(",", ":"))
    print(line)
    if os.environ.get("RESULTS"):
        with open(os.environ["RESULTS"], "a") as f:
            f.write(line + "\n")
    if problems:
        for p in problems:
            print(f"CHECK FAILED: {p}", file=sys.stderr)
        sys.exit(1)


def print_table(r):
    def rng(s, unit=""):
        return f"{s['median']}{unit} ({s['min']}-{s['max']})"

    rows = [
        ("commit / binary", f"{r['commit']} / {r['binary_bytes']:,} bytes"),
        ("MemorySize -> CPU quota", f"{r['memory_mb']} MB -> {r['cpu_quota_us']} us per "
                                    f"{r['cpu_period_us']} us (cgroup v1 cpu)"),
        ("BatchSize", f"{r['batch_size']} ({r['batch_size_from']}): {r['messages_per_invocation']:,}"
                      f" messages, {r['payload_bytes']:,} bytes per invocation"),
        ("CleverTap latency", f"{r['latency_ms']:g} ms; in-flight limit "
                              f"{r['max_concurrent_requests']} x 1000 records = "
                              f"{r['in_flight_limit_events_per_second']:,} events/s"),
        ("invocations (after a warm-up)", f"{r['invocations']} in {r['wall_s']} s"),
        ("events/s, one instance", f"{r['events_per_second']:,}"),
        ("share of the in-flight limit", f"{r['share_of_limit']:.1%}"
                                         f"  (target >= 50%, no 429: "
                                         f"{'met' if r['target_met'] else 'NOT met'})"),
        ("records per request", f"{r['records_per_request_mean']} (min-max "
                                f"{'-'.join(map(str, r['records_per_request_min_max']))}), "
                                f"{r['requests_per_invocation']} requests per invocation"),
        ("requests in flight", f"mean {r['in_flight_mean']} (while uploading "
                               f"{r['in_flight_mean_while_uploading']}), max {r['in_flight_max']}"),
        ("429s / statuses", f"{r['http_429']} / {r['http_statuses']}"),
        ("CPU per invocation (schedstat)", rng(r["cpu_ms_per_invocation"], " ms")),
        ("throttled periods per invocation", rng(r["throttled_periods_per_invocation"])),
        ("invocation duration (handed out -> answer)", rng(r["invocation_ms"], " ms")),
        ("  of which: handed out -> first upload", rng(r["to_first_upload_ms"], " ms")),
        ("  last upload's answer -> response", rng(r["last_answer_to_response_ms"], " ms")),
        ("handler duration_ms (summary line)", rng(r["handler_duration_ms"], " ms")),
        ("log bytes per invocation", f"{r['log_bytes_per_invocation']:,} "
                                     f"{r['log_bytes_per_invocation_by_kind']} at "
                                     f"{r['log_level']}, JSON"),
        ("peak RSS", f"{r['peak_rss_mb']} MB"),
        ("checks", "passed" if r["checks"] == "passed" else "FAILED"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
