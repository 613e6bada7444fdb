"""What the pipeline did, read back from its own resources: the demo's summary and
the dashboard's overview both come from `observe`.

Streams are read whole and two tables are scanned: right for the local stack and a
small deployment, not for a production-sized one (CloudWatch has those figures).
The ledger (`Outcome.pipeline_problems`) sets the streams' whole contents against
today's counters and the profiles' lifetime counts, so it holds for a run within
one day and the streams' retention (the demo, the local stack, a fresh
deployment), not across days of a long-lived one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from functions.consent.step import COUNTER, FORWARDED
from functions.identity.step import COUNTER as IDENTITY_COUNTER
from functions.profiles.codec import decode_state
from functions.shared.archive import EVENTS
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ERASED_APPLIED, ProfilesStore
from functions.shared.erasure import ERASED
from functions.shared.events import CanonicalEvent
from functions.shared.resolved import ProfileMerged, parse_record
from functions.shared.stream_batch import MALFORMED
from infra.local.door import STEP as GATEWAY_STEP
from infra.topology import ResourceNames


class Clients(Protocol):
    """boto3 clients: the local stack's moto (`LocalAws`) or an AWS session."""

    def client(self, service: str) -> Any: ...


@dataclass
class StreamOutcome:
    """A stream's records and the distinct events among them. Streams are
    at-least-once: a step that dies after writing and before its checkpoint
    writes again when the batch is redone, with the same message ids."""

    records: int = 0
    message_ids: set[str] = field(default_factory=set)

    @property
    def events(self) -> int:
        return len(self.message_ids)

    @classmethod
    def read(cls, aws: Clients, stream: str) -> StreamOutcome:
        outcome = cls()
        for data in stream_records(aws, stream):
            outcome.records += 1
            try:
                outcome.message_ids.add(CanonicalEvent.model_validate_json(data).message_id)
            except ValidationError:
                continue  # an admin link command, or a record the next step sent to failed events
        return outcome


