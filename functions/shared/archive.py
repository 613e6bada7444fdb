"""The event archive's layout and rules, as plain logic (no boto3, no pyarrow).

Every record of the `resolved` stream (after consent and identity: nothing a
person refused is there, and each event carries its profile id) becomes one
flat row. Events go to the `events` table, merges to the `merges` table, both
as Parquet under Hive-style day partitions of the server's receipt time:

    events/dt=2026-12-03/<shard>-<first sequence number>.parquet
    merges/dt=2026-12-03/<shard>-<first sequence number>.parquet

A file's name is its shard and the first stream position it holds, so a
writer that dies after writing a file and before checkpointing writes the same
name again when it redoes the batch: the file is replaced, never doubled.
Streams are at-least-once all the same (a step redoing a batch writes its
records again), so the query engines' `events` view keeps one row per message
id (docs/archive.md). What the local writer (infra/local/firehose.py) and the
deployed transform share lives here: the row, the partition, the name, the
buffer's flush rule, the merge closure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.shared.events import CanonicalEvent
from functions.shared.resolved import ProfileMerged, ResolvedEvent

EVENTS = "events"
MERGES = "merges"
# Deployed: the Glue database and Athena workgroup (infra/constructs/archive.py), and
# the names `beacon archive query` offers in both places.
DATABASE = "beacon_archive"
WORKGROUP = "beacon-archive"
RAW_EVENTS_TABLE = "archived_events"
EVENTS_VIEW = "events"
ERASURES = "erasures"  # erasure requests: what the writer drops and the rewrite removes
TABLES = (EVENTS, MERGES)

# The columns of each table, in order (the Glue table and the Parquet schema follow).
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("message_id", "string"),
    ("profile_id", "string"),
    ("type", "string"),
    ("event", "string"),
    ("name", "string"),
    ("timestamp", "timestamp"),
    ("received_at", "timestamp"),
    ("anonymous_id", "string"),
    ("user_id", "string"),
    ("traits", "string"),  # JSON text: any shape, read with json functions
    ("properties", "string"),
    ("context", "string"),
    ("source", "string"),
    # Where the record sat in the `resolved` stream: a backfill replays exactly what a
    # live profile has applied (its watermark per shard; docs/archive.md "Backfill").
    ("shard_id", "string"),
    ("sequence_number", "string"),  # up to 56 digits: text, compared as an integer
)
MERGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("merge_id", "string"),
    ("survivor", "string"),
    ("loser", "string"),
    ("at", "timestamp"),
    ("rule", "string"),
    ("message_id", "string"),
)
COLUMNS = {EVENTS: EVENT_COLUMNS, MERGES: MERGE_COLUMNS}
PARTITION = "dt"

Row = dict[str, Any]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


@dataclass(frozen=True)
class StreamPosition:
    """A record's shard of the `resolved` stream and its sequence number there."""

    shard_id: str
    sequence_number: str


def event_row(record: ResolvedEvent, position: StreamPosition | None = None) -> Row:
    """One archived event: the canonical event, flat, with the profile it resolved to
    and, when known, where it sat in the stream.

    The context keeps what ingest left (the IP is already truncated or hashed
    there: no raw IP reaches the archive) and the consent step's stamp."""
    event = record.event
    context = event.context.model_dump(mode="json", by_alias=True, exclude_none=True)
    if event.consent is not None:
        context["consent_decision"] = event.consent.model_dump(mode="json", by_alias=True)
    return {
        "message_id": event.message_id,
        "profile_id": record.profile_id,
        "type": str(event.type),
        "event": event.event,
        "name": event.name,
        "timestamp": event.timestamp,
        "received_at": event.received_at,
        "anonymous_id": event.anonymous_id,
        "user_id": event.user_id,
        "traits": _json(event.traits),
        "properties": _json(event.properties),
        "context": _json(context),
        "source": event.source.name,
        "shard_id": position.shard_id if position else None,
        "sequence_number": position.sequence_number if position else None,
    }


def _time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # Athena answers timestamps as text without a zone: they are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_of(row: Mapping[str, Any]) -> CanonicalEvent:
    """An archived row back as the canonical event the segments step applied."""
    context = json.loads(row.get("context") or "{}")
    context.pop("consent_decision", None)
    return CanonicalEvent.model_validate(
        {
            "messageId": row["message_id"],
            "type": row["type"],
            "event": row.get("event"),
            "name": row.get("name"),
            "anonymousId": row.get("anonymous_id"),
            "userId": row.get("user_id"),
            "traits": json.loads(row.get("traits") or "{}"),
            "properties": json.loads(row.get("properties") or "{}"),
            "context": context,
            "source": {"name": row.get("source") or "archive", "protocol": "segment"},
            "timestamp": _time(row["timestamp"]),
            "receivedAt": _time(row["received_at"]),
        }
    )


def merge_row(record: ProfileMerged) -> Row:
    return {
        "merge_id": record.merge_id,
        "survivor": record.survivor,
        "loser": record.loser,
        "at": record.at,
        "rule": record.rule,
        "message_id": record.message_id,
    }


