"""Five fixes that make moto fit to run a busy local stack for hours (upstreamable).

moto is built for tests that last seconds; Beacon's local stack runs it for as
long as a developer likes, under a steady stream of writes. Two things in moto
5.2 then cost time and memory in proportion to everything ever written:

1. **Every model instance is kept forever.** `BaseModel.__new__` appends each
   new instance to its class's `instances_tracked` list (it feeds moto's
   `/moto-api/data.json` dashboard). Every DynamoDB item ever written, every
   Kinesis record, every copy stays referenced: 8,000 events grew a separate
   moto process past 2.7 GB within minutes.
2. **TransactWriteItems deep-copies whole tables** to be able to roll back, so
   each transactional profile write costs time and memory in proportion to
   the table (1,000 profiles written this way took 61 s and 1.3 GB; see
   docs/benchmarks.md).
3. **Every request lists moto's package directory.** The server finds the
   backend for a request's host with `list_of_moto_modules()`, which lists and
   stats some 180 folders each time: about 6 % of moto's time under load. The
   folders do not change while it runs, so the list is read once.
4. **Writes are not safe for concurrency**, and the server answers each request
   in a thread of its own. A Kinesis shard numbers a new record "last + 1"
   (moto's own comment: "not safe for concurrency"): two steps putting to one
   shard at once got the same number and one record silently replaced the
   other (a profile change lost about once per 240 shoppers in the experiments
   e2e), and a read iterating the shard while a put grows it can fail. A
   DynamoDB conditional write checks, then writes: two racing writes could both
   pass the check. Shard reads and puts, and DynamoDB's item writes, now hold a
   lock (moto is one interpreter: the lock costs no parallelism it had).
5. **A shard is walked from its first record on every call.** `get_records` scans
   every record to find those after the iterator's position, and a put lists
   every key to find the last: each call costs in proportion to the shard, so a
   long import slowed the whole stack until it stalled (docs/benchmarks.md,
   Import). A shard's sequence numbers are consecutive (each put is "last + 1"),
   so the records after a position are looked up by number, and the first and
   last come from the ends of the ordered dict; a shard whose numbers are not
   consecutive is read moto's way.

`apply()` serializes those writes, turns instance tracking off (moto's data dashboard then lists
nothing; Beacon does not use it), reads the module list once, and replaces
`transact_write_items` with the same algorithm snapshotting only the items the
transaction touches. The local stack's moto process applies them
(infra/local/moto_process.py, also behind `beacon moto`); tests that run moto
in their own process apply them too.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

from moto import backends
from moto.core.common_models import BaseModel
from moto.core.model_instances import model_data
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.kinesis.models import Shard

_applied = False
# moto's own implementation, kept for the test that holds the two to the same results.
moto_transact_write_items = DynamoDBBackend.transact_write_items
moto_get_records = Shard.get_records
moto_max_sequence_number = Shard.get_max_sequence_number


def apply() -> None:
    """Patch moto in this process (idempotent)."""
    global _applied
    if _applied:
        return
    BaseModel.__new__ = _untracked_new  # type: ignore[method-assign]
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked = []  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    Shard.get_records = _get_records  # type: ignore[method-assign,assignment]
    Shard.get_min_sequence_number = _min_sequence_number  # type: ignore[method-assign,assignment]
    Shard.get_max_sequence_number = _max_sequence_number  # type: ignore[method-assign,assignment]
    for cls, names, lock in (
        (Shard, _SHARD_OPERATIONS, threading.RLock()),
        (DynamoDBBackend, _ITEM_WRITES, threading.RLock()),
    ):
        for name in names:
            setattr(cls, name, _holding(lock, getattr(cls, name)))
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    _applied = True


_SHARD_OPERATIONS = (
    "put_record",
    "get_records",
    "get_min_sequence_number",
    "get_max_sequence_number",
    "get_sequence_number_at",
)
_ITEM_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def _holding(lock: threading.RLock, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def held(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return held


def _get_records(shard: Shard, last_sequence_id: str, limit: int | None) -> tuple[Any, int, int]:
    """moto's `Shard.get_records`, by sequence number instead of a walk of the shard."""
    records = shard.records
    if not records:
        return [], int(last_sequence_id), 0
    first, last = next(iter(records)), next(reversed(records))
    if last - first + 1 != len(records):
        return moto_get_records(shard, last_sequence_id, limit)
    start = max(int(last_sequence_id) + 1, first)
    stop = last + 1 if limit is None else min(last + 1, start + max(limit, 0))
    found = [records[n] for n in range(start, stop)]
    if not found:
        return [], int(last_sequence_id), 0
    behind = records[last].created_at - found[-1].created_at
    return found, found[-1].sequence_number, int(behind * 1000)


def _min_sequence_number(shard: Shard) -> int:
    return next(iter(shard.records)) if shard.records else 0


def _max_sequence_number(shard: Shard) -> int:
    return next(reversed(shard.records)) if shard.records else 0


def _untracked_new(cls: type, *_args: Any, **_kwargs: Any) -> Any:
    return object.__new__(cls)


_Touched = tuple[Table, DynamoType, DynamoType | None, Item | None]


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's algorithm, with a snapshot of the touched items instead of the tables."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    touched: list[_Touched] = []
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if op_type != "ConditionCheck":
                hash_value, range_value = self.get_keys_value(table, key)
                touched.append((table, hash_value, range_value, copy.deepcopy(current)))
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            _roll_back(touched)
            raise
        except ConditionalCheckFailed as err:
            errors.append(("ConditionalCheckFailed", str(err.message), original_item))
        except Exception as err:  # reported per item, as moto does
            errors.append((type(err).__name__, str(err), original_item))
    if any(code is not None for code, _, _ in errors):
        _roll_back(touched)
        raise TransactionCanceledException(errors)


def _roll_back(touched: list[_Touched]) -> None:
    """Put every touched item back as it was, newest change first."""
    for table, hash_value, range_value, before in reversed(touched):
        if before is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = before
        else:
            table.items[hash_value] = before  # type: ignore[assignment]
