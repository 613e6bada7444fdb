"""Monthly AWS cost of a deployed Beacon at 10, 100 and 1,000 events/s.

    python bench/cost.py [--customers 40] [--write]

DynamoDB, Kinesis and SQS units per event are measured here, on the whole
pipeline (`bench/pipeline.py`: the local stack, simulated shoppers over HTTP);
the Lambda durations are assumptions, written next to each figure, because a
moto run on a laptop says nothing about Lambda milliseconds. Prices are AWS's
published on-demand prices for us-east-1 (arm64 Lambda, DynamoDB on-demand,
Kinesis provisioned, HTTP API).
`--write` rewrites docs/cost.md.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from bench.harness import ROOT, command_line, pipeline_arguments, quietly
from bench.pipeline import measure

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


@dataclass(frozen=True)
class Measured:
    """Per event sent, over the whole pipeline (bench/pipeline.py)."""

    dynamodb_reads: float
    dynamodb_writes: float  # write units (a transactional write counts two)
    kinesis_records: float
    sqs_messages: float
    forwarded: float  # share consent forwarded
    changes: float  # profile-changes records (segments' announcements)

    @classmethod
    def from_pipeline(cls, r: dict[str, Any]) -> Measured:
        sent, c = r["sent"], r["counts"]
        return cls(
            dynamodb_reads=c["dynamodb_read"] / sent,
            dynamodb_writes=c["dynamodb_write"] / sent,
            kinesis_records=c["kinesis_records"] / sent,
            sqs_messages=c["sqs_messages"] / sent,
            forwarded=r["forwarded"] / sent,
            changes=max(c["kinesis_records"] / sent - 1 - 2 * r["forwarded"] / sent, 0.0),
        )


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


def monthly(rate: float, m: Measured) -> dict[str, float]:
    events = rate * SECONDS_PER_MONTH
    cost: dict[str, float] = {}
    cost["API Gateway HTTP API"] = events / 1e6 * HTTP_API_PER_MILLION
    reads, writes = m.dynamodb_reads * events, m.dynamodb_writes * events
    cost["DynamoDB requests"] = (
        reads / 1e6 * DYNAMO_READ_PER_MILLION + writes / 1e6 * DYNAMO_WRITE_PER_MILLION
    )
    profiles = min(events * 0.02, 50e6)  # one new person per 50 events, capped
    cost["DynamoDB storage"] = profiles * 1.5e-6 * DYNAMO_STORAGE_PER_GB  # ~1.5 KB each
    records = {
        "events": rate,
        "consented": rate * m.forwarded,
        "resolved": rate * m.forwarded,
        "profile-changes": rate * m.changes,
    }
    shards = {s: shards_needed(s, r) for s, r in records.items()}
    cost["Kinesis shards"] = sum(shards.values()) * KINESIS_SHARD_HOUR * 730
    cost["Kinesis PUT units"] = m.kinesis_records * events / 1e6 * KINESIS_PUT_UNIT_PER_MILLION
    invocations = {
        "ingest": rate,
        "consent": stream_invocations_per_s(records["events"], shards["events"]),
        "identity": stream_invocations_per_s(records["consented"], shards["consented"]),
        "segments": stream_invocations_per_s(records["resolved"], shards["resolved"]),
        "scoring": stream_invocations_per_s(records["profile-changes"], shards["profile-changes"]),
        "webhook": rate * m.sqs_messages / 10,
    }
    lambda_cost = 0.0
    for name, per_s in invocations.items():
        fn = FUNCTIONS[name]
        count = per_s * SECONDS_PER_MONTH
        gb_s = count * fn.ms_per_invocation / 1000 * fn.memory_mb / 1024
        lambda_cost += count / 1e6 * LAMBDA_PER_MILLION_REQUESTS + gb_s * LAMBDA_ARM_PER_GB_S
    cost["Lambda"] = lambda_cost
    # Batched: SendMessageBatch, ReceiveMessage and DeleteMessageBatch take 10 messages.
    sqs_requests = m.sqs_messages * events * 3 / 10
    cost["SQS"] = sqs_requests / 1e6 * SQS_PER_MILLION
    log_gb = sum(invocations.values()) * SECONDS_PER_MONTH * 400 / 1e9  # ~400 B per invocation
    cost["CloudWatch Logs"] = log_gb * LOGS_PER_GB
    cost["Secrets Manager, KMS"] = 9 * SECRET_PER_MONTH + 1.0
    return cost


def document(command: str, m: Measured, customers: int) -> str:
    tables = {rate: monthly(rate, m) for rate in RATES}
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

Measured by this script on the whole pipeline (`bench/pipeline.py`: the local
stack, {customers} simulated shoppers over HTTP, every step drained), per event
sent:

| unit | per event |
|---|---:|
| DynamoDB items read | {m.dynamodb_reads:.2f} |
| DynamoDB write units (a transactional write is two) | {m.dynamodb_writes:.2f} |
| Kinesis records written | {m.kinesis_records:.2f} |
| SQS messages sent | {m.sqs_messages:.2f} |
| share forwarded by consent | {m.forwarded:.0%} |

The simulated shop is young (almost every person new), so these are upper
bounds: returning customers write less (identity and consent write only what
changes). Profile items stay under 1 KB (docs/benchmarks.md, Segments), so a
write is one unit.

## Assumptions (not measurable on moto)

| function | memory | duration |
|---|---|---|
{assumptions}

Stream consumers are invoked once per shard per second (the batching window)
until a batch of 200 fills. Shards grow when a stream passes 70 % of 1,000
records/s per shard. SQS: three requests per 10 messages (batched send,
receive, delete).
CloudWatch Logs: about 400 bytes per invocation (Powertools' structured lines).
Not included: data transfer out to the journey platforms, X-Ray traces beyond the
free tier, and the CloudWatch dashboard ($3) and alarms ($0.10 each).
"""


def main(argv: list[str] | None = None) -> int:
    args = pipeline_arguments(__doc__, argv)
    results = quietly(lambda: measure(args.customers))
    text = document(command_line("cost.py", argv), Measured.from_pipeline(results), args.customers)
    print(text)
    if args.write:
        (ROOT / "docs" / "cost.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
