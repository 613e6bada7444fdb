"""The local Firehose (infra/local/firehose.py) on a real moto server: buffered
writes, nothing lost or doubled across a restart, a refused write retried."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from functions.shared.archive import EVENTS, ErasureRequest
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.resolved import record_json
from infra.local import checkpoints
from infra.local.aws import LocalAws
from infra.local.firehose import LocalDeliveryStream
from infra.topology import TOPOLOGY
from tests.integration.aws_helpers import create_bucket, create_stream, shard_ids, unique_names
from tests.unit.archive.test_archive_rows import T0, resolved

DELIVERY = replace(TOPOLOGY.delivery_streams[0], local_buffer_s=0.3)


class Rig:
    def __init__(self, aws: LocalAws) -> None:
        self.aws = aws
        names = unique_names()
        self.kinesis = aws.client("kinesis")
        self.stream = create_stream(self.kinesis, names, "resolved")
        self.shard = shard_ids(self.kinesis, self.stream)[0]
        self.store = ArchiveStore(create_bucket(aws.client("s3"), names, "archive"), None)
        self.store._s3 = aws.client("s3")
        checkpoints.create_table(aws.client("dynamodb"), names)
        self.positions = checkpoints.Checkpoints(
            aws.client("dynamodb"), checkpoints.table_name(names), "firehose:archive"
        )

    def put(self, count: int, profile: str = "p1") -> list[str]:
        ids = [f"m-{uuid.uuid4().hex}" for _ in range(count)]
        hash_key = self.kinesis.list_shards(StreamName=self.stream)["Shards"][0]
        for message_id in ids:
            self.kinesis.put_record(
                StreamName=self.stream,
                Data=record_json(resolved(profile, message_id, T0)),
                PartitionKey=profile,
                ExplicitHashKey=hash_key["HashKeyRange"]["StartingHashKey"],
            )
        return ids

    def writer(self, **changes: Any) -> LocalDeliveryStream:
        return LocalDeliveryStream(
            self.aws,
            replace(DELIVERY, **changes),
            self.stream,
            self.shard,
            self.store,
            checkpoints=self.positions,
        )

    def archived(self) -> list[str]:
        return [row["message_id"] for row in self.store.rows(EVENTS)]


def until(check: Callable[[], bool], timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def rig(local_aws: LocalAws) -> Rig:
    return Rig(local_aws)


def test_buffered_records_are_written_once_by_age(rig: Rig) -> None:
    ids = rig.put(5)
    writer = rig.writer()
    writer.start()
    try:
        assert until(lambda: sorted(rig.archived()) == sorted(ids))
        assert until(lambda: writer.caught_up_since(0))
        assert writer.stats.batches >= 1 and rig.positions.load().done_through is not None
    finally:
        writer.stop()
    keys = rig.store.files(EVENTS)
    assert all(k.startswith("events/dt=2026-03-14/") for k in keys)
    # Each row says where it sat in the stream (a backfill replays by position).
    rows = list(rig.store.rows(EVENTS))
    assert {r["shard_id"] for r in rows} == {rig.shard}
    assert len({int(r["sequence_number"]) for r in rows}) == len(ids)


def test_a_restart_loses_nothing_buffered_and_doubles_nothing_written(rig: Rig) -> None:
    first = rig.put(3)
    # Stopped before its buffer was due: nothing written, nothing checkpointed.
    writer = rig.writer(local_buffer_s=60.0)
    writer.start()
    assert until(lambda: writer.buffer.last_sequence is not None)
    writer.stop()
    assert rig.archived() == [] and rig.positions.load().done_through is None
    # Written but killed before the checkpoint: the redo writes the same file name again.
    writer = rig.writer()
    records = rig.kinesis.get_records(ShardIterator=writer._resume(), Limit=100)["Records"]
    for record in records:
        writer._add(record, time.monotonic())
    writer._write(writer.buffer)  # in S3, position not saved
    second = rig.put(2)
    writer = rig.writer()
    writer.start()
    try:
        assert until(lambda: len(rig.archived()) == 5)
        time.sleep(0.5)
    finally:
        writer.stop()
    assert sorted(rig.archived()) == sorted(first + second)  # each exactly once


def test_a_refused_write_is_retried_and_the_position_waits_for_it(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = rig.put(2)
    writer = rig.writer()
    real_put = rig.store.put
    refusals = {"left": 2}

    def flaky_put(key: str, body: bytes) -> None:
        if refusals["left"]:
            refusals["left"] -= 1
            raise ConnectionError("S3 unreachable")
        real_put(key, body)

    monkeypatch.setattr(rig.store, "put", flaky_put)
    monkeypatch.setattr(LocalDeliveryStream, "RETRY_FIRST_S", 0.01)
    writer.start()
    try:
        assert until(lambda: sorted(rig.archived()) == sorted(ids))
    finally:
        writer.stop()
    assert writer.stats.write_retries == 2


def test_rows_of_an_erasure_still_on_their_way_are_dropped(rig: Rig) -> None:
    rig.store.request_erasure(ErasureRequest("r1", ("gone",), at=T0))
    kept = rig.put(2, profile="stays")
    rig.put(2, profile="gone")
    writer = rig.writer()
    writer.start()
    try:
        assert until(lambda: writer.stats.records == 4 and writer.caught_up_since(0))
    finally:
        writer.stop()
    assert sorted(rig.archived()) == sorted(kept)
    assert writer.stats.dropped_erased == 2


def test_a_failed_read_starts_again_from_the_checkpoint(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = rig.put(3)
    writer = rig.writer()
    real_get = writer._kinesis.get_records
    failures = {"left": 1}

    def flaky_get(**kwargs: Any) -> Any:
        answer = real_get(**kwargs)
        if failures["left"] and answer["Records"]:
            failures["left"] -= 1
            raise ConnectionError("moto went away")
        return answer

    monkeypatch.setattr(writer._kinesis, "get_records", flaky_get)
    monkeypatch.setattr(LocalDeliveryStream, "RETRY_FIRST_S", 0.01)
    writer.start()
    try:
        assert until(lambda: sorted(rig.archived()) == sorted(ids))
    finally:
        writer.stop()
    assert failures["left"] == 0
