"""What the `bench/` scripts share: a function's environment on moto, its Lambda
context, a timed loop, the Kinesis stream written and read back, and their own
section of docs/benchmarks.md.

Imports of `functions.*` (and of `infra.local.pollers`, which imports them) stay
inside the functions here: Powertools reads its switches when those modules are
first imported, so they must come after `function_under_test`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from infra.local.invoke import LocalContext
from infra.topology import TOPOLOGY, Function, ResourceNames

if TYPE_CHECKING:
    from functions.shared.events import CanonicalEvent

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "beacon.yaml"
DOC = ROOT / "docs" / "benchmarks.md"
REGION = "us-east-1"
ACCOUNT = "000000000000"
DOC_INTRO = """# Benchmarks

Each script in `bench/` measures one part of Beacon and, run with `--write`,
rewrites its own section of this page with the figures, the exact command and
the date. `make bench` runs every `bench/` script.

The scripts run in one process on moto, so absolute numbers describe this
machine and moto, not AWS. What carries over is relative: throughput as a
ratio of a baseline measured in the same process, and calls to AWS per event.
"""

T = TypeVar("T")


# --- the function under test ---------------------------------------------------


def function_under_test(name: str) -> tuple[Function, ResourceNames]:
    """The wiring table's function `name` and its resources' names, with this process's
    environment set as that function's Lambda environment on moto.

    That is the resource names, the config file, moto's fake credentials, Powertools
    quiet (no metrics, no tracing, errors only), and no endpoint override: `mock_aws`
    intercepts, so never a real endpoint.
    """
    function, names = TOPOLOGY.function(name), ResourceNames()
    os.environ.update(TOPOLOGY.environment_for(function, names))
    os.environ.update(
        BEACON_CONFIG_FILE=str(CONFIG),
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # moto's fake credentials
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        POWERTOOLS_SERVICE_NAME=function.name,
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    return function, names


def create_resources(function: Function, names: ResourceNames) -> None:
    """Create, inside `mock_aws`, the tables, streams and buckets `function`'s wiring-table
    row reads and writes (its source streams and on-failure buckets included)."""
    import boto3

    from infra.local.aws import table_definition

    sources = function.kinesis_sources
    tables = dict.fromkeys((*function.reads_tables, *function.writes_tables))
    streams = dict.fromkeys((*(s.stream for s in sources), *function.writes_streams))
    buckets = dict.fromkeys((*(s.on_failure_bucket for s in sources), *function.writes_buckets))
    dynamodb, kinesis, s3 = boto3.client("dynamodb"), boto3.client("kinesis"), boto3.client("s3")
    for table in tables:
        dynamodb.create_table(**table_definition(TOPOLOGY.table(table), names.table(table)))
    for stream in map(TOPOLOGY.stream, streams):
        kinesis.create_stream(StreamName=names.stream(stream.name), ShardCount=stream.shards)
    for bucket in buckets:
        s3.create_bucket(Bucket=names.bucket(bucket))


def lambda_context(function: Function) -> LocalContext:
    """A fresh Lambda context object for one invocation of `function`."""
    return LocalContext(
        function_name=function.name,
        memory_limit_in_mb=function.memory_mb,
        timeout_s=function.timeout_s,
    )


# --- measuring -----------------------------------------------------------------


def run_for(seconds: float, step: Callable[[], int]) -> tuple[int, float]:
    """(units, elapsed): `step`, which returns the units it handled, called again and
    again for about `seconds`."""
    units, start = 0, time.perf_counter()
    while True:
        units += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return units, elapsed


def quietly(measure: Callable[[], T]) -> T:
    """`measure()` with stdout discarded and Powertools' empty-flush warning ignored.

    Powertools prints metric blobs on stdout (they flush every 100 values even when
    disabled) and warns about empty flushes; the tables are the output here.
    """
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with Path(os.devnull).open("w") as quiet, redirect_stdout(quiet):
        return measure()


def scan_table(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of `table` in DynamoDB's wire format (every page): for reading back."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]


@dataclass
class Delivery:
    invocations: int = 0
    retried: bool = False  # the first invocation reported failures
    exhausted: int = 0  # records still failing after the last retry


def deliver_like_lambda(
    handler: Callable[[dict[str, Any], Any], Any], event: dict[str, Any], function: Function
) -> Delivery:
    """One Kinesis batch with Lambda's retries: resumed from the first reported failure,
    up to the function's `max_retry_attempts`."""
    records = event["Records"]
    delivery = Delivery()
    for attempt in range(1 + function.kinesis_sources[0].max_retry_attempts):
        delivery.invocations += 1
        answer = handler({"Records": records}, lambda_context(function))
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        if not failed:
            return delivery
        delivery.retried |= attempt == 0
        first = min(i for i, r in enumerate(records) if r["kinesis"]["sequenceNumber"] in failed)
        records = records[first:]
    delivery.exhausted = len(records)
    return delivery


