"""KinesisWriter against moto: chunking by count and size, and retrying only refusals."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.shared.dal.kinesis import MAX_BYTES_PER_CALL, KinesisWriter
from functions.shared.streams import StreamRecord
from infra.topology import ResourceNames
from tests.integration.aws_helpers import create_stream, read_stream

THROTTLED = "ProvisionedThroughputExceededException"


class RecordingKinesis:
    """The real (moto) client, with every PutRecords call counted and, on demand, refused.

    `refuse(call, position_in_call, entry)` says which entries of a call Kinesis
    "refuses": those are not forwarded to moto and come back with an ErrorCode,
    in a response whose Records are in the request's order, as Kinesis answers.
    `raise_first` makes the first N calls fail with a ThrottlingException.
    """

    def __init__(
        self,
        real: Any,
        refuse: Callable[[int, int, dict[str, Any]], bool] | None = None,
        raise_first: int = 0,
    ) -> None:
        self.real = real
        self.refuse = refuse
        self.raise_first = raise_first
        self.calls: list[list[dict[str, Any]]] = []  # entries of every call, as sent

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append(list(Records))
        if call < self.raise_first:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "PutRecords",
            )
        if self.refuse is None:
            return self.real.put_records(StreamName=StreamName, Records=Records)
        refused = [self.refuse(call, i, entry) for i, entry in enumerate(Records)]
        forwarded = [entry for entry, no in zip(Records, refused, strict=True) if not no]
        written = iter(
            self.real.put_records(StreamName=StreamName, Records=forwarded)["Records"]
            if forwarded
            else []
        )
        results = [
            {"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"}
            if no
            else next(written)
            for no in refused
        ]
        return {"FailedRecordCount": sum(refused), "Records": results}


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def stream(kinesis: Any) -> str:
    return create_stream(kinesis, ResourceNames())


def stored_data(kinesis: Any, stream: str) -> list[bytes]:
    return [r["Data"] for records in read_stream(kinesis, stream).values() for r in records]


def make_records(count: int, keys: int = 7) -> list[StreamRecord]:
    return [
        StreamRecord(partition_key=f"person-{i % keys}", data=f"person-{i % keys}:{i}".encode())
        for i in range(count)
    ]


def test_1200_records_take_three_calls_and_keep_per_key_order(kinesis: Any, stream: str) -> None:
    client = RecordingKinesis(kinesis)
    writer = KinesisWriter(stream, kinesis=client, sleep=SleepRecorder())
    records = make_records(1200)

    assert writer.put(records) == []

    assert [len(call) for call in client.calls] == [500, 500, 200]
    assert writer.calls == 3
    per_shard = read_stream(kinesis, stream)
    assert sum(len(rs) for rs in per_shard.values()) == 1200
    seen: dict[str, list[bytes]] = defaultdict(list)
    for shard_records in per_shard.values():
        for record in shard_records:
            seen[record["PartitionKey"]].append(record["Data"])
    expected: dict[str, list[bytes]] = defaultdict(list)
    for record in records:
        expected[record.partition_key].append(record.data)
    assert seen == expected


def test_records_over_five_mib_are_split_by_size(kinesis: Any, stream: str) -> None:
    # Five records of exactly 1 MiB (data + key) fill a call to the byte: the
    # sixth must go in a call of its own.
    key = "person-1"
    data_size = 1024 * 1024 - len(key)
    records = [StreamRecord(key, bytes([i]) * data_size) for i in range(6)]
    client = RecordingKinesis(kinesis)
    writer = KinesisWriter(stream, kinesis=client, sleep=SleepRecorder())

    assert writer.put(records) == []

    assert [len(call) for call in client.calls] == [5, 1]
    for call in client.calls:
        assert sum(len(e["Data"]) + len(e["PartitionKey"]) for e in call) <= MAX_BYTES_PER_CALL
    assert stored_data(kinesis, stream) == [r.data for r in records]


def test_many_mid_sized_records_are_split_by_size(kinesis: Any, stream: str) -> None:
    records = [StreamRecord(f"person-{i}", b"x" * 600 * 1024) for i in range(12)]
    client = RecordingKinesis(kinesis)
    writer = KinesisWriter(stream, kinesis=client, sleep=SleepRecorder())

    assert writer.put(records) == []

    assert [len(call) for call in client.calls] == [8, 4]
    assert len(stored_data(kinesis, stream)) == 12


def test_partial_failure_retries_only_the_refused_entries(kinesis: Any, stream: str) -> None:
    # First call: Kinesis takes the even positions and throttles the odd ones.
    client = RecordingKinesis(kinesis, refuse=lambda call, i, _: call == 0 and i % 2 == 1)
    sleep = SleepRecorder()
    writer = KinesisWriter(stream, kinesis=client, sleep=sleep, base_delay_s=0.05)
    records = make_records(10, keys=3)

    assert writer.put(records) == []

    assert len(client.calls) == 2
    assert [e["Data"] for e in client.calls[1]] == [r.data for r in records[1::2]]
    assert Counter(stored_data(kinesis, stream)) == Counter(r.data for r in records)
    assert len(stored_data(kinesis, stream)) == 10  # each exactly once
    assert len(sleep.delays) == 1  # backed off once, before the one retry
    assert 0 <= sleep.delays[0] <= 0.05 * 2


def test_persistent_refusal_returns_exactly_the_refused_positions(
    kinesis: Any, stream: str
) -> None:
    # Two chunks (500 + 100): refusals in both, so positions must be global.
    stuck = {3, 499, 550}
    records = [
        StreamRecord(f"person-{i % 5}", (b"stuck:" if i in stuck else b"ok:") + str(i).encode())
        for i in range(600)
    ]
    client = RecordingKinesis(kinesis, refuse=lambda _c, _i, e: e["Data"].startswith(b"stuck:"))
    sleep = SleepRecorder()
    writer = KinesisWriter(stream, kinesis=client, sleep=sleep, max_attempts=4)

    assert sorted(writer.put(records)) == sorted(stuck)

    stored = stored_data(kinesis, stream)
    assert Counter(stored) == Counter(r.data for i, r in enumerate(records) if i not in stuck)
    assert len(stored) == 600 - len(stuck)
    # Per chunk: the first call plus 3 retries, each retry only the refused entries.
    assert [len(call) for call in client.calls] == [500, 2, 2, 2, 100, 1, 1, 1]
    assert len(sleep.delays) == 6


def test_client_errors_are_retried_until_the_call_succeeds(kinesis: Any, stream: str) -> None:
    client = RecordingKinesis(kinesis, raise_first=2)
    sleep = SleepRecorder()
    writer = KinesisWriter(stream, kinesis=client, sleep=sleep, base_delay_s=0.05)
    records = make_records(20, keys=4)

    assert writer.put(records) == []

    assert len(client.calls) == 3
    assert all(len(call) == 20 for call in client.calls)
    assert sorted(stored_data(kinesis, stream)) == sorted(r.data for r in records)
    assert len(sleep.delays) == 2
    assert 0 <= sleep.delays[0] <= 0.05 * 2
    assert 0 <= sleep.delays[1] <= 0.05 * 4


def test_client_errors_every_time_return_every_position(kinesis: Any, stream: str) -> None:
    client = RecordingKinesis(kinesis, raise_first=100)
    writer = KinesisWriter(stream, kinesis=client, sleep=SleepRecorder(), max_attempts=3)
    records = make_records(5)

    assert writer.put(records) == [0, 1, 2, 3, 4]

    assert len(client.calls) == 3
    assert stored_data(kinesis, stream) == []
