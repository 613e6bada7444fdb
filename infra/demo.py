"""`beacon demo`: the local stack, simulated traffic over HTTP, and the ledger.

The summary reads what really came out (records in the Kinesis stream,
failed-events objects in S3) and checks the ledger: everything the
simulator sent is either in the stream or in failed events, nowhere else.
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.consent.step import COUNTER, FORWARDED
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.resolved import ProfileMerged, parse_record
from functions.shared.stream_batch import MALFORMED
from infra.local.aws import LocalAws
from infra.local.runtime import LocalSettings, LocalStack
from infra.simulator import SimulationReport, Simulator


@dataclass
class Outcome:
    in_stream: int
    failed: Counter[str]
    consent: Counter[str]  # today's consent counters: forwarded, malformed_record, drops
    identity: IdentityOutcome
    segments: Counter[str]  # today's segments counters: applied, retried, merges
    sizes: dict[str, int]
    scores: dict[str, list[float]]  # model -> every profile's probability
    deliveries: Counter[tuple[str, str]]  # (destination, outcome) -> activations

    @property
    def forwarded(self) -> int:
        return self.consent[FORWARDED]

    @property
    def dropped(self) -> Counter[str]:
        return Counter({k: v for k, v in self.consent.items() if k not in (FORWARDED, MALFORMED)})

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


def stream_records(aws: LocalAws, stream: str) -> list[bytes]:
    """Every record currently in the stream, across all shards."""
    kinesis = aws.client("kinesis")
    found: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            found += [record["Data"] for record in answer["Records"]]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    return found


@dataclass
class IdentityOutcome:
    events: int  # events on `resolved`, each attributed to a profile
    merges: Counter[str]  # profile.merged records by rule
    profiles: set[str]  # distinct (survivor) profile ids events went to

    @classmethod
    def read(cls, aws: LocalAws, stream: str) -> IdentityOutcome:
        outcome = cls(0, Counter(), set())
        merged_away: set[str] = set()
        for data in stream_records(aws, stream):
            record = parse_record(data)
            if isinstance(record, ProfileMerged):
                outcome.merges[record.rule] += 1
                merged_away.add(record.loser)
            else:
                outcome.events += 1
                outcome.profiles.add(record.profile_id)
        outcome.profiles -= merged_away
        return outcome


def failed_events_by_reason(aws: LocalAws, bucket: str, prefix: str = "ingest/") -> Counter[str]:
    s3 = aws.client("s3")
    reasons: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    reasons[json.loads(line)["reason"]] += 1
    return reasons


def day_counters(aws: LocalAws, table: str, name: str) -> Counter[str]:
    day = datetime.now(UTC).date().isoformat()
    return DailyCounters(DynamoTable(table, aws.client("dynamodb"))).day_totals(name, day)


def profile_scores(aws: LocalAws, table: str) -> dict[str, list[float]]:
    """Every live profile's probability per model (a Scan: fine for a local demo)."""
    scores: dict[str, list[float]] = {}
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if "scores" in item and item["pk"]["S"].startswith("profile#"):
                for model, score in json.loads(item["scores"]["S"]).items():
                    scores.setdefault(model, []).append(float(score["probability"]))
    return scores


def delivery_outcomes(aws: LocalAws, table: str) -> Counter[tuple[str, str]]:
    """(destination, outcome) for every delivery log record (a Scan: a local demo)."""
    outcomes: Counter[tuple[str, str]] = Counter()
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if item["sk"]["S"].startswith("delivery#"):
                destination = item["sk"]["S"].rsplit("#", 1)[1]
                outcomes[(destination, item["outcome"]["S"])] += 1
    return outcomes


def score_histogram(values: list[float], bins: int = 5) -> str:
    counts = Counter(min(int(v * bins), bins - 1) for v in values)
    return " ".join(f"[{i / bins:.1f},{(i + 1) / bins:.1f}) {counts[i]}" for i in range(bins))


def observe(stack: LocalStack) -> Outcome:
    assert stack.aws is not None
    return Outcome(
        in_stream=len(stream_records(stack.aws, stack.names.stream("events"))),
        failed=failed_events_by_reason(stack.aws, stack.names.bucket("failed-events")),
        consent=day_counters(stack.aws, stack.names.table("counters"), COUNTER),
        identity=IdentityOutcome.read(stack.aws, stack.names.stream("resolved")),
        segments=day_counters(stack.aws, stack.names.table("counters"), "segments"),
        sizes=ProfilesStore(
            DynamoTable(stack.names.table("profiles"), stack.aws.client("dynamodb"))
        ).segment_sizes(),
        scores=profile_scores(stack.aws, stack.names.table("profiles")),
        deliveries=delivery_outcomes(stack.aws, stack.names.table("deliveries")),
    )


