"""What the pipeline did, read back from its own resources: the demo's summary and
the dashboard's overview both come from `observe`.

Streams are read whole and two tables are scanned: right for the local stack and a
small deployment, not for a production-sized one (CloudWatch has those figures).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from functions.consent.step import COUNTER, FORWARDED
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.resolved import ProfileMerged, parse_record
from functions.shared.stream_batch import MALFORMED
from infra.topology import ResourceNames


class Clients(Protocol):
    """boto3 clients: the local stack's moto (`LocalAws`) or an AWS session."""

    def client(self, service: str) -> Any: ...


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


def stream_records(aws: Clients, stream: str) -> list[bytes]:
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
    def read(cls, aws: Clients, stream: str) -> IdentityOutcome:
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


def failed_events_by_reason(aws: Clients, bucket: str, prefix: str = "ingest/") -> Counter[str]:
    s3 = aws.client("s3")
    reasons: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    reasons[json.loads(line)["reason"]] += 1
    return reasons


def day_counters(aws: Clients, table: str, name: str) -> Counter[str]:
    day = datetime.now(UTC).date().isoformat()
    return DailyCounters(DynamoTable(table, aws.client("dynamodb"))).day_totals(name, day)


def profile_scores(aws: Clients, table: str) -> dict[str, list[float]]:
    """Every live profile's probability per model (a Scan: a local or small deployment)."""
    scores: dict[str, list[float]] = {}
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if "scores" in item and item["pk"]["S"].startswith("profile#"):
                for model, score in json.loads(item["scores"]["S"]).items():
                    scores.setdefault(model, []).append(float(score["probability"]))
    return scores


def delivery_outcomes(aws: Clients, table: str) -> Counter[tuple[str, str]]:
    """(destination, outcome) of every delivery log record (a Scan)."""
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


def observe(aws: Clients, names: ResourceNames) -> Outcome:
    """Everything the demo summary and the dashboard show, read from the resources."""
    return Outcome(
        in_stream=len(stream_records(aws, names.stream("events"))),
        failed=failed_events_by_reason(aws, names.bucket("failed-events")),
        consent=day_counters(aws, names.table("counters"), COUNTER),
        identity=IdentityOutcome.read(aws, names.stream("resolved")),
        segments=day_counters(aws, names.table("counters"), "segments"),
        sizes=ProfilesStore(
            DynamoTable(names.table("profiles"), aws.client("dynamodb"))
        ).segment_sizes(),
        scores=profile_scores(aws, names.table("profiles")),
        deliveries=delivery_outcomes(aws, names.table("deliveries")),
    )
