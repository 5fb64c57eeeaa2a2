#!/usr/bin/env python3
"""What a million events cost, all in, from `bench_throughput.py`'s JSON lines (README.md,
"What a million events cost"). Stdlib only.

  scripts/cost_per_million.py RESULTS.jsonl...            # runs summary and cost table (markdown)
  scripts/cost_per_million.py --write README.md RESULTS...  # replace the table between the markers
  scripts/cost_per_million.py --check README.md RESULTS...  # exit 1 if README's table differs

Runs are grouped by (BatchSize, MemorySize, CleverTap latency); each group's figures are the
medians over its runs. Per million events, for E events per invocation, D seconds per invocation
(median, rounded up to the millisecond as Lambda bills), M MB and L log bytes per invocation:

  Lambda invocations     I = 10^6 / E
  Lambda GB-seconds      I x D x M / 1024
  SQS ReceiveMessage     I x ceil(E / 10)   (the event source's pollers: 10 messages per receive)
  SQS DeleteMessageBatch I x ceil(E / 10)   (the event source deletes what the function acked)
  CloudWatch Logs bytes  I x (L + PLATFORM_LOG_BYTES)

ChangeMessageVisibility(Batch) calls and dead letters are 0 while CleverTap accepts everything
(the function calls them only for retried and rejected messages). PRICES are assumed us-east-1
list prices as of 2026; check https://aws.amazon.com/lambda/pricing/,
https://aws.amazon.com/sqs/pricing/, https://aws.amazon.com/cloudwatch/pricing/ and
https://aws.amazon.com/secrets-manager/pricing/.
"""

import json
import math
import statistics
import sys

PRICES = {
    "lambda_request": 0.20 / 1e6,          # arm64 and x86_64 alike
    "lambda_gb_second_arm64": 0.0000133334,
    "sqs_request": 0.40 / 1e6,             # standard queue, past the free tier (FIFO: 0.50)
    "logs_gb": 0.50,                       # CloudWatch Logs standard ingestion, GB = 10^9 bytes
    "metric_month": 0.30,                  # custom metric, first 10,000
    "secret_month": 0.40,
    "secrets_call": 0.05 / 10_000,
}
# Lambda's own platform lines per invocation in JSON format (platform.start, platform.report):
# assumed, not measured here (the bench measures the function's own lines).
PLATFORM_LOG_BYTES = 500
# The producers' sends: SendMessageBatch of 10 one-event messages (a single SendMessage per
# event would be 1,000,000 requests). Webhook queue mode sends the same way: one
# SendMessageBatch per 10 events of a request, so 1,000,000 for single-event requests.
SENDS_BATCHED = 100_000
SECRETS_TTL_SECONDS = 300  # template.yaml
BEGIN = "<!-- cost_per_million.py: begin -->"
END = "<!-- cost_per_million.py: end -->"


