"""Monthly AWS cost of a deployed Beacon at 10, 100 and 1,000 events/s.

    python bench/cost.py [--write]

Storage and streaming units per event are the ones `make bench` measures
(docs/benchmarks.md: Consent, Identity, Segments); the Lambda durations are
assumptions, written next to each figure, because a moto run on a laptop says
nothing about Lambda milliseconds. Prices are AWS's published on-demand prices
for us-east-1 (arm64 Lambda, DynamoDB on-demand, Kinesis provisioned, HTTP API).
`--write` rewrites docs/cost.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from bench.harness import ROOT, command_line

SECONDS_PER_MONTH = 730 * 3600
RATES = (10, 100, 1000)

# --- published prices (us-east-1) ---------------------------------------------------
HTTP_API_PER_MILLION = 1.00  # first 300 M requests a month
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_ARM_PER_GB_S = 0.0000133334
DYNAMO_WRITE_PER_MILLION = 0.625  # on-demand write request units
DYNAMO_READ_PER_MILLION = 0.125  # on-demand read request units (strongly consistent: 1 per 4 KB)
DYNAMO_STORAGE_PER_GB = 0.25
KINESIS_SHARD_HOUR = 0.015
KINESIS_PUT_UNIT_PER_MILLION = 0.014  # 25 KB payload units
SHARD_RECORDS_PER_S = 1000  # a shard's write limit
SQS_PER_MILLION = 0.40
SECRET_PER_MONTH = 0.40
LOGS_PER_GB = 0.50

# --- measured per event (docs/benchmarks.md, first pass on fresh tables: an upper bound) -
CONSENT_FORWARDED = 0.746  # share of events forwarded (Consent: 746 of 1,000)
UNITS = {
    # step: (DynamoDB reads/event, DynamoDB writes/event, Kinesis records out/event)
    "consent": (0.041, 0.795, CONSENT_FORWARDED),
    "identity": (0.539 * CONSENT_FORWARDED, 0.664 * CONSENT_FORWARDED, CONSENT_FORWARDED),
    # Segments: 0.164 reads, 0.162 writes per resolved record (+0.10 for the size counter
    # riding in transactions, at 2 units each); 0.15 change records per record.
    "segments": (0.164 * CONSENT_FORWARDED, (0.162 + 0.2) * CONSENT_FORWARDED, 0.15),
    # Scoring: one read and at most one write per change record.
    "scoring": (0.15, 0.15, 0.0),
}
ACTIVATIONS_PER_EVENT = 0.05  # segment changes + score crossings reaching the queue
DESTINATIONS = 4

# --- assumed Lambda work (not measurable here) -----------------------------------------


@dataclass(frozen=True)
class Fn:
    memory_mb: int
    ms_per_invocation: float  # assumed
    per: str  # what one invocation handles


FUNCTIONS = {
    "ingest": Fn(512, 15, "request (one event each: the worst case, a pixel)"),
    "consent": Fn(512, 150, "batch"),
    "identity": Fn(1024, 400, "batch"),
    "segments": Fn(1024, 300, "batch"),
    "scoring": Fn(1769, 200, "batch"),
    "webhook": Fn(512, 300, "SQS batch of 10"),
}
STREAM_SHARDS = {"events": 2, "consented": 2, "resolved": 2, "profile-changes": 2}
BATCH_SIZE = 200
BATCH_WINDOW_S = 1.0


def shards_needed(stream: str, records_per_s: float) -> int:
    return max(STREAM_SHARDS[stream], math.ceil(records_per_s / (0.7 * SHARD_RECORDS_PER_S)))


def stream_invocations_per_s(records_per_s: float, shards: int) -> float:
    """A consumer is invoked once per shard per batching window, or per full batch."""
    return max(shards / BATCH_WINDOW_S if records_per_s else 0, records_per_s / BATCH_SIZE)


def monthly(rate: float) -> dict[str, float]:
    events = rate * SECONDS_PER_MONTH
    cost: dict[str, float] = {}
    cost["API Gateway HTTP API"] = events / 1e6 * HTTP_API_PER_MILLION
    reads = sum(r for r, _, _ in UNITS.values()) * events
    writes = sum(w for _, w, _ in UNITS.values()) * events
    cost["DynamoDB requests"] = (
        reads / 1e6 * DYNAMO_READ_PER_MILLION + writes / 1e6 * DYNAMO_WRITE_PER_MILLION
    )
    profiles = min(events * 0.02, 50e6)  # one new person per 50 events, capped
    cost["DynamoDB storage"] = profiles * 1.5e-6 * DYNAMO_STORAGE_PER_GB  # ~1.5 KB each
    records = {
        "events": rate,
        "consented": rate * CONSENT_FORWARDED,
        "resolved": rate * CONSENT_FORWARDED,
        "profile-changes": rate * 0.15,
    }
    shards = {s: shards_needed(s, r) for s, r in records.items()}
    cost["Kinesis shards"] = sum(shards.values()) * KINESIS_SHARD_HOUR * 730
    cost["Kinesis PUT units"] = (
        sum(records.values()) * SECONDS_PER_MONTH / 1e6 * (KINESIS_PUT_UNIT_PER_MILLION)
    )
    invocations = {
        "ingest": rate,
        "consent": stream_invocations_per_s(records["events"], shards["events"]),
        "identity": stream_invocations_per_s(records["consented"], shards["consented"]),
        "segments": stream_invocations_per_s(records["resolved"], shards["resolved"]),
        "scoring": stream_invocations_per_s(records["profile-changes"], shards["profile-changes"]),
        "webhook": rate * ACTIVATIONS_PER_EVENT * (1 + DESTINATIONS) / 10,
    }
    lambda_cost = 0.0
    for name, per_s in invocations.items():
        fn = FUNCTIONS[name]
        count = per_s * SECONDS_PER_MONTH
        gb_s = count * fn.ms_per_invocation / 1000 * fn.memory_mb / 1024
        lambda_cost += count / 1e6 * LAMBDA_PER_MILLION_REQUESTS + gb_s * LAMBDA_ARM_PER_GB_S
    cost["Lambda"] = lambda_cost
    # Batched: SendMessageBatch, ReceiveMessage and DeleteMessageBatch take 10 messages.
    sqs_requests = rate * ACTIVATIONS_PER_EVENT * (1 + DESTINATIONS) * 3 / 10 * SECONDS_PER_MONTH
    cost["SQS"] = sqs_requests / 1e6 * SQS_PER_MILLION
    log_gb = sum(invocations.values()) * SECONDS_PER_MONTH * 400 / 1e9  # ~400 B per invocation
    cost["CloudWatch Logs"] = log_gb * LOGS_PER_GB
    cost["Secrets Manager, KMS"] = 9 * SECRET_PER_MONTH + 1.0
    return cost


def document(command: str) -> str:
    tables = {rate: monthly(rate) for rate in RATES}
    items = list(tables[RATES[0]])
    header = "| | " + " | ".join(f"{r:,} events/s" for r in RATES) + " |"
    rows = [header, "|---|" + "---:|" * len(RATES)]
    for item in items:
        rows.append(f"| {item} | " + " | ".join(f"${tables[r][item]:,.0f}" for r in RATES) + " |")
    totals = {r: sum(tables[r].values()) for r in RATES}
    rows.append(
        "| **total per month** | " + " | ".join(f"**${totals[r]:,.0f}**" for r in RATES) + " |"
    )
    per_million = " / ".join(f"${totals[r] / (r * SECONDS_PER_MONTH / 1e6):.2f}" for r in RATES)
    assumptions = "\n".join(
        f"| {name} | {fn.memory_mb} MB | {fn.ms_per_invocation:g} ms per {fn.per} |"
        for name, fn in FUNCTIONS.items()
    )
    units = "\n".join(
        f"| {step} | {r:.3f} | {w:.3f} | {k:.3f} |" for step, (r, w, k) in UNITS.items()
    )
    return f"""# What Beacon costs to run