@dataclass
class Outcome:
    events: StreamOutcome  # what ingest accepted
    failed: Counter[str]  # ingest's failed events by reason
    consent: Counter[str]  # today's consent counters: forwarded, malformed_record, drops
    consented: StreamOutcome
    identity: IdentityOutcome
    segments: Counter[str]  # today's segments counters: applied, retried, merges
    profiles: ProfilesOutcome
    deliveries: Counter[tuple[str, str]]  # (destination, outcome) -> activations
    # Failed after consent, by "<step>: <reason>" (consent counts its own).
    failed_downstream: Counter[str] = field(default_factory=Counter)
    # Requests the local gateway refused before any function ran (as API Gateway
    # does: oversized, malformed framing), by reason; no event of them was read.
    refused_at_door: Counter[str] = field(default_factory=Counter)
    # Today's identity counters: events dropped after consent (an erasure, or a
    # refusal from someone without a profile), by reason.
    identity_counts: Counter[str] = field(default_factory=Counter)
    # The archive's rows (None: not read, e.g. a deployment without the archive).
    archive: ArchiveOutcome | None = None

    @property
    def archived(self) -> int:
        return self.archive.events if self.archive else 0

    @property
    def in_stream(self) -> int:
        return self.events.records

    @property
    def forwarded(self) -> int:
        return self.consent[FORWARDED]

    @property
    def dropped(self) -> Counter[str]:
        return Counter({k: v for k, v in self.consent.items() if k not in (FORWARDED, MALFORMED)})

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def sizes(self) -> dict[str, int]:
        return self.profiles.sizes

    @property
    def scores(self) -> dict[str, list[float]]:
        return self.profiles.scores

    @property
    def erased_after_consent(self) -> int:
        """Events of erased people dropped after consent (identity and segments)."""
        return self.identity_counts[ERASED] + self.segments[ERASED]

    def pipeline_problems(self) -> list[str]:
        """Where the steps after consent do not add up (empty: every event is accounted for).

        Counted in distinct events (message ids) wherever a stream may hold a
        redelivered copy, and applied events are summed from the profiles
        themselves, whose count is written with the aggregates: so the check
        holds after a crash and a redone batch, and fails if an event was lost
        or applied twice. Ingest's and consent's failed events are their own
        business (bad input, counted above); anything failed later is a problem.

        An erasure takes the erased profiles' applied events with them: the sum
        over the profiles drops by what they had applied. The erasure adds that to
        the `erased-applied` counters in the same transaction as its markers, and
        the ledger adds them back (`ProfilesOutcome.erased_applied`). Events of the
        person still in flight when it ran are dropped by identity or segments and
        counted as `erased`: dropped, not lost. A copy of one event on each side of
        an erasure (a batch redone across it) is both applied and dropped, so with
        erasures the sums may exceed the distinct events by the copies the streams
        hold, never fall short of them.
        """
        problems = []
        judged = sum(self.consent.values())
        if judged != self.events.records:
            problems.append(
                f"{self.events.records} in the events stream but consent judged {judged}"
            )
        if not self.consented.events <= self.forwarded <= self.consented.records:
            problems.append(
                f"consent forwarded {self.forwarded} but its stream holds "
                f"{self.consented.records} records of {self.consented.events} events"
            )
        resolved = self.identity.stream.message_ids
        missing = len(self.consented.message_ids - resolved)
        invented = len(resolved - self.consented.message_ids)
        dropped = sum(self.identity_counts.values())  # erased, or refusals without a profile
        copies = self.consented.records - self.consented.events
        if invented or not missing <= dropped <= missing + copies:
            why = ", ".join(f"{n} {r}" for r, n in sorted(self.identity_counts.items()) if n)
            erased = f" ({dropped} dropped: {why})" if dropped else ""
            problems.append(
                f"identity lost {max(missing - dropped, 0)} forwarded events and invented "
                f"{invented}{erased}"
            )
        applied = self.profiles.events_applied + self.profiles.erased_applied
        dropped = self.segments[ERASED]
        copies = self.identity.stream.records - self.identity.events
        if (
            not self.identity.events
            <= applied + dropped
            <= self.identity.events + (copies if dropped else 0)
        ):
            erased = f" ({dropped} dropped as erased)" if dropped else ""
            problems.append(
                f"identity resolved {self.identity.events} events but profiles applied "
                f"{applied}{erased}"
            )
        problems += self.archive_problems()
        # Internal streams carry only what the steps wrote: a record failed after
        # consent (unreadable, or given up by Lambda) means something is wrong.
        for where, count in sorted(self.failed_downstream.items()):
            problems.append(f"{count} failed in {where}")
        return problems

    def archive_problems(self) -> list[str]:
        """The archive holds every event of the resolved stream, by message id, and
        nothing else; an erasure takes the person's rows (and the writer drops
        their events still on the way), so with erasures it may hold fewer. A copy
        of an event (a redelivery) is a row more, never an event more: the
        `events` view keeps one row per message id (docs/archive.md)."""
        if self.archive is None:
            return []
        resolved = self.identity.stream.message_ids
        archived = self.archive.message_ids
        invented = len(archived - resolved)
        missing = len(resolved - archived)
        if invented or (missing and not self.archive.erasures):
            return [f"the archive lacks {missing} resolved events and has {invented} others"]
        copies = self.identity.stream.records - self.identity.events
        if self.archive.rows - self.archive.events > copies:
            return [
                f"the archive holds {self.archive.rows} rows of {self.archive.events} events, "
                f"more copies than the {copies} the resolved stream holds"
            ]
        return []


@dataclass
class ArchiveOutcome:
    """The archive's `events` rows, read whole (a local or small deployment)."""

    rows: int = 0
    message_ids: set[str] = field(default_factory=set)
    erasures: int = 0  # erasure requests in force

    @property
    def events(self) -> int:
        return len(self.message_ids)

    @classmethod
    def read(cls, aws: Clients, bucket: str) -> ArchiveOutcome:
        store = ArchiveStore(bucket, aws.client("s3"))
        outcome = cls(erasures=len(store.erasure_requests()))
        for row in store.rows(EVENTS):
            outcome.rows += 1
            outcome.message_ids.add(row["message_id"])
        return outcome


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
    stream: StreamOutcome  # the events on `resolved`, each attributed to a profile
    merges: Counter[str]  # profile.merged records by rule (a merge id counted once)
    profiles: set[str]  # distinct (survivor) profile ids events went to

    @property
    def events(self) -> int:
        return self.stream.events

    @classmethod
    def read(cls, aws: Clients, stream: str) -> IdentityOutcome:
        outcome = cls(StreamOutcome(), Counter(), set())
        merged_away: set[str] = set()
        merge_ids: set[str] = set()
        for data in stream_records(aws, stream):
            outcome.stream.records += 1
            try:
                record = parse_record(data)
            except ValidationError:
                continue  # the segments step sent it to failed events
            if isinstance(record, ProfileMerged):
                if record.merge_id not in merge_ids:
                    merge_ids.add(record.merge_id)
                    outcome.merges[record.rule] += 1
                merged_away.add(record.loser)
            else:
                outcome.stream.message_ids.add(record.event.message_id)
                outcome.profiles.add(record.profile_id)
        outcome.profiles -= merged_away
        return outcome