def load(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    doc = json.loads(line)
                    if doc.get("bench") == "throughput":
                        runs.append(doc)
    if not runs:
        raise SystemExit("no bench_throughput.py results in " + ", ".join(paths))
    return runs


def groups(runs):
    by = {}
    for r in runs:
        by.setdefault((r["batch_size"], r["memory_mb"], r["latency_ms"]), []).append(r)
    # the largest batches first, then memory
    return sorted(by.items(), key=lambda kv: (-kv[0][0], kv[0][1], kv[0][2]))


def med(values):
    return statistics.median(values)


def figures(rs):
    return {
        "runs": len(rs),
        "E": med([r["messages_per_invocation"] for r in rs]),
        "D": math.ceil(med([r["invocation_ms"]["median"] for r in rs])) / 1000,
        "M": rs[0]["memory_mb"],
        "L": med([r["log_bytes_per_invocation"] for r in rs]),
    }


def cost(f):
    i = 1e6 / f["E"]
    gb_s = i * f["D"] * f["M"] / 1024
    receives = deletes = i * math.ceil(f["E"] / 10)
    log_bytes = i * (f["L"] + PLATFORM_LOG_BYTES)
    rows = {
        "invocations": i,
        "gb_s": gb_s,
        "lambda": i * PRICES["lambda_request"] + gb_s * PRICES["lambda_gb_second_arm64"],
        "lambda_requests_usd": i * PRICES["lambda_request"],
        "lambda_duration_usd": gb_s * PRICES["lambda_gb_second_arm64"],
        "receives": receives,
        "deletes": deletes,
        "sqs_usd": (receives + deletes) * PRICES["sqs_request"],
        "log_bytes": log_bytes,
        "logs_usd": log_bytes / 1e9 * PRICES["logs_gb"],
    }
    rows["total_usd"] = rows["lambda"] + rows["sqs_usd"] + rows["logs_usd"]
    return rows


def spread(values, fmt):
    values = sorted(values)
    mid = med(values)
    if len(values) == 1:
        return fmt(mid)
    return f"{fmt(mid)} ({fmt(values[0])}-{fmt(values[-1])})"


def usd(x):
    if x == 0:
        return "$0"
    return f"${x:.6f}" if x < 0.001 else f"${x:.4f}" if x < 0.1 else f"${x:.3f}"


def table(runs):
    gs = groups(runs)
    heads = [f"BatchSize {b:,}, {m} MB" for (b, m, _), _ in gs]
    out = ["| per million events | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(gs)]

    def row(name, cells):
        out.append(f"| {name} | " + " | ".join(cells) + " |")

    fs = [figures(rs) for _, rs in gs]
    cs = [cost(f) for f in fs]
    latency = {lat for (_, _, lat), _ in gs}
    row("measured: runs", [str(f["runs"]) for f in fs])
    row("measured: events per invocation, E", [f"{f['E']:,.0f}" for f in fs])
    row("measured: events/s of one instance, median (range)",
        [spread([r["events_per_second"] for r in rs], lambda v: f"{v:,.0f}") for _, rs in gs])
    row(f"measured: invocation duration D at {'/'.join(f'{v:g}' for v in sorted(latency))} ms "
        "CleverTap latency, ms", [spread([r["invocation_ms"]["median"] for r in rs],
                                         lambda v: f"{v:.0f}") for _, rs in gs])
    row("measured: the function's log bytes per invocation, L", [f"{f['L']:,.0f}" for f in fs])
    row("Lambda requests, I = 10⁶ / E", [f"{c['invocations']:,.0f} = {usd(c['lambda_requests_usd'])}"
                                          for c in cs])
    row("Lambda GB-seconds, I × D × M / 1024", [f"{c['gb_s']:,.1f} = {usd(c['lambda_duration_usd'])}"
                                                for c in cs])
    row("SQS ReceiveMessage (the event source's pollers), I × ⌈E / 10⌉",
        [f"{c['receives']:,.0f}" for c in cs])
    row("SQS DeleteMessageBatch (the event source), I × ⌈E / 10⌉",
        [f"{c['deletes']:,.0f}" for c in cs])
    row("SQS ChangeMessageVisibilityBatch, dead letters' SendMessageBatch (healthy)",
        ["0" for _ in cs])
    row("SQS, the event source's requests", [usd(c["sqs_usd"]) for c in cs])
    row(f"CloudWatch Logs, I × (L + {PLATFORM_LOG_BYTES}) bytes",
        [f"{c['log_bytes'] / 1e6:,.2f} MB = {usd(c['logs_usd'])}" for c in cs])
    row("**the queue function's share**", [f"**{usd(c['total_usd'])}**" for c in cs])
    producer = SENDS_BATCHED * PRICES["sqs_request"]
    row(f"+ the producers' sends, SendMessageBatch of 10 events ({SENDS_BATCHED:,})",
        [usd(producer) for _ in cs])
    row("**all in, per million events** (see below for what is per month)",
        [f"**{usd(c['total_usd'] + producer)}**" for c in cs])
    return "\n".join(out)


def per_month(destinations=1, instances=2):
    """What does not grow with events: EMF custom metrics and Secrets Manager."""
    month_s = 730 * 3600
    calls = destinations * instances * month_s / SECRETS_TTL_SECONDS
    return "\n".join([
        "| per month, not per event | count | cost |",
        "|---|---:|---:|",
        f"| CloudWatch custom metrics, per destination (15 per function, 2 functions) | 30 | "
        f"{usd(30 * PRICES['metric_month'])} |",
        f"| CloudWatch custom metrics, per stack (`[function]` only: 16 per function) | 32 | "
        f"{usd(32 * PRICES['metric_month'])} |",
        f"| Secrets Manager `GetSecretValue`, per destination, {instances} instances warm all month "
        f"(one per {SECRETS_TTL_SECONDS} s each) | {calls:,.0f} | {usd(calls * PRICES['secrets_call'])} |",
        f"| Secrets Manager, the secret itself, per destination | 1 | "
        f"{usd(PRICES['secret_month'])} |",
    ])


def replace(text, new):
    if BEGIN not in text or END not in text:
        raise SystemExit(f"the markers {BEGIN} and {END} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{new}\n{END}{tail}"


def main(args):
    mode = None
    if args and args[0] in ("--write", "--check"):
        if len(args) < 3:
            raise SystemExit(__doc__)
        mode, doc, args = args[0], args[1], args[2:]
    if not args:
        raise SystemExit(__doc__)
    new = table(load(args)) + "\n\n" + per_month()
    if mode is None:
        print(new)
        return
    with open(doc) as f:
        text = f.read()
    updated = replace(text, new)
    if mode == "--write":
        with open(doc, "w") as f:
            f.write(updated)
    elif updated != text:
        print(f"{doc}: the cost table differs from what {' '.join(args)} gives:\n{new}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
