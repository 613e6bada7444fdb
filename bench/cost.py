"""Monthly AWS cost of a deployed Beacon at 10, 100 and 1,000 events/s.

    python bench/pipeline.py --write ...   # the load test; saves .build/measured.json
    python bench/cost.py [--measured .build/measured.json] [--write]

Everything per event comes from the load test (`bench/pipeline.py`: the local
stack under journeys and a burst of new visitors, all six functions metered,
`bench/meter.py`): DynamoDB, Kinesis and SQS units per event, and each
function's work per record — its own time, measured in-process, plus its AWS
calls counted by kind, each priced at a documented in-region latency
(`AWS_CALL_MS`; moto's latencies say nothing about AWS's). Prices are AWS's
published on-demand prices for us-east-1 (arm64 Lambda, DynamoDB on-demand,
Kinesis provisioned, HTTP API, Application Load Balancer).
`--write` rewrites docs/cost.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import ROOT, command_line
from bench.pipeline import MEASURED

SECONDS_PER_MONTH = 730 * 3600
RATES = (10, 100, 1000)
BATCHED_EVENTS_PER_REQUEST = 100  # Segment's /v1/batch and the server libraries

# --- published prices (us-east-1) ---------------------------------------------------
HTTP_API_PER_MILLION = 1.00  # first 300 M requests a month
ALB_HOUR = 0.0225
ALB_LCU_HOUR = 0.008
# An LCU: 25 new connections/s, 3,000 active connections, 1 GB/h processed or 1,000 rule
# evaluations/s, whichever is highest. Beacon's requests are small (~1 KB); browsers
# keep connections alive, so assume one new connection per 10 requests.
ALB_REQUESTS_PER_LCU = 25 * 10
LAMBDA_PER_MILLION_REQUESTS = 0.20
LAMBDA_ARM_PER_GB_S = 0.0000133334
DYNAMO_WRITE_PER_MILLION = 0.625  # on-demand write request units
DYNAMO_READ_PER_MILLION = 0.125  # on-demand read request units (strongly consistent: 1 per 4 KB)
DYNAMO_STORAGE_PER_GB = 0.25
DYNAMO_WCU_HOUR = 0.00065  # provisioned capacity (`-c beacon:tableCapacity=provisioned`)
DYNAMO_RCU_HOUR = 0.00013
# Auto scaling's target utilization and floor (infra/constructs/tables.py), and the
# tables plus indexes each floor applies to.
TARGET_UTILIZATION = 0.70
MINIMUM_UNITS = 5
SCALED_TABLES_AND_INDEXES = 6
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
    dynamodb_writes: float  # write units (a transactional write is two)
    kinesis_records: float
    sqs_messages: float
    forwarded: float  # share consent forwarded
    changes: float  # profile-changes records (segments' announcements)
    ms_per_record: dict[str, float]  # billed Lambda ms per record handled, by function
    ingest_ms_per_request: float  # its AWS calls (a PutRecords per request)
    ingest_ms_per_event: float  # its own work: parsing, limits, canonical events
    command: str

    @classmethod
    def from_saved(cls, r: dict[str, Any]) -> Measured:
        sent, c = r["sent"], r["counts"]
        return cls(
            dynamodb_reads=c["dynamodb_read"] / sent,
            dynamodb_writes=c["dynamodb_write"] / sent,
            kinesis_records=c["kinesis_records"] / sent,
            sqs_messages=c["sqs_messages"] / sent,
            forwarded=r["forwarded"] / sent,
            changes=max(c["kinesis_records"] / sent - 1 - 2 * r["forwarded"] / sent, 0.0),
            ms_per_record={
                name: billed_ms(f) / max(f["records"], 1) for name, f in r["functions"].items()
            },
            ingest_ms_per_request=(
                (billed_ms(r["functions"]["ingest"]) - 1000 * r["functions"]["ingest"]["own_s"])
                / max(r["functions"]["ingest"]["invocations"], 1)
            ),
            ingest_ms_per_event=1000 * r["functions"]["ingest"]["own_s"] / sent,
            command=r["command"],
        )


# --- Lambda work: measured own time + AWS calls at AWS's latencies -------------------

# Typical in-region latency of each call a handler makes (p50, warm connection):
# DynamoDB's single-item operations answer in single-digit ms, its batch operations
# and transactions in low tens; Kinesis PutRecords and S3 writes in tens of ms.
AWS_CALL_MS = {
    "dynamodb.GetItem": 5, "dynamodb.PutItem": 6, "dynamodb.UpdateItem": 6,
    "dynamodb.DeleteItem": 6, "dynamodb.Query": 8, "dynamodb.BatchGetItem": 10,
    "dynamodb.BatchWriteItem": 12, "dynamodb.TransactWriteItems": 15,
    "kinesis.PutRecords": 20, "sqs.SendMessageBatch": 12, "sqs.GetQueueUrl": 10,
    "s3.PutObject": 30, "secretsmanager.GetSecretValue": 30,
}  # fmt: skip
UNLISTED_CALL_MS = 20


def billed_ms(work: dict[str, Any]) -> float:
    """A function's measured own time plus its AWS calls at AWS's latencies, in ms.

    Writes a handler runs side by side (dal/dynamo.side_by_side) are priced as if
    sequential: an upper bound."""
    calls: float = sum(
        AWS_CALL_MS.get(call, UNLISTED_CALL_MS) * n for call, n in work["calls"].items()
    )
    return float(work["own_s"]) * 1000 + calls


@dataclass(frozen=True)
class Fn:
    memory_mb: int
    per: str  # what one invocation handles


FUNCTIONS = {
    "ingest": Fn(512, "request"),
    "consent": Fn(512, "batch"),
    "identity": Fn(1024, "batch"),
    "segments": Fn(1024, "batch"),
    "scoring": Fn(1769, "batch"),
    "webhook": Fn(512, "SQS batch of 10"),
}
STREAM_SHARDS = {"events": 2, "consented": 2, "resolved": 2, "profile-changes": 2}
BATCH_SIZE = 200
POLLS_PER_SHARD_S = 1.0  # Lambda reads an idle shard about once a second


def shards_needed(stream: str, records_per_s: float) -> int:
    return max(STREAM_SHARDS[stream], math.ceil(records_per_s / (0.7 * SHARD_RECORDS_PER_S)))


def stream_invocations_per_s(records_per_s: float, shards: int) -> float:
    """A consumer is invoked at most once per shard per poll, or per full batch."""
    return min(
        max(records_per_s / BATCH_SIZE, shards * POLLS_PER_SHARD_S),
        max(records_per_s, records_per_s / BATCH_SIZE),
    )


def front_door(requests_per_s: float, door: str) -> float:
    """Monthly cost of what takes the HTTP requests in front of the ingest function."""
    if door == "HTTP API":
        return requests_per_s * SECONDS_PER_MONTH / 1e6 * HTTP_API_PER_MILLION
    if door == "Application Load Balancer":
        lcus = max(requests_per_s / ALB_REQUESTS_PER_LCU, 0.0)
        return 730 * (ALB_HOUR + lcus * ALB_LCU_HOUR)
    if door == "Lambda function URL":
        return 0.0  # billed as the function's invocations only
    raise ValueError(door)


def alb_crossover_requests_per_s() -> float:
    """Where an ALB starts to cost less than the HTTP API."""
    per_request_api = SECONDS_PER_MONTH / 1e6 * HTTP_API_PER_MILLION
    per_request_alb = 730 * ALB_LCU_HOUR / ALB_REQUESTS_PER_LCU
    return 730 * ALB_HOUR / (per_request_api - per_request_alb)


def dynamodb_requests(rate: float, m: Measured, tables: str) -> float:
    """A month of the pipeline's reads and writes, on-demand or provisioned.

    Provisioned capacity follows the average rate at the target utilization, never
    below the floor of every table and index (a steady rate: a daily cycle needs
    the capacity of its busy hours, which scaling follows within minutes)."""
    if tables == "on-demand":
        events = rate * SECONDS_PER_MONTH
        reads, writes = m.dynamodb_reads * events, m.dynamodb_writes * events
        return reads / 1e6 * DYNAMO_READ_PER_MILLION + writes / 1e6 * DYNAMO_WRITE_PER_MILLION
    floor = MINIMUM_UNITS * SCALED_TABLES_AND_INDEXES
    wcu = max(m.dynamodb_writes * rate / TARGET_UTILIZATION, floor)
    rcu = max(m.dynamodb_reads * rate / TARGET_UTILIZATION, floor)
    return 730 * (wcu * DYNAMO_WCU_HOUR + rcu * DYNAMO_RCU_HOUR)


def monthly(
    rate: float,
    m: Measured,
    events_per_request: int = 1,
    door: str = "HTTP API",
    tables: str = "on-demand",
) -> dict[str, float]:
    events = rate * SECONDS_PER_MONTH
    requests_per_s = rate / events_per_request
    cost: dict[str, float] = {}
    cost[f"front door ({door})"] = front_door(requests_per_s, door)
    cost[f"DynamoDB requests ({tables})"] = dynamodb_requests(rate, m, tables)
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
        "ingest": requests_per_s,
        "consent": stream_invocations_per_s(records["events"], shards["events"]),
        "identity": stream_invocations_per_s(records["consented"], shards["consented"]),
        "segments": stream_invocations_per_s(records["resolved"], shards["resolved"]),
        "scoring": stream_invocations_per_s(records["profile-changes"], shards["profile-changes"]),
        "webhook": rate * m.sqs_messages / 10,
    }
    handled = {  # records each stream or queue consumer handles per second
        "consent": records["events"],
        "identity": records["consented"],
        "segments": records["resolved"],
        "scoring": records["profile-changes"],
        "webhook": rate * m.sqs_messages,
    }
    lambda_cost = 0.0
    for name, per_s in invocations.items():
        fn = FUNCTIONS[name]
        if name == "ingest":  # its calls are per request, its own work per event
            ms_per_s = requests_per_s * m.ingest_ms_per_request + rate * m.ingest_ms_per_event
        else:
            ms_per_s = handled[name] * m.ms_per_record.get(name, 0.0)
        seconds = SECONDS_PER_MONTH * ms_per_s / 1000
        gb_s = seconds * fn.memory_mb / 1024
        count = per_s * SECONDS_PER_MONTH
        lambda_cost += count / 1e6 * LAMBDA_PER_MILLION_REQUESTS + gb_s * LAMBDA_ARM_PER_GB_S
    cost["Lambda"] = lambda_cost
    # Batched: SendMessageBatch, ReceiveMessage and DeleteMessageBatch take 10 messages.
    sqs_requests = m.sqs_messages * events * 3 / 10
    cost["SQS"] = sqs_requests / 1e6 * SQS_PER_MILLION
    log_gb = sum(invocations.values()) * SECONDS_PER_MONTH * 400 / 1e9  # ~400 B per invocation
    cost["CloudWatch Logs"] = log_gb * LOGS_PER_GB
    cost["Secrets Manager, KMS"] = 9 * SECRET_PER_MONTH + 1.0
    return cost


def _table(tables: dict[int, dict[str, float]]) -> tuple[str, dict[int, float]]:
    items = list(tables[RATES[0]])
    header = "| | " + " | ".join(f"{r:,} events/s" for r in RATES) + " |"
    rows = [header, "|---|" + "---:|" * len(RATES)]
    for item in items:
        rows.append(f"| {item} | " + " | ".join(f"${tables[r][item]:,.0f}" for r in RATES) + " |")
    totals = {r: sum(tables[r].values()) for r in RATES}
    rows.append(
        "| **total per month** | " + " | ".join(f"**${totals[r]:,.0f}**" for r in RATES) + " |"
    )
    return "\n".join(rows), totals


def per_million(totals: dict[int, float]) -> str:
    return " / ".join(f"${totals[r] / (r * SECONDS_PER_MONTH / 1e6):.2f}" for r in RATES)


SCENARIOS = (
    ("pixel traffic: one event per request, HTTP API", 1, "HTTP API", "on-demand"),
    (
        "pixel traffic behind an Application Load Balancer",
        1,
        "Application Load Balancer",
        "on-demand",
    ),
    (
        "pixel traffic behind an Application Load Balancer, provisioned tables",
        1,
        "Application Load Balancer",
        "provisioned",
    ),
    (
        f"batched SDK traffic: {BATCHED_EVENTS_PER_REQUEST} events per request, HTTP API",
        BATCHED_EVENTS_PER_REQUEST,
        "HTTP API",
        "on-demand",
    ),
    (
        f"batched SDK traffic: {BATCHED_EVENTS_PER_REQUEST} events per request, HTTP API, "
        "provisioned tables",
        BATCHED_EVENTS_PER_REQUEST,
        "HTTP API",
        "provisioned",
    ),
)


def document(command: str, m: Measured) -> str:
    sections = []
    summary = []
    for title, size, door, tables in SCENARIOS:
        rows, totals = _table({rate: monthly(rate, m, size, door, tables) for rate in RATES})
        summary.append(f"| {title} | {per_million(totals)} |")
        sections.append(f"### {title[0].upper()}{title[1:]}\n\n{rows}\n")
    durations = "\n".join(
        f"| {name} | {fn.memory_mb} MB | {m.ms_per_record.get(name, 0):.1f} ms per record |"
        for name, fn in FUNCTIONS.items()
        if name != "ingest"
    )
    ingest = (
        f"| ingest | {FUNCTIONS['ingest'].memory_mb} MB | {m.ingest_ms_per_request:.1f} ms per "
        f"request (its PutRecords) + {m.ingest_ms_per_event:.2f} ms per event |"
    )
    crossover = alb_crossover_requests_per_s()
    at_1000 = {
        title: sum(monthly(1000, m, size, door, tables).values()) / (1000 * SECONDS_PER_MONTH / 1e6)
        for title, size, door, tables in SCENARIOS
    }
    pixel = min(v for t, v in at_1000.items() if t.startswith("pixel"))
    batched = min(v for t, v in at_1000.items() if t.startswith("batched"))
    idle = monthly(0, m)
    floor = sum(idle.values())
    per_shard = KINESIS_SHARD_HOUR * 730
    return f"""# What Beacon costs to run

