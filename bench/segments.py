"""Segments step cost through the real Lambda handler, on moto in-process.

    python bench/segments.py [--customers 300] [--days 60] [--seconds 3] [--write]

The stream: `simulator/journeys.py`'s seeded shoppers over the last `--days` days,
as the identity step would hand them on — each event a `resolved` record keyed
by its profile id, with the consent stamp granting personalization. For one
shopper in three, the events before their first log-in belong to an anonymous
profile that a `profile.merged` record folds into their customer profile at
log-in, as identity does when a device is recognised. The records go onto the
`resolved` stream on moto, are read back per shard into Kinesis batches of the
segments row's batch size, and are delivered to
`functions.segments.handler.lambda_handler` (shards taking turns), with Lambda's
retry from the first failed record. botocore hooks on the handler's DynamoDB
client count profile items read and written.

The lower bound for the profile table is one read and one write per distinct
profile per batch; the figures are reported as a ratio to it. The same batches
are then replayed (nothing should be written or announced). Item sizes come from
the profiles table afterwards (DynamoDB's size rule: names plus values). CEL
speed is the compiled conditions evaluated on the final profiles in this process.
`--write` replaces the `## Segments` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import (
    CONFIG,
    command_line,
    create_resources,
    deliver_like_lambda,
    function_under_test,
    kinesis_batches,
    lambda_context,
    prose,
    quietly,
    read_stream,
    report,
    scan_table,
    section_head,
)

SECTION = "## Segments"
SEED = 11
MERGED_SHARE = 3  # one shopper in this many arrives as an anonymous profile first


@dataclass
class Pass:
    events: int = 0
    batches: int = 0
    invocations: int = 0
    lower_bound: int = 0  # distinct profiles per batch, summed
    profile_reads: int = 0
    profile_writes: int = 0
    size_counter_writes: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    changes: int = 0
    seconds: float = 0.0


@dataclass
class Results:
    customers: int
    days: int
    records: int
    merges: int
    first: Pass
    replay: Pass
    item_kb: list[float]
    sizes: dict[str, int]
    sweep_queries: int
    cel_per_s: float
    profiles_per_s: float
    programs: int


def resolved_records(customers: int, days: int, now: datetime) -> tuple[list[Any], int]:
    """The simulated `resolved` stream: ResolvedEvent and ProfileMerged records."""
    from functions.shared.events import CanonicalEvent
    from functions.shared.resolved import ProfileMerged, ResolvedEvent
    from simulator.journeys import generate_journeys

    stamp = {"granted": ["necessary", "analytics", "personalization"], "denied": []}
    records: list[tuple[datetime, Any]] = []
    merges = 0
    for n, journey in enumerate(
        generate_journeys(customers, days, SEED, now - timedelta(days=days))
    ):
        customer = f"p-{journey.user_id}"
        anonymous = f"p-anon-{journey.anonymous_id}" if n % MERGED_SHARE == 0 else None
        logged_in = False
        for fields in journey.events:
            event = CanonicalEvent.model_validate(
                {
                    **fields,
                    "source": {"name": "web", "protocol": "segment"},
                    "receivedAt": fields["timestamp"],
                    "consent": stamp,
                }
            )
            if anonymous and not logged_in and event.user_id is not None:
                logged_in = True
                merges += 1
                merge = ProfileMerged(
                    merge_id=f"merge-{anonymous}",
                    survivor=customer,
                    loser=anonymous,
                    at=event.timestamp,
                    rule="deterministic",
                )
                records.append((event.timestamp, merge))
            target = anonymous if anonymous and not logged_in else customer
            records.append((event.timestamp, ResolvedEvent(profile_id=target, event=event)))
    records.sort(key=lambda pair: pair[0])
    return [r for _, r in records], merges


def measure(customers: int, days: int, seconds: float) -> Results:
    import boto3
    from moto import mock_aws

    function, names = function_under_test("segments")
    source = function.kinesis_sources[0]

    from functions.profiles.evaluate import CompiledSegments, activation
    from functions.segments import handler
    from functions.shared.config import load_config
    from functions.shared.dal import clients
    from functions.shared.dal.dynamo import from_item
    from functions.shared.dal.profiles_store import stored_from_item
    from functions.shared.resolved import ResolvedEvent, record_json
    from infra.local.schedules import scheduled_event

    config = load_config(CONFIG).segments
    now = datetime.now(UTC)
    records, merges = resolved_records(customers, days, now)

    with mock_aws():
        create_resources(function, names)
        dynamodb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
        stream = names.stream(source.stream)
        for start in range(0, len(records), 500):
            chunk = records[start : start + 500]
            kinesis.put_records(
                StreamName=stream,
                Records=[
                    {
                        "Data": record_json(r),
                        "PartitionKey": r.profile_id
                        if isinstance(r, ResolvedEvent)
                        else r.survivor,
                    }
                    for r in chunk
                ],
            )
        per_shard = kinesis_batches(kinesis, stream, source.batch_size)
        batches = [
            s[turn]
            for turn in range(max(len(s) for s in per_shard))
            for s in per_shard
            if turn < len(s)
        ]

        clients.client.cache_clear()
        handler.segments_step.cache_clear()
        calls: Counter[str] = Counter()
        items: Counter[str] = Counter()

        def before(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        def before_write(params: dict[str, Any], model: Any, **_: Any) -> None:
            # Keys asked for, found or not: a missing item costs its read too.
            if model.name == "BatchGetItem":
                asked = sum(len(t["Keys"]) for t in params["RequestItems"].values())
                items["profile_reads"] += asked
            elif model.name == "UpdateItem":
                items["profile_writes"] += 1
            elif model.name == "TransactWriteItems":
                for entry in params["TransactItems"]:
                    key = entry["Update"]["Key"]["pk"]["S"]
                    items["profile_writes" if key.startswith("profile#") else "size_writes"] += 1

        dynamo_client = clients.client("dynamodb")
        dynamo_client.meta.events.register("before-call.dynamodb", before)
        dynamo_client.meta.events.register("before-parameter-build.dynamodb", before_write)
        step = handler.segments_step()
        step.changes.sleep = lambda _s: None  # type: ignore[attr-defined]
        changes_stream = names.stream("profile-changes")

        def one_pass() -> Pass:
            calls.clear()
            items.clear()
            announced = len(read_stream(kinesis, changes_stream))
            result = Pass(batches=len(batches))
            started = time.perf_counter()
            for event in batches:
                rows = event["Records"]
                result.events += len(rows)
                profiles = {r["kinesis"]["partitionKey"] for r in rows}
                result.lower_bound += len(profiles)
                delivery = deliver_like_lambda(handler.lambda_handler, event, function)
                result.invocations += delivery.invocations
            result.seconds = time.perf_counter() - started
            result.calls = Counter(calls)
            result.profile_reads = items["profile_reads"]
            result.profile_writes = items["profile_writes"]
            result.size_counter_writes = items["size_writes"]
            result.changes = len(read_stream(kinesis, changes_stream)) - announced
            return result

        first = one_pass()
        replay = one_pass()

        calls.clear()
        handler.lambda_handler(scheduled_event("segments"), lambda_context(function))
        sweep_queries = calls["Query"]
        assert calls["Scan"] == 0

        raw_items = scan_table(dynamodb, names.table("profiles"))
        profiles = [from_item(i) for i in raw_items]
        live = [
            stored_from_item(str(p["pk"]).removeprefix("profile#"), p)
            for p in profiles
            if str(p["pk"]).startswith("profile#") and "state" in p
        ]
        item_kb = [
            _item_bytes(raw) / 1024
            for raw in raw_items
            if raw["pk"]["S"].startswith("profile#") and "state" in raw
        ]
        sizes = step.profiles.segment_sizes()

    engine = CompiledSegments(config)
    variables = [
        (p.profile_id, activation(p.profile_id, p.state, config, now, scores=p.scores), p.state)
        for p in live
    ]
    evaluations, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for profile_id, context, state in variables:
            evaluations += engine.evaluate(profile_id, context, state.memberships, now).evaluations
    cel_per_s = evaluations / (time.perf_counter() - started)
    profiles_done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for p in live:
            engine.evaluate_profile(p.profile_id, p.state, now, scores=p.scores)
            profiles_done += 1
    profiles_per_s = profiles_done / (time.perf_counter() - started)

    return Results(
        customers=customers,
        days=days,
        records=len(records),
        merges=merges,
        first=first,
        replay=replay,
        item_kb=item_kb,
        sizes=sizes,
        sweep_queries=sweep_queries,
        cel_per_s=cel_per_s,
        profiles_per_s=profiles_per_s,
        programs=len(config.segments),
    )


def _item_bytes(raw: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers ~ digits / 2 + 1)."""
    total = 0
    for name, value in raw.items():
        total += len(name.encode())
        ((kind, content),) = value.items()
        if kind == "S":
            total += len(content.encode())
        elif kind == "B":
            total += len(content)
        elif kind == "N":
            total += len(content) // 2 + 1
        else:
            total += len(str(content))
    return total


