"""The archive's erasure job on moto: every file the first time, then only what
landed since; the request remembers its last pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.shared.archive import EVENTS, ErasureRequest, archive_row, object_key
from functions.shared.archive_parquet import encode
from functions.shared.dal.archive_store import ArchiveStore, erase_pending
from tests.integration.aws_helpers import REGION
from tests.unit.archive.test_archive_rows import T0, resolved


@pytest.fixture
def store(mocked_aws: None) -> ArchiveStore:
    s3: Any = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="archive")
    return ArchiveStore("archive", s3)


def put(store: ArchiveStore, name: str, *profiles: str) -> None:
    rows = [archive_row(resolved(p, f"{name}-{i}", T0))[1] for i, p in enumerate(profiles)]
    store.put(object_key(EVENTS, "2026-03-14", "shard", name), encode(EVENTS, rows))


def profiles(store: ArchiveStore) -> list[str]:
    return sorted(row["profile_id"] for row in store.rows(EVENTS))


def test_the_job_removes_rows_and_then_what_lands_later(store: ArchiveStore) -> None:
    put(store, "1", "gone", "stays")
    put(store, "2", "stays")
    store.request_erasure(ErasureRequest("r1", ("gone",), at=T0 + timedelta(hours=1)))
    now = datetime.now(UTC)
    assert erase_pending(store, now) == 1
    assert profiles(store) == ["stays", "stays"]
    (request,) = store.erasure_requests()
    assert request.checked_at == now
    # A row received before the erasure that landed after the pass (Firehose's buffer).
    put(store, "3", "gone")
    assert erase_pending(store, datetime.now(UTC)) == 1
    assert profiles(store) == ["stays", "stays"]
    assert erase_pending(store, datetime.now(UTC)) == 0


def test_the_dashboard_timeline_reads_older_history_from_the_archive(
    store: ArchiveStore,
) -> None:
    from cli.dashboard.pages import archived_rows
    from infra.topology import ResourceNames

    put(store, "1", "p1", "p2", "p1")

    class Aws:
        def client(self, service: str) -> Any:
            return store.s3

    names = ResourceNames(overrides={"bucket:archive": "archive"})
    rows = list(archived_rows(Aws(), names, {"p1"}, seen={"1-2"}))  # 1-2: still in the stream
    assert rows == [((T0 - timedelta(days=800)).isoformat(), "track (archive)", "Product Viewed")]


def test_the_local_engine_answers_timestamps_and_the_events_view(store: ArchiveStore) -> None:
    from cli.archive_query import LocalArchive, render

    put(store, "1", "p1", "p2")
    answer = LocalArchive(store).query(
        "SELECT profile_id, timestamp, received_at FROM events ORDER BY profile_id"
    )
    assert answer.columns == ["profile_id", "timestamp", "received_at"]
    assert answer.rows[0][1] == T0 - timedelta(days=800) and answer.rows[0][2] == T0
    first = next(render(answer, "json"))
    assert first.startswith('{"profile_id": "p1", "timestamp": "2024-01-04T23:59:30+00:00"')