`{command}` — monthly cost in us-east-1 at a steady rate, published prices
(DynamoDB on-demand unless the row says provisioned), from the load test
`{m.command}`.

| per million events, at {" / ".join(f"{r:,}" for r in RATES)} events/s | |
|---|---:|
{chr(10).join(summary)}

Before this measurement (the previous page, assumed Lambda durations, the young
40-shopper shop): $10.28 / $4.15 / $3.55 per million with the HTTP API,
2.62 DynamoDB write units and 1.43 items read per event.

{chr(10).join(sections)}

## Against the goals

| goal (issue 21) | now |
|---|---:|
| pixel traffic at 1,000 events/s: ≤ $0.70 per million | ${pixel:.2f} (the cheaper door) |
| batched SDK traffic at 1,000 events/s: ≤ $0.30 per million | ${batched:.2f} |
| idle: ≤ $50 a month | ${floor:.0f} |

Not met. The cheapest rows use provisioned tables (`cdk deploy -c
beacon:tableCapacity=provisioned`: auto scaling on 70 % utilization between 5 and
4,000 units per table and index), which bill capacity by the hour instead of each
request: about 40 % of on-demand's price for a steady load, plus a floor of ${
        730 * MINIMUM_UNITS * SCALED_TABLES_AND_INDEXES * (DYNAMO_WCU_HOUR + DYNAMO_RCU_HOUR):.0f} a