def cost_table(r: Results) -> str:
    def row(name: str, p: Pass) -> str:
        bound = max(p.lower_bound, 1)
        return (
            f"| {name} | {p.events:,} | {p.batches} | {p.profile_reads / p.events:.3f} | "
            f"{p.profile_writes / p.events:.3f} | {p.profile_reads / bound:.2f} | "
            f"{p.profile_writes / bound:.2f} | {p.size_counter_writes} | "
            f"{p.calls['BatchGetItem'] / p.batches:.2f} | {p.changes:,} |"
        )

    return "\n".join(
        [
            "| pass | records | batches | profile reads/record | profile writes/record | "
            "reads ÷ lower bound | writes ÷ lower bound | size-counter writes | "
            "BatchGetItem/batch | change records |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            row("first", r.first),
            row("replay", r.replay),
        ]
    )


def size_table(r: Results) -> str:
    kb = sorted(r.item_kb)
    p95 = kb[int(0.95 * (len(kb) - 1))] if kb else 0.0
    return "\n".join(
        [
            "| profiles | average item | p95 item | largest item |",
            "|---:|---:|---:|---:|",
            f"| {len(kb):,} | {sum(kb) / max(len(kb), 1):.2f} KB | {p95:.2f} KB | "
            f"{max(kb, default=0):.2f} KB |",
        ]
    )