`{command}` — monthly cost in us-east-1 at a steady rate, on-demand prices.
Per million events: {per_million} (at {", ".join(f"{r:,}" for r in RATES)} events/s).

{chr(10).join(rows)}

At low rates the fixed part dominates: 8 provisioned Kinesis shards (4 streams of
2) cost about $88 a month whatever the traffic; at 1,000 events/s the API
Gateway requests and DynamoDB writes lead. Two levers: send batches (Segment's
`/v1/batch` or a server library: one HTTP request, one ingest invocation and one
PutRecords per 100 events instead of per event — the HTTP API line divides by
the batch size), and on-demand Kinesis (`cdk deploy -c beacon:streamMode=on-demand`)
for spiky or small traffic.

## Measured units per event

From `make bench` (docs/benchmarks.md), first pass on fresh tables: every person
new, so these are upper bounds for a shop with returning customers.

| step | DynamoDB reads/event | DynamoDB writes/event | Kinesis records out/event |
|---|---:|---:|---:|
{units}

Identity and segments see only what consent forwards ({CONSENT_FORWARDED:.0%} of events in
the benchmark); segments' writes include the segment-size counters, which ride
in a transaction with the membership change (two units). Profile items stay
under 1 KB (average 0.6 KB), so a write is one unit.

## Assumptions (not measurable on moto)

| function | memory | duration |
|---|---|---|
{assumptions}

Stream consumers are invoked once per shard per second (the batching window)
until a batch of 200 fills. Shards grow when a stream passes 70 % of 1,000
records/s per shard. Activations: {ACTIVATIONS_PER_EVENT} per event, fanned out
to {DESTINATIONS} destinations, three SQS requests per 10 messages (batched send, receive, delete).
CloudWatch Logs: about 400 bytes per invocation (Powertools' structured lines).
Not included: data transfer out to the journey platforms, X-Ray traces beyond the
free tier, and the CloudWatch dashboard ($3) and alarms ($0.10 each).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    text = document(command_line("cost.py", argv))
    print(text)
    if args.write:
        (ROOT / "docs" / "cost.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
