"""The archive's rows, partitions, names, buffer rule, merge chains and erasure filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.shared.archive import (
    EVENTS,
    MERGES,
    ArchiveBuffer,
    BufferRule,
    ErasureRequest,
    archive_row,
    by_partition,
    day_from_key,
    keep,
    merged_into,
    object_key,
    survivors,
)
from functions.shared.archive_parquet import encode, rewrite, rows_of
from functions.shared.events import CanonicalEvent
from functions.shared.resolved import ProfileMerged, ResolvedEvent

T0 = datetime(2026, 3, 14, 23, 59, 30, tzinfo=UTC)


def resolved(profile: str, message_id: str, received: datetime, **extra: Any) -> ResolvedEvent:
    fields: dict[str, Any] = {
        "messageId": message_id,
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "anon-1",
        "properties": {"product_id": "sku-1", "price": 12.5},
        "context": {"ip": "203.0.113.0", "page": {"path": "/p/1"}},
        "source": {"name": "web", "protocol": "segment"},
        # A client clock years behind: the partition still follows the server's receipt.
        "timestamp": received - timedelta(days=800),
        "receivedAt": received,
        **extra,
    }
    return ResolvedEvent(profile_id=profile, event=CanonicalEvent.model_validate(fields))


def merge(survivor: str, loser: str, at: datetime = T0) -> ProfileMerged:
    return ProfileMerged(
        merge_id=f"{survivor}<{loser}", survivor=survivor, loser=loser, at=at, rule="deterministic"
    )


def test_an_event_row_is_flat_with_its_profile_and_the_servers_day() -> None:
    table, row = archive_row(resolved("p1", "m1", T0))
    assert table == EVENTS
    assert row["profile_id"] == "p1" and row["message_id"] == "m1"
    assert row["type"] == "track" and row["event"] == "Product Viewed"
    assert '"product_id":"sku-1"' in row["properties"]
    assert '"ip":"203.0.113.0"' in row["context"]  # what ingest left: truncated already
    grouped = by_partition([(table, row), archive_row(resolved("p1", "m2", T0 + timedelta(1)))])
    assert sorted(grouped) == [(EVENTS, "2026-03-14"), (EVENTS, "2026-03-15")]


def test_merges_go_to_their_own_table() -> None:
    table, row = archive_row(merge("a", "b"))
    assert table == MERGES and row["survivor"] == "a" and row["loser"] == "b"


def test_the_file_name_is_the_shard_and_first_position_so_a_redo_replaces_it() -> None:
    key = object_key(EVENTS, "2026-03-14", "shardId-000000000001", "4960")
    assert key == "events/dt=2026-03-14/shardId-000000000001-4960.parquet"
    assert day_from_key(key) == "2026-03-14"


def test_the_buffer_is_due_by_size_or_by_age() -> None:
    buffer = ArchiveBuffer(BufferRule(max_bytes=100, max_age_s=10))
    assert not buffer.due(0)
    buffer.add("1", 40, None, now=5.0)
    assert buffer.first_sequence == "1" and not buffer.due(14.9)
    assert buffer.due(15.0)
    buffer.add("2", 60, archive_row(resolved("p", "m", T0)), now=6.0)
    assert buffer.full() and buffer.due(6.0)
    assert buffer.last_sequence == "2" and len(buffer.rows) == 1


def test_merge_chains_end_at_the_last_survivor() -> None:
    merges = [{"survivor": "b", "loser": "a"}, {"survivor": "c", "loser": "b"}]
    assert survivors(merges) == {"a": "c", "b": "c"}
    assert merged_into({"c"}, merges) == {"a", "b", "c"}
    assert merged_into({"b"}, merges) == {"a", "b"}
    # A cycle (identity never writes one) ends instead of looping.
    assert set(survivors([{"survivor": "x", "loser": "y"}, {"survivor": "y", "loser": "x"}]))


def test_an_erasure_drops_rows_received_up_to_it_and_keeps_a_fresh_opt_ins() -> None:
    request = ErasureRequest("r1", ("p1",), at=T0)
    before = archive_row(resolved("p1", "m1", T0))
    after = archive_row(resolved("p1", "m2", T0 + timedelta(seconds=1)))
    other = archive_row(resolved("p2", "m3", T0))
    assert not keep(*before, [request])
    assert keep(*after, [request]) and keep(*other, [request])
    assert not keep(*archive_row(merge("p1", "p9")), [request])
    assert ErasureRequest.from_json(request.to_json()) == request


def test_parquet_round_trip_and_the_rewrite_removes_only_the_persons_rows() -> None:
    rows = [archive_row(resolved(p, f"m-{p}", T0))[1] for p in ("p1", "p2", "p1")]
    data = encode(EVENTS, rows)
    assert [r["profile_id"] for r in rows_of(data)] == ["p1", "p2", "p1"]
    assert rows_of(data)[0]["received_at"] == T0.replace(microsecond=0)
    untouched, gone = rewrite(EVENTS, data, [ErasureRequest("r", ("p3",), T0)])
    assert untouched is None and gone == 0
    body, gone = rewrite(EVENTS, data, [ErasureRequest("r", ("p1",), T0)])
    assert gone == 2 and body is not None
    assert [r["profile_id"] for r in rows_of(body)] == ["p2"]
    emptied, gone = rewrite(EVENTS, body, [ErasureRequest("r", ("p2",), T0)])
    assert gone == 1 and emptied is not None and rows_of(emptied) == []
