"""Bytes per event in the archive, and what the archive costs per million events.

Turns `--customers` simulated shoppers' `--days` of journeys (simulator/journeys.py)
into the records the identity step writes to `resolved`, measures them as JSON
(what Firehose ingests) and as the archive's Parquet files (one file per day, as a
deployed buffer of 128 MiB holds a day of a small shop), and prices both with the
us-east-1 list prices below. Run: `python bench/archive.py [--write]` (`--write`
rewrites the "The event archive" section of docs/cost.md, which bench/cost.py keeps).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from functions.shared.archive import archive_row, by_partition
from functions.shared.archive_parquet import encode
from functions.shared.events import CanonicalEvent
from functions.shared.resolved import ResolvedEvent, record_json
from simulator.journeys import generate_journeys

# us-east-1 list prices (2026): Firehose ingestion from a Kinesis stream, per GB,
# billed in 5 KB steps per record; format conversion and dynamic partitioning per GB
# ingested; partitioning's objects delivered; S3 Standard storage and PUTs; Athena.
FIREHOSE_PER_GB = 0.029
FIREHOSE_STEP_BYTES = 5 * 1024
CONVERSION_PER_GB = 0.018
PARTITIONING_PER_GB = 0.020
PARTITIONING_PER_1000_OBJECTS = 0.005
S3_PER_GB_MONTH = 0.023
ATHENA_PER_TB = 5.0
GB = 1024**3
COST_DOC = Path(__file__).resolve().parents[1] / "docs" / "cost.md"
HEADING = "\n## The event archive\n"

SECTION = """
## The event archive

`{command}` — {events:,} simulated
events turned into the records the identity step writes to `resolved`, measured
as JSON (what Firehose ingests) and as the archive's Parquet (Snappy; one file
per day, so small files whose footers are counted in), priced at us-east-1 list
prices (in the script):

| | per event | per million events |
|---|---:|---:|
| resolved record (JSON, what Firehose reads) | {json_per_event:.0f} bytes | {ingested_gb:.2f} GB |
| archived row (Parquet) | {parquet_per_event:.0f} bytes | {stored_gb:.2f} GB |
| Firehose ingestion, $0.029/GB in 5 KB steps per record | | ${firehose:.3f} |
| Parquet conversion, $0.018/GB | | ${conversion:.3f} |
| dynamic partitioning, $0.020/GB + $0.005 per 1,000 objects | | ${partitioning:.3f} |
| **to land a million events** | | **${total:.3f}** |
| S3 Standard, each month they are kept | | ${storage_month:.3f} |
| an Athena query scanning all of them ($5/TB) | | ${scan_all:.4f} |

Firehose bills each record as at least 5 KB, so the ingestion line is the same
for any event up to 5 KB: real events, with a browser's user agent and page
context, are 1-2 KB and cost the same per million; it is the archive's largest
cost. The transform Lambda (256 MB, a few thousand records per invocation) adds
under $0.001 per million; reading `resolved` is Firehose's own (no enhanced
fan-out, no extra shard). Two years of a 100 events/s shop (6.3 billion events)
is about {two_years_gb:,.0f} GB of Parquet: about ${two_years_month:,.0f} a month of S3 at
the end of the second year. The Athena workgroup caps a query at 10 GiB scanned
($0.05).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="rewrite its docs/cost.md section")
    args = parser.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    journeys = generate_journeys(args.customers, args.days, args.seed, start)
    json_bytes = 0
    rows = []
    for n, journey in enumerate(journeys):
        for event in journey.events:
            at = datetime.fromisoformat(event["timestamp"])
            canonical = CanonicalEvent.model_validate(
                {**event, "receivedAt": at, "source": {"name": "web", "protocol": "segment"}}
            )
            record = ResolvedEvent(profile_id=f"prof-{n:06d}", event=canonical)
            json_bytes += len(record_json(record))
            rows.append(archive_row(record))
    events = len(rows)
    parquet_bytes = 0
    files = 0
    per_table: dict[str, int] = defaultdict(int)
    for (table, _day), part in by_partition(rows).items():
        size = len(encode(table, part))
        parquet_bytes += size
        per_table[table] += size
        files += 1
    json_per_event = json_bytes / events
    parquet_per_event = parquet_bytes / events
    million = 1_000_000
    ingested_gb = million * json_per_event / GB
    billed_gb = million * max(json_per_event, FIREHOSE_STEP_BYTES) / GB
    stored_gb = million * parquet_per_event / GB
    # A deployed buffer of 128 MiB of JSON becomes one object per partition.
    objects = max(1.0, million * json_per_event / (128 * 1024**2))
    firehose = billed_gb * FIREHOSE_PER_GB
    conversion = ingested_gb * CONVERSION_PER_GB
    partitioning = (
        ingested_gb * PARTITIONING_PER_GB + objects / 1000 * PARTITIONING_PER_1000_OBJECTS
    )
    storage_month = stored_gb * S3_PER_GB_MONTH
    scan_all = stored_gb / 1024 * ATHENA_PER_TB
    command = (
        f"python bench/archive.py --customers {args.customers} --days {args.days} "
        f"--seed {args.seed}"
    )
    two_years_gb = 100 * 86400 * 730 * parquet_per_event / GB
    section = SECTION.format(
        command=command,
        events=events,
        json_per_event=json_per_event,
        parquet_per_event=parquet_per_event,
        ingested_gb=ingested_gb,
        stored_gb=stored_gb,
        firehose=firehose,
        conversion=conversion,
        partitioning=partitioning,
        total=firehose + conversion + partitioning,
        storage_month=storage_month,
        scan_all=scan_all,
        two_years_gb=two_years_gb,
        two_years_month=two_years_gb * S3_PER_GB_MONTH,
    )
    print(f"{files} files (one per table and day)")
    print(section)
    if args.write:
        current = COST_DOC.read_text(encoding="utf-8")
        found = current.find(HEADING)
        kept = current[:found] if found >= 0 else current.rstrip("\n") + "\n"
        COST_DOC.write_text(kept + section, encoding="utf-8")


if __name__ == "__main__":
    main()