month while idle; for spiky or unknown traffic keep on-demand (a burst faster
than scaling is throttled, and the steps retry it). What is left, largest first:
DynamoDB writes (the load test's mix is half new visitors; each new anonymous
visitor still costs an identity node and profile item, and each profile a batch
changes one write — see docs/benchmarks.md, The local stack under load, for what
would remove them); Lambda time (measured here on a contended machine, priced
pessimistically; for pixel traffic the ingest function's invocations alone are
$0.20 per million); the idle floor is the eight provisioned shards
(${per_shard:.0f} a month each): `cdk deploy -c beacon:shards=1` halves it
(${floor - 4 * per_shard:.0f} a month idle; each stream then takes up to 1,000
events/s), on-demand streams cost more when idle ($0.04 per stream-hour).

## The front door

API Gateway's HTTP API charges $1.00 per million requests; at 1,000 pixel requests a
second that is $2,628 a month, most of the bill. An Application Load Balancer in
front of the same ingest function costs ${730 * ALB_HOUR:.0f} a month plus LCUs (about
{ALB_REQUESTS_PER_LCU} small kept-alive requests a second each): it is cheaper above
**{crossover:.1f} requests/s** (about {crossover * SECONDS_PER_MONTH / 1e6:.0f} million requests a
month). A Lambda function URL costs nothing beyond the invocations but has no
throttling or custom domain of its own (CloudFront in front adds its own price).
Batched SDK traffic divides the door's cost by the batch size whichever door.
Choosing the door in `beacon.yaml` is not built yet: the stack deploys the HTTP API.