def archive_row(
    record: ResolvedEvent | ProfileMerged, position: StreamPosition | None = None
) -> tuple[str, Row]:
    """(table, row) for one record of the resolved stream."""
    if isinstance(record, ResolvedEvent):
        return EVENTS, event_row(record, position)
    return MERGES, merge_row(record)


def day_of(table: str, row: Row) -> str:
    """The partition: the day the server received the event (or the merge happened),
    UTC. The server's clock, never the client's: a client cannot aim a row at an
    old partition."""
    moment: datetime = row["received_at"] if table == EVENTS else row["at"]
    return moment.strftime("%Y-%m-%d")


def table_prefix(table: str) -> str:
    return f"{table}/"


def object_key(table: str, day: str, shard: str, first_sequence: str) -> str:
    return f"{table}/{PARTITION}={day}/{shard}-{first_sequence}.parquet"


def day_from_key(key: str) -> str | None:
    for part in key.split("/"):
        if part.startswith(f"{PARTITION}="):
            return part.removeprefix(f"{PARTITION}=")
    return None


def by_partition(rows: Iterable[tuple[str, Row]]) -> dict[tuple[str, str], list[Row]]:
    """(table, day) -> rows, in arrival order."""
    grouped: dict[tuple[str, str], list[Row]] = {}
    for table, row in rows:
        grouped.setdefault((table, day_of(table, row)), []).append(row)
    return grouped


@dataclass(frozen=True)
class BufferRule:
    """When a buffer is written out: Firehose's buffering hints (size or time,
    whichever comes first). Deployed: 64 MiB / 300 s (Parquet conversion asks
    for at least 64 MiB); locally small, so a demo sees its files at once."""

    max_bytes: int = 64 * 1024 * 1024
    max_age_s: float = 300.0


@dataclass
class ArchiveBuffer:
    """Records read from one shard and not yet written, with where they began."""

    rule: BufferRule
    rows: list[tuple[str, Row]] = field(default_factory=list)
    first_sequence: str | None = None
    last_sequence: str | None = None
    size_bytes: int = 0
    records: int = 0  # stream records read, archived or not
    opened_at: float | None = None  # monotonic time of the first record

    def add(self, sequence: str, size: int, row: tuple[str, Row] | None, now: float) -> None:
        """`row` None: a record that is not archived (unreadable) still moves the position."""
        if self.first_sequence is None:
            self.first_sequence = sequence
            self.opened_at = now
        self.last_sequence = sequence
        self.records += 1
        self.size_bytes += size
        if row is not None:
            self.rows.append(row)

    def due(self, now: float) -> bool:
        if self.first_sequence is None:
            return False
        assert self.opened_at is not None
        return self.size_bytes >= self.rule.max_bytes or now - self.opened_at >= self.rule.max_age_s

    def full(self) -> bool:
        return self.size_bytes >= self.rule.max_bytes


def survivors(merges: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """loser -> the profile it lives on now, following chains (a -> b, b -> c: a -> c).

    A cycle (which identity never writes) stops at the first repeat rather than loop."""
    parent = {m["loser"]: m["survivor"] for m in merges if m["loser"] != m["survivor"]}
    final: dict[str, str] = {}
    for loser in parent:
        seen = {loser}
        current = parent[loser]
        while current in parent and parent[current] not in seen:
            seen.add(current)
            current = parent[current]
        final[loser] = current
    return final


def merged_into(profile_ids: Iterable[str], merges: Iterable[Mapping[str, Any]]) -> set[str]:
    """The profile ids and every id merged (directly or through a chain) into one of them."""
    losers: dict[str, set[str]] = {}
    for m in merges:
        losers.setdefault(m["survivor"], set()).add(m["loser"])
    found = set(profile_ids)
    frontier = list(found)
    while frontier:
        for loser in losers.get(frontier.pop(), ()):
            if loser not in found:
                found.add(loser)
                frontier.append(loser)
    return found


@dataclass(frozen=True)
class ErasureRequest:
    """Erase the rows of these profile ids received at or before `at`.

    Kept in the archive bucket (`erasures/<id>.json`) for as long as an event of
    the person may still be on its way to the archive (`IN_FLIGHT_BOUND` plus
    the writer's buffer), so a row that arrives after the rewrite is dropped too."""

    request_id: str
    profile_ids: tuple[str, ...]
    at: datetime
    # When the erasure job's last full pass began: later passes read only the files
    # written since (what landed after it), not the whole archive again.
    checked_at: datetime | None = None

    def drops(self, table: str, row: Row) -> bool:
        if table == EVENTS:
            return row["profile_id"] in self.profile_ids and row["received_at"] <= self.at
        return (row["survivor"] in self.profile_ids or row["loser"] in self.profile_ids) and (
            row["at"] <= self.at
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "request_id": self.request_id,
                "profile_ids": list(self.profile_ids),
                "at": self.at.isoformat(),
                "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ErasureRequest:
        data = json.loads(text)
        return cls(
            request_id=str(data["request_id"]),
            profile_ids=tuple(str(p) for p in data["profile_ids"]),
            at=datetime.fromisoformat(data["at"]),
            checked_at=datetime.fromisoformat(data["checked_at"])
            if data.get("checked_at")
            else None,
        )


def keep(table: str, row: Row, erasures: Iterable[ErasureRequest]) -> bool:
    return not any(request.drops(table, row) for request in erasures)