def speed_table(r: Results) -> str:
    return "\n".join(
        [
            "| measure | per second |",
            "|---|---:|",
            f"| CEL condition evaluations ({r.programs} segments, prepared variables) | "
            f"{r.cel_per_s:,.0f} |",
            f"| whole profiles (computed traits as of now + every condition) | "
            f"{r.profiles_per_s:,.0f} |",
            f"| records through the handler on moto, first pass | "
            f"{r.first.events / r.first.seconds:,.0f} |",
        ]
    )


def section(r: Results, command: str) -> str:
    sizes = ", ".join(f"{k} {v}" for k, v in sorted(r.sizes.items()) if v)
    return "\n\n".join(
        [
            section_head(SECTION, command),
            prose(
                f"{r.customers} simulated shoppers over {r.days} days "
                f"(`simulator/journeys.py`, seed {SEED}): {r.records:,} `resolved` records, "
                f"{r.merges} of them merges of an anonymous profile into its customer. "
                "The lower bound is one profile read and one write per distinct profile "
                "per batch; a ratio of 1.00 means the step reaches it."
            ),
            cost_table(r),
            prose(
                "Reads above the bound are the tombstone redirects of merged-away "
                "profiles; writes above it are the tombstones themselves (one per merge). "
                "Size-counter writes ride in the same transaction as a membership "
                "change (a transactional write costs two units). The replay writes and "
                "announces nothing: watermarks and message-id digests recognise every "
                "record."
            ),
            size_table(r),
            prose(
                "Item sizes include the compressed state, the scores and the keys; "
                "DynamoDB bills a write per started KB."
            ),
            speed_table(r),
            prose(
                f"The sweep after the run took {r.sweep_queries} Query calls on the "
                f"sparse index and no Scan. Segment sizes afterwards: {sizes}."
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    command = command_line("segments.py", argv)
    results = quietly(lambda: measure(args.customers, args.days, args.seconds))
    return report(
        [cost_table(results), size_table(results), speed_table(results)],
        args.write,
        SECTION,
        lambda: section(results, command),
    )


if __name__ == "__main__":
    sys.exit(main())