# --- the stream ------------------------------------------------------------------


def stream_arn(stream: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}"


def put_events(kinesis: Any, stream: str, events: Sequence[CanonicalEvent]) -> None:
    """Every event onto `stream` in order, by its partition key, 500 per PutRecords."""
    for start in range(0, len(events), 500):
        kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": e.to_json().encode(), "PartitionKey": e.partition_key}
                for e in events[start : start + 500]
            ],
        )


def shard_pages(
    kinesis: Any, stream: str, shard_id: str, limit: int
) -> Iterator[list[dict[str, Any]]]:
    """One shard's GetRecords answers of at most `limit` records, oldest first."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    while iterator:
        answer = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        if not answer["Records"]:
            return
        yield answer["Records"]
        iterator = answer.get("NextShardIterator")


def shard_ids(kinesis: Any, stream: str) -> list[str]:
    return [shard["ShardId"] for shard in kinesis.list_shards(StreamName=stream)["Shards"]]


def kinesis_batches(kinesis: Any, stream: str, batch_size: int) -> list[list[dict[str, Any]]]:
    """Per shard (in shard order), the Kinesis events Lambda would deliver for its
    records: batches of at most `batch_size`, oldest first."""
    from infra.local.pollers import kinesis_lambda_event

    arn = stream_arn(stream)
    return [
        [
            kinesis_lambda_event(records, shard, arn, REGION)
            for records in shard_pages(kinesis, stream, shard, batch_size)
        ]
        for shard in shard_ids(kinesis, stream)
    ]


def read_stream(kinesis: Any, stream: str) -> list[bytes]:
    """The data of every record on `stream`, shard by shard, each in order."""
    return [
        r["Data"]
        for shard in shard_ids(kinesis, stream)
        for records in shard_pages(kinesis, stream, shard, 10_000)
        for r in records
    ]


# --- docs/benchmarks.md ----------------------------------------------------------


def timed_arguments(
    doc: str | None, argv: list[str] | None, seconds: float = 5.0
) -> argparse.Namespace:
    """`--seconds` (time per measurement) and `--write`, the CLI of a timed bench."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=seconds, help="time per measurement")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    return parser.parse_args(argv)


def command_line(script: str, argv: list[str] | None) -> str:
    """How the script was run, for the section: `python bench/<script>` and its flags."""
    return " ".join([f"python bench/{script}", *(sys.argv[1:] if argv is None else argv)])


def section_head(title: str, command: str, carries_over: str = "ratios and calls/event") -> str:
    """A section's title and the line saying how, when and where it was measured."""
    cores = os.cpu_count() or 1
    return f"""{title}

`{command}` — {date.today().isoformat()}, Python {platform.python_version()}.
Machine: {cores} cores; moto in-process, so absolute numbers are not AWS numbers;
{carries_over} are what carry over.
"""


def prose(*paragraphs: str) -> str:
    """Paragraphs re-flowed to 79 columns, a blank line between them."""
    return "\n\n".join(
        textwrap.fill(" ".join(p.split()), 79, break_long_words=False, break_on_hyphens=False)
        for p in paragraphs
    )


def report(tables: Sequence[str], write: bool, title: str, section: Callable[[], str]) -> int:
    """Print a benchmark's tables, a blank line between them; with --write, replace its
    `title` section of docs/benchmarks.md by `section()`. Returns the exit status."""
    print("\n\n".join(tables))
    if write:
        write_section(title, section())
    return 0


def write_section(title: str, text: str) -> None:
    """Replace the `title` section of docs/benchmarks.md with `text` (or append it)."""
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else DOC_INTRO
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
    print(f"\nwrote the {title!r} section of {DOC.relative_to(ROOT)}")
