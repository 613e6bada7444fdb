"""The local runtime's moto fixes (infra/local/moto_patches.py) change cost, not results.

Random transactions (puts, updates, deletes, condition checks, some failing) run
through moto's own TransactWriteItems on one table and through the narrow-snapshot
version on another: every outcome and every table state after it must match.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item

from infra.local import moto_patches
from tests.integration.aws_helpers import REGION

ACCOUNT = "123456789012"
KEYS = [f"k{n}" for n in range(4)]


@pytest.fixture
def backend(mocked_aws: None) -> Iterator[DynamoDBBackend]:
    moto_patches.apply()
    client = boto3.client("dynamodb", region_name=REGION)
    for name in ("theirs", "ours"):
        client.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    yield dynamodb_backends[ACCOUNT][REGION]


def _op(kind: str, key: str, value: int, guarded: bool) -> dict[str, Any]:
    item_key = {"pk": {"S": key}, "sk": {"S": "s"}}
    condition = {"ConditionExpression": "attribute_exists(pk)"} if guarded else {}
    if kind == "Put":
        return {"Put": {"Item": {**item_key, "n": {"N": str(value)}}, **condition}}
    if kind == "Update":
        return {
            "Update": {
                "Key": item_key,
                "UpdateExpression": "ADD n :v",
                "ExpressionAttributeValues": {":v": {"N": str(value)}},
                **condition,
            }
        }
    if kind == "Delete":
        return {"Delete": {"Key": item_key, **condition}}
    return {"ConditionCheck": {"Key": item_key, "ConditionExpression": "attribute_exists(pk)"}}


operations = st.tuples(
    st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]),
    st.sampled_from(KEYS),
    st.integers(1, 9),
    st.booleans(),
)
transactions = st.lists(st.lists(operations, min_size=1, max_size=4), min_size=1, max_size=8)


def _on(table: str, op: dict[str, Any]) -> dict[str, Any]:
    ((kind, body),) = op.items()
    return {kind: {**body, "TableName": table}}


def _state(backend: DynamoDBBackend, table: str) -> dict[str, Any]:
    items = backend.get_table(table).items
    return {str(h): {str(r): i.to_json() for r, i in rs.items()} for h, rs in items.items() if rs}


def _outcome(run: Any, backend: DynamoDBBackend, table: str, ops: list[dict[str, Any]]) -> Any:
    try:
        run(backend, [_on(table, op) for op in ops])
    except Exception as err:  # the outcome under comparison
        return type(err).__name__, getattr(err, "message", str(err))
    return None


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=transactions)
def test_the_narrow_snapshot_gives_moto_s_results(backend: DynamoDBBackend, batches: Any) -> None:
    for name in ("theirs", "ours"):
        backend.get_table(name).items.clear()
    for batch in batches:
        ops = [_op(*op) for op in batch]
        theirs = _outcome(moto_patches.moto_transact_write_items, backend, "theirs", ops)
        ours = _outcome(moto_patches._transact_write_items, backend, "ours", ops)
        assert ours == theirs
        assert _state(backend, "ours") == _state(backend, "theirs")


def test_models_are_no_longer_kept_after_they_are_gone(backend: DynamoDBBackend) -> None:
    before = len(Item.instances_tracked)  # type: ignore[attr-defined]
    client = boto3.client("dynamodb", region_name=REGION)
    for n in range(50):
        client.put_item(
            TableName="ours", Item={"pk": {"S": "k"}, "sk": {"S": "s"}, "n": {"N": str(n)}}
        )
    assert len(Item.instances_tracked) == before  # type: ignore[attr-defined]


def test_the_backend_list_is_read_once(
    backend: DynamoDBBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import backends

    listed = list(backends.list_of_moto_modules())
    assert {"dynamodb", "kinesis", "s3", "sqs"} <= set(listed)
    monkeypatch.setattr("os.listdir", _no_listing)
    assert list(backends.list_of_moto_modules()) == listed


def _no_listing(path: str) -> list[str]:
    raise AssertionError(f"listed {path} again")


def test_moto_on_a_port_in_use_fails_at_once_and_leaves_no_process() -> None:
    import socket

    from infra.local.aws import moto_server

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(RuntimeError, match="moto did not start"),
            moto_server("127.0.0.1", port),
        ):
            pass  # pragma: no cover - never reached


def _put_from_threads(put: Any, shard: Any, threads: int = 8, each: int = 300) -> None:
    import sys
    import threading

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as a busy server might
    try:
        workers = [
            threading.Thread(
                target=lambda n=n: [put(shard, f"p{n}", f"{n}-{i}", "1") for i in range(each)]
            )
            for n in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(switch)


def test_records_put_to_one_shard_at_once_are_all_kept() -> None:
    from moto.kinesis.models import Shard

    moto_patches.apply()
    ours, theirs = Shard(0, "0", "1", "stream-arn"), Shard(1, "0", "1", "stream-arn")
    # moto's own shard, unlocked, finds its last number moto's way (a list of the keys).
    theirs.get_max_sequence_number = types.MethodType(  # type: ignore[method-assign]
        moto_patches.moto_max_sequence_number, theirs
    )
    _put_from_threads(Shard.put_record, ours)
    _put_from_threads(Shard.put_record.__wrapped__, theirs)  # moto's own, unlocked

    assert len(ours.records) == 8 * 300  # each record its own sequence number
    assert len(theirs.records) < 8 * 300  # what moto lost without the lock


@settings(max_examples=150, deadline=None)
@given(
    puts=st.integers(0, 60),
    position=st.integers(0, 70),
    limit=st.one_of(st.none(), st.integers(1, 30)),
    gap=st.booleans(),
)
def test_reading_a_shard_by_number_gives_moto_s_results(
    puts: int, position: int, limit: int | None, gap: bool
) -> None:
    from moto.kinesis.models import Shard

    moto_patches.apply()
    shard = Shard(0, "0", "1", "stream-arn")
    for n in range(puts):
        shard.put_record(f"key-{n}", "data", "0")
    if gap and puts > 3:
        del shard.records[2]  # not consecutive: read moto's way
    ours = moto_patches._get_records(shard, str(position), limit)
    theirs = moto_patches.moto_get_records(shard, str(position), limit)
    assert [r.sequence_number for r in ours[0]] == [r.sequence_number for r in theirs[0]]
    assert ours[1:] == theirs[1:]
    assert shard.get_max_sequence_number() == (max(shard.records) if shard.records else 0)
    assert shard.get_min_sequence_number() == (min(shard.records) if shard.records else 0)
