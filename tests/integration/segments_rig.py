"""A rig for the segments Lambda on moto: the real handler fed `resolved` records.

Builds the segments row's resources from the wiring table (the profiles and
counters tables, the `resolved` and `profile-changes` streams, the
failed-events bucket), sets the step's clock, and reads profiles and change
records back with unhooked clients.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from functions.profiles.stored import StoredProfile
from functions.segments import handler
from functions.segments.step import SegmentsStep
from functions.shared.dal.dynamo import DynamoTable, from_item
from functions.shared.dal.profiles_store import ProfilesStore, stored_from_item
from functions.shared.events import CanonicalEvent
from functions.shared.profile_changes import ProfileChanged, parse_change
from functions.shared.resolved import ProfileMerged, ResolvedEvent, record_json
from infra.local.invoke import LocalFunction
from infra.local.schedules import scheduled_event
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import (
    create_bucket,
    create_stream,
    create_table,
    read_stream,
    scan_table,
)
from tests.integration.stream_rig import SHARD, T0, StreamRig, use_function_environment

Record = ResolvedEvent | ProfileMerged | bytes


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def track(
    profile: str,
    hours: float,
    name: str = "Product Viewed",
    properties: dict[str, Any] | None = None,
    message_id: str | None = None,
    consent: dict[str, list[str]] | None = None,
) -> ResolvedEvent:
    stamp = at(hours)
    fields: dict[str, Any] = {
        "messageId": message_id or f"msg-{uuid.uuid4()}",
        "type": "track",
        "event": name,
        "userId": f"user-{profile}",
        "properties": properties or {"product_id": "sku-1", "category": "Shoes"},
        "source": {"name": "web", "protocol": "segment"},
        "timestamp": stamp,
        "receivedAt": stamp,
    }
    if consent is not None:
        fields["consent"] = consent
    return ResolvedEvent(profile_id=profile, event=CanonicalEvent.model_validate(fields))


def identify(profile: str, hours: float, **traits: Any) -> ResolvedEvent:
    stamp = at(hours)
    event = CanonicalEvent.model_validate(
        {
            "messageId": f"msg-{uuid.uuid4()}",
            "type": "identify",
            "userId": f"user-{profile}",
            "traits": traits,
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": stamp,
            "receivedAt": stamp,
        }
    )
    return ResolvedEvent(profile_id=profile, event=event)


def merged(survivor: str, loser: str, hours: float, merge_id: str | None = None) -> ProfileMerged:
    return ProfileMerged(
        merge_id=merge_id or f"merge-{loser}-{survivor}",
        survivor=survivor,
        loser=loser,
        at=at(hours),
        rule="deterministic",
    )


@dataclass
class SegmentsRig(StreamRig):
    function = "segments"
    next_sequence: int = 49_800_000_000_000_000_000_000
    clock: list[datetime] = field(default_factory=lambda: [T0])

    def records(self, items: Sequence[Record], shard: str = SHARD) -> dict[str, Any]:
        """A Kinesis event of `resolved` records (bytes: a malformed record)."""
        entries = []
        for item in items:
            self.next_sequence += 1
            data = item if isinstance(item, bytes) else record_json(item)
            key = "x" if isinstance(item, bytes) else _key(item)
            entries.append(
                {
                    "PartitionKey": key,
                    "SequenceNumber": str(self.next_sequence),
                    "Data": data,
                    "ApproximateArrivalTimestamp": T0,
                }
            )
        return self.kinesis_event(entries, shard)

    def sweep(self) -> Any:
        return LocalFunction(TOPOLOGY.function("segments")).invoke(scheduled_event("segments"))

    # --- reading back -----------------------------------------------------------

    def items(self) -> list[dict[str, Any]]:
        items = scan_table(self.raw_dynamodb, self.names.table("profiles"))
        return [from_item(i) for i in items]

    def profile(self, profile_id: str) -> StoredProfile | None:
        for item in self.items():
            if item["pk"] == f"profile#{profile_id}" and item["sk"] == "profile":
                return stored_from_item(profile_id, item)
        return None

    def item(self, profile_id: str) -> dict[str, Any]:
        return next(
            i for i in self.items() if i["pk"] == f"profile#{profile_id}" and i["sk"] == "profile"
        )

    def decision(self, profile_id: str) -> dict[str, Any] | None:
        """The profile's decision item (the touchpoint's), if written."""
        key = (f"profile#{profile_id}", "decision")
        return next((i for i in self.items() if (i["pk"], i["sk"]) == key), None)

    def changes(self) -> list[ProfileChanged]:
        stream = self.names.stream("profile-changes")
        return [
            parse_change(r["Data"])
            for records in read_stream(self.kinesis, stream).values()
            for r in records
        ]

    def sizes(self) -> dict[str, int]:
        table = DynamoTable(self.names.table("profiles"), self.raw_dynamodb)
        return ProfilesStore(table).segment_sizes()


def _key(item: ResolvedEvent | ProfileMerged) -> str:
    return item.profile_id if isinstance(item, ResolvedEvent) else item.survivor


@contextmanager
def segments_rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SegmentsRig, SegmentsStep]]:
    """The rig and the step it drives (inside an active moto mock); `rig.clock[0]` is now."""
    names = ResourceNames()
    use_function_environment(monkeypatch, "segments", names)
    rig = SegmentsRig.on_moto(names)
    for table in ("profiles", "counters"):
        create_table(rig.raw_dynamodb, names, table)
    for logical in ("resolved", "profile-changes"):
        create_stream(rig.kinesis, names, logical)
    create_bucket(rig.s3, names, "failed-events")
    with rig.running(handler.segments_step) as step:
        step.clock = lambda: rig.clock[0]
        step.changes.sleep = lambda _s: None  # type: ignore[attr-defined]
        yield rig, step