@dataclass
class ProfilesOutcome:
    """One Scan of the profiles table (a local or small deployment)."""

    events_applied: int = 0  # summed over live profiles (tombstones folded theirs in)
    erased_applied: int = 0  # what erased profiles had applied (`erased-applied` counters)
    scores: dict[str, list[float]] = field(default_factory=dict)  # model -> probabilities
    sizes: dict[str, int] = field(default_factory=dict)
    personas: Counter[str] = field(default_factory=Counter)  # persona name -> profiles
    recommended: int = 0  # profiles with recommendations

    @classmethod
    def read(cls, aws: Clients, table: str) -> ProfilesOutcome:
        outcome = cls()
        for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                if item["pk"]["S"] == ERASED_APPLIED:
                    outcome.erased_applied += int(item["events"]["N"])
                    continue
                if not item["pk"]["S"].startswith("profile#") or "state" not in item:
                    continue
                outcome.events_applied += decode_state(item["state"]["B"]).events_applied
                for model, score in json.loads(item.get("scores", {}).get("S") or "{}").items():
                    if "probability" in score:  # not the recommendations or persona
                        outcome.scores.setdefault(model, []).append(float(score["probability"]))
                    elif model == "persona":
                        outcome.personas[str(score.get("name"))] += 1
                    elif model == "recommendations" and score.get("items"):
                        outcome.recommended += 1
        outcome.sizes = ProfilesStore(DynamoTable(table, aws.client("dynamodb"))).segment_sizes()
        return outcome


def failed_events_by_reason(
    aws: Clients, bucket: str, prefix: str = "ingest/", by_step: bool = False
) -> Counter[str]:
    """Failed events under `prefix` by reason (by `<step>: <reason>` with `by_step`).

    Lambda's on-failure records (`aws/lambda/<function>/...`, whole batches a
    stream consumer gave up on) count their batch's records, as
    `<function>: <condition>`.
    """
    s3 = aws.client("s3")
    reasons: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            if item["Key"].startswith("aws/lambda/"):
                record = json.loads(body)
                function = item["Key"].split("/")[2]
                condition = record["requestContext"]["condition"]
                reasons[f"{function}: {condition}"] += record["KinesisBatchInfo"]["batchSize"]
                continue
            step = item["Key"].split("/", 1)[0]
            for line in body.splitlines():
                if line.strip():
                    reason = json.loads(line)["reason"]
                    reasons[f"{step}: {reason}" if by_step else reason] += 1
    return reasons


def day_counters(aws: Clients, table: str, name: str) -> Counter[str]:
    day = datetime.now(UTC).date().isoformat()
    return DailyCounters(DynamoTable(table, aws.client("dynamodb"))).day_totals(name, day)


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
    failed = failed_events_by_reason(aws, names.bucket("failed-events"), prefix="", by_step=True)
    return Outcome(
        events=StreamOutcome.read(aws, names.stream("events")),
        failed=Counter(
            {k.removeprefix("ingest: "): n for k, n in failed.items() if k.startswith("ingest: ")}
        ),
        consent=day_counters(aws, names.table("counters"), COUNTER),
        consented=StreamOutcome.read(aws, names.stream("consented")),
        identity=IdentityOutcome.read(aws, names.stream("resolved")),
        segments=day_counters(aws, names.table("counters"), "segments"),
        profiles=ProfilesOutcome.read(aws, names.table("profiles")),
        deliveries=delivery_outcomes(aws, names.table("deliveries")),
        failed_downstream=Counter(
            {
                k: n
                for k, n in failed.items()
                if not k.startswith(("ingest: ", "consent: ", f"{GATEWAY_STEP}: "))
            }
        ),
        refused_at_door=Counter(
            {
                k.removeprefix(f"{GATEWAY_STEP}: "): n
                for k, n in failed.items()
                if k.startswith(f"{GATEWAY_STEP}: ")
            }
        ),
        identity_counts=day_counters(aws, names.table("counters"), IDENTITY_COUNTER),
        archive=ArchiveOutcome.read(aws, names.bucket("archive")),
    )
