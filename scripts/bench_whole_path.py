#!/usr/bin/env python3
"""Whole-path benchmark of the rudder-clevertap Lambda binary (BENCHMARKS.md, "Whole path").

Runs the real binary exactly as Lambda does: this script is the Lambda Runtime API the binary
polls, a mock CleverTap (every record accepted) and a stand-in Secrets Manager (GetSecretValue
only), all on 127.0.0.1, stdlib only. It measures:

  * cold start: process start to the binary's first GET /invocation/next (init), and to the
    first invocation (one SQS message, its destination's secret fetched) answered; COLD_STARTS
    processes, median and range;
  * a batch of MESSAGES SQS messages through the handler (default: as many as fit the largest
    invocation payload Lambda hands over, 6 MB = 6,291,456 bytes of invocation JSON, worked
    out below and printed):
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
import signal
import subprocess
import sys
import threading
import time

from bench_common import (PASSCODE, STATS, CleverTap, Runtime, RuntimeApi, SecretsManager, aws_env,
                          event, on_cpu_seconds, proc_times, serve, sqs_batch, sqs_record,
                          status_kb)

# Lambda's limit on a synchronous invocation's payload, which an SQS event source's batch is
# held to: the whole invocation JSON, the SQS envelope included.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def messages_fitting(limit=MAX_PAYLOAD_BYTES, most=10000):
    """How many messages of the event mix fit one invocation payload of `limit` bytes (at most
    `most`, SQS's batch maximum): '{"Records":[' + records joined by ',' + ']}'."""
    size = len('{"Records":[]}')
    for i in range(most):
        record = len(json.dumps(sqs_record(i, event(i)), separators=(",", ":")))
        size += record + (1 if i else 0)
        if size > limit:
            return i
    return most


MESSAGES = int(os.environ.get("MESSAGES") or messages_fitting())
WARM_RUNS = int(os.environ.get("WARM_RUNS", "3"))
COLD_STARTS = max(1, int(os.environ.get("COLD_STARTS", "5")))
TRANSFORM_REPEAT = max(1, int(os.environ.get("TRANSFORM_REPEAT", "20")))
MOCK_LATENCY_MS = float(os.environ.get("MOCK_LATENCY_MS", "0"))
TIMEOUT = float(os.environ.get("TIMEOUT", "300"))


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    CleverTap.latency_ms = MOCK_LATENCY_MS
    clevertap, secrets = serve(CleverTap), serve(SecretsManager)
    env = {
        **aws_env(secrets.server_port, clevertap.server_port),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "RUST_LOG": os.environ.get("FUNCTION_RUST_LOG", "info"),
    }

    batch = sqs_batch(MESSAGES)
    first = sqs_batch(1)
    print(f"batch: {MESSAGES:,} messages, {len(batch):,} bytes of invocation payload "
          f"(Lambda's maximum {MAX_PAYLOAD_BYTES:,})", file=sys.stderr)
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
        "max_payload_bytes": MAX_PAYLOAD_BYTES,
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