## Measured units per event

| unit | per event sent |
|---|---:|
| DynamoDB items read | {m.dynamodb_reads:.2f} |
| DynamoDB write units (a transactional write is two) | {m.dynamodb_writes:.2f} |
| Kinesis records written | {m.kinesis_records:.2f} |
| SQS messages sent | {m.sqs_messages:.2f} |
| share forwarded by consent | {m.forwarded:.0%} |

## Lambda durations: measured work, AWS latencies

Each function's own time (wall time in its handler less its wait on moto, measured
in-process on this machine) plus its AWS calls, counted by kind and priced at the
in-region latencies in `AWS_CALL_MS`, per record it handled:

| function | memory | billed time |
|---|---|---|
{ingest}
{durations}

The own time was measured on a shared 2-core x86 machine under load, so it is
high; arm64 Lambda at these memory sizes is no slower per core. Memory sizes are
still the wiring table's, not chosen by measurement. Stream consumers are invoked
at most once per shard per second while idle, and once per full batch of 200 under
load. Shards grow when a stream passes 70 % of 1,000 records/s per shard. SQS: three
requests per 10 messages (batched send, receive, delete). CloudWatch Logs: about
400 bytes per invocation, Powertools' metrics line (Lambda's START/END/REPORT lines,
another 300 bytes, are off: the functions log the platform's lines at WARN only,
and their own at INFO; Powertools' debug sampling cannot work under Lambda's log
levels, so it is not used). Not included: data transfer out to the journey
platforms, X-Ray traces beyond the free tier, the CloudWatch dashboard ($3) and
alarms ($0.10 each).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--measured",
        type=Path,
        default=MEASURED,
        help="bench/pipeline.py's measurements (its --save; --write saves them here)",
    )
    parser.add_argument("--write", action="store_true", help="rewrite docs/cost.md")
    args = parser.parse_args(argv)
    measured = Measured.from_saved(json.loads(args.measured.read_text(encoding="utf-8")))
    text = document(command_line("cost.py", argv), measured)
    print(text)
    if args.write:
        path = ROOT / "docs" / "cost.md"
        path.write_text(text + kept_sections(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


# Sections other benchmarks write (bench/archive.py): kept when this page is rewritten.
KEPT_FROM = "\n## The event archive"


def kept_sections(current: str) -> str:
    at = current.find(KEPT_FROM)
    return current[at:] if at >= 0 else ""


if __name__ == "__main__":
    sys.exit(main())