def ledger_problems(report: SimulationReport, outcome: Outcome) -> list[str]:
    problems = []
    if report.units_sent != outcome.in_stream + outcome.failed_total:
        problems.append(
            f"{report.units_sent} sent but {outcome.in_stream} in stream + "
            f"{outcome.failed_total} failed = {outcome.in_stream + outcome.failed_total}"
        )
    judged = sum(outcome.consent.values())
    if judged != outcome.in_stream:
        problems.append(f"{outcome.in_stream} in the events stream but consent judged {judged}")
    if outcome.identity.events != outcome.forwarded:
        problems.append(
            f"consent forwarded {outcome.forwarded} but identity resolved {outcome.identity.events}"
        )
    applied = outcome.segments["applied"] + outcome.segments["retried"]
    if applied != outcome.identity.events:
        problems.append(
            f"identity resolved {outcome.identity.events} but segments applied "
            f"{outcome.segments['applied']} + {outcome.segments['retried']} client retries"
        )
    for reason, count in report.expected_failed.items():
        if outcome.failed[reason] != count:
            problems.append(f"expected {count} failed as {reason}, found {outcome.failed[reason]}")
    return problems


def summary(report: SimulationReport, outcome: Outcome, stack: LocalStack) -> str:
    protocols = ", ".join(f"{p} {n}" for p, n in sorted(report.by_protocol.items()))
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(report.statuses.items()))
    reasons = ", ".join(f"{r} {n}" for r, n in outcome.failed.most_common()) or "none"
    drops = ", ".join(f"{r} {n}" for r, n in outcome.dropped.most_common()) or "none"
    merges = ", ".join(f"{r} {n}" for r, n in outcome.identity.merges.most_common()) or "none"
    problems = ledger_problems(report, outcome)
    verdict = (
        "OK: every event is in the stream or in failed events"
        if not problems
        else "MISMATCH: " + "; ".join(problems)
    )
    lines = [
        "",
        "Beacon demo summary",
        "===================",
        f"  sent          {report.units_sent:6d} events in {report.requests} HTTP requests "
        f"({protocols})",
        f"  answers       {statuses}",
        f"  events stream {outcome.in_stream:6d} records "
        f"(Kinesis '{stack.names.stream('events')}')",
        f"  failed events {outcome.failed_total:6d} ({reasons})",
        f"  consent       {outcome.forwarded:6d} forwarded to '{stack.names.stream('consented')}'",
        f"                {sum(outcome.dropped.values()):6d} dropped ({drops})",
        f"  identity      {outcome.identity.events:6d} events resolved to "
        f"{len(outcome.identity.profiles)} profiles; merges: {merges}",
        f"  segments      {outcome.segments['applied']:6d} events applied to profiles "
        f"({outcome.segments['retried']} client retries applied once, "
        f"{outcome.segments['merges']} merges folded)",
        *(
            f"                {segment:22s} {size:5d} members"
            for segment, size in sorted(outcome.sizes.items())
            if size
        ),
        *(
            f"  scores        {model:10s} {len(values):5d} profiles, "
            f"mean {sum(values) / len(values):.2f}: {score_histogram(values)}"
            for model, values in sorted(outcome.scores.items())
        ),
        *(
            f"  deliveries    {destination:12s} "
            + ", ".join(
                f"{outcome} {n}"
                for (d, outcome), n in sorted(outcome.deliveries.items())
                if d == destination
            )
            for destination in sorted({d for d, _ in outcome.deliveries})
        ),
        f"  ledger        {report.units_sent} sent = {outcome.forwarded} forwarded + "
        f"{sum(outcome.dropped.values())} dropped by consent + {outcome.failed_total} failed "
        f"-> {verdict}",
        "",
    ]
    return "\n".join(lines)


def run_demo(settings: LocalSettings, customers: int, seed: int, exit_after: bool) -> int:
    with LocalStack(settings) as stack:
        print(
            f"Beacon local stack on {stack.url} (AWS on moto at {stack.aws.endpoint})",  # type: ignore[union-attr]
            flush=True,
        )
        keys = {
            s.name: settings.write_keys.get(s.name, s.local_write_key) for s in stack.config.sources
        }
        web, *others = stack.config.sources
        simulator = Simulator(
            stack.url, keys[web.name], keys[others[0].name] if others else None, seed=seed
        )
        print(f"Sending simulated traffic for {customers} shoppers ...", flush=True)
        report = simulator.run(customers=customers)
        if not stack.wait_until_drained(timeout_s=180):
            print("WARNING: the pipeline had not drained after 180 s", flush=True)
        outcome = observe(stack)
        print(summary(report, outcome, stack), flush=True)
        failed = bool(ledger_problems(report, outcome))
        if exit_after:
            return 1 if failed else 0
        print("The stack stays up; press Ctrl-C to stop.", flush=True)
        wait_for_interrupt()
        return 1 if failed else 0


def wait_for_interrupt() -> None:
    stop = threading.Event()

    def handle(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stop.wait(0.5):
        pass
