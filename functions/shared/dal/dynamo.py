"""Batched DynamoDB access: BatchGetItem / BatchWriteItem with unprocessed-item retries.

Every step reads the items a batch touches in as few BatchGetItem calls as
the 100-key limit allows, and writes what changed in 25-item BatchWriteItem
calls. Items DynamoDB leaves unprocessed (throttling) are retried with
backoff (`retry.py`); if some still are after the last attempt,
`StorageThrottled` tells the step to report those records as batch item failures.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Unpack

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.shared.dal.clients import client
from functions.shared.dal.retry import Retrying, RetryOptions

MAX_GET = 100
MAX_WRITE = 25
# What DynamoDB answers when it refuses a whole request for capacity: retried like
# unprocessed items, never raised as a crash.
THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StorageThrottled(RuntimeError):
    """DynamoDB kept refusing some items after every retry."""


# Conditional writes cannot be batched (BatchWriteItem takes no conditions), and one
# after the other they cost a round trip each: 200 new visitors in a batch were 400
# sequential PutItems. Side by side they cost the slowest one. Sized under the
# client's connection pool (clients.py), so no write waits for a connection.
SIDE_BY_SIDE = 16
_writers = ThreadPoolExecutor(max_workers=SIDE_BY_SIDE, thread_name_prefix="dynamodb-write")


def side_by_side(writes: Sequence[Callable[[], None]]) -> None:
    """Run independent single writes at once; when all have finished, raise the first
    failure (in the order given). What succeeded stays written, as it would have
    before the failing one in a sequential loop: callers' retries already expect a
    partly done commit."""
    if len(writes) <= 1:
        for write in writes:
            write()
        return
    # Each write runs in a copy of the caller's context (observability, measurement).
    futures = [_writers.submit(contextvars.copy_context().run, write) for write in writes]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in data.items() if v is not None and v != set()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


class DynamoTable(Retrying):
    def __init__(
        self, name: str, dynamodb: Any | None = None, **retry: Unpack[RetryOptions]
    ) -> None:
        retry.setdefault("max_attempts", 5)
        super().__init__(**retry)
        self.name = name
        self._dynamodb = dynamodb
        self.read_calls = 0
        self.write_calls = 0
        self.items_read = 0
        self.items_written = 0
        self._counting = threading.Lock()  # single writes may run side by side

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def get(self, key: dict[str, str], *, consistent: bool = False) -> dict[str, Any] | None:
        """One GetItem (eventually consistent unless asked: half the read units)."""

        def read() -> Any:
            self.read_calls += 1
            return self.dynamodb.get_item(
                TableName=self.name, Key=to_item(key), ConsistentRead=consistent
            )

        try:
            answer = read()
        except ClientError as err:
            if err.response["Error"]["Code"] in THROTTLED:
                raise StorageThrottled(f"throttled reading {self.name}") from err
            raise
        item = answer.get("Item")
        if item is None:
            return None
        self.items_read += 1
        return from_item(item)

    def batch_get(
        self, keys: Sequence[dict[str, str]], *, consistent: bool = True
    ) -> list[dict[str, Any]]:
        """The items that exist among `keys` (plain dicts of key attribute -> string)."""
        unique = list({tuple(sorted(k.items())): k for k in keys}.values())
        found: list[dict[str, Any]] = []

        def get(pending: list[dict[str, Any]], _: int) -> list[dict[str, Any]]:
            self.read_calls += 1
            try:
                answer = self.dynamodb.batch_get_item(
                    RequestItems={self.name: {"Keys": pending, "ConsistentRead": consistent}}
                )
            except ClientError as err:
                if err.response["Error"]["Code"] not in THROTTLED:
                    raise
                return pending
            items = answer.get("Responses", {}).get(self.name, [])
            self.items_read += len(items)
            found.extend(from_item(i) for i in items)
            left: list[dict[str, Any]] = (
                answer.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
            )
            return left

        for start in range(0, len(unique), MAX_GET):
            pending = self.retry_pending([to_item(k) for k in unique[start : start + MAX_GET]], get)
            if pending:
                raise StorageThrottled(f"{len(pending)} keys of {self.name} left unread")
        return found

    def batch_write(
        self, puts: Iterable[dict[str, Any]] = (), deletes: Iterable[dict[str, str]] = ()
    ) -> None:
        requests = [{"PutRequest": {"Item": to_item(p)}} for p in puts]
        requests += [{"DeleteRequest": {"Key": to_item(d)}} for d in deletes]

        def write(pending: list[dict[str, Any]], _: int) -> list[dict[str, Any]]:
            self.write_calls += 1
            try:
                answer = self.dynamodb.batch_write_item(RequestItems={self.name: pending})
            except ClientError as err:
                if err.response["Error"]["Code"] not in THROTTLED:
                    raise
                return pending
            left: list[dict[str, Any]] = answer.get("UnprocessedItems", {}).get(self.name, [])
            self.items_written += len(pending) - len(left)
            return left

        for start in range(0, len(requests), MAX_WRITE):
            pending = self.retry_pending(requests[start : start + MAX_WRITE], write)
            if pending:
                raise StorageThrottled(f"{len(pending)} writes to {self.name} left unprocessed")

    def query_partition(self, pk: str, sk_prefix: str | None = None) -> list[dict[str, Any]]:
        """Every item of one partition (optionally under a sort-key prefix), all pages."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if sk_prefix:
            condition += " AND begins_with(sk, :sk)"
            values[":sk"] = {"S": sk_prefix}
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        return [item for page in self._pages(kwargs) for item in page]

    def query_from(self, pk: str, sk_from: str) -> list[dict[str, Any]]:
        """Every item of one partition whose sort key is at least `sk_from`, all pages,
        strongly consistent (a write that has returned is seen); StorageThrottled if
        DynamoDB refuses it for capacity."""
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk AND sk >= :sk",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":sk": {"S": sk_from}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        for page in self._pages(kwargs, throttled=f"{self.name}/{pk}"):
            items += page
            self.items_read += len(page)
        return items

    def query_index(
        self,
        index: str,
        partition: tuple[str, str],
        sort_at_most: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Up to `limit` items of one index partition, oldest sort key first (a Query, never
        a Scan): `partition` is (attribute, value), `sort_at_most` (attribute, upper bound)."""
        names = {"#p": partition[0]}
        values: dict[str, Any] = {":p": {"S": partition[1]}}
        condition = "#p = :p"
        if sort_at_most is not None:
            names["#s"] = sort_at_most[0]
            values[":s"] = {"S": sort_at_most[1]}
            condition += " AND #s <= :s"
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": limit,
        }
        items: list[dict[str, Any]] = []
        pages = self._pages(kwargs, throttled=f"{self.name}/{index}")
        while len(items) < limit and (page := next(pages, None)) is not None:
            items += page
        return items[:limit]

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        page_size: int = 500,
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages of one segment of a paginated Scan (eventually consistent: half the
        read units), as plain dicts, asked for one at a time. Bulk jobs only (the
        profile export); a page refused for capacity is asked again with backoff, and
        StorageThrottled once `max_attempts` calls were refused."""
        kwargs: dict[str, Any] = {"TableName": self.name, "Limit": page_size}
        if segments > 1:
            kwargs |= {"Segment": segment, "TotalSegments": segments}
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = to_item(values)
        answers: list[dict[str, Any]] = []

        def read(pending: list[int], _: int) -> list[int]:
            self.read_calls += 1
            try:
                answers.append(self.dynamodb.scan(**kwargs))
            except ClientError as err:
                if err.response["Error"]["Code"] not in THROTTLED:
                    raise
                return pending
            return []

        while True:
            answers.clear()
            if self.retry_pending([1], read):
                raise StorageThrottled(f"scan of {self.name} throttled")
            answer = answers[-1]
            items = [from_item(i) for i in answer.get("Items", [])]
            self.items_read += len(items)
            yield items
            if "LastEvaluatedKey" not in answer:
                return
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _pages(
        self, kwargs: dict[str, Any], throttled: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages of one Query (asked for one at a time), as plain dicts. With
        `throttled` (what is queried), a refusal for capacity is StorageThrottled."""
        while True:
            self.read_calls += 1
            try:
                answer = self.dynamodb.query(**kwargs)
            except ClientError as err:
                if throttled is not None and err.response["Error"]["Code"] in THROTTLED:
                    raise StorageThrottled(f"query of {throttled} throttled") from err
                raise
            yield [from_item(i) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def update(self, request: Update) -> None:
        """One conditional UpdateItem; ConditionFailed if the condition did not hold."""
        self._single_write(
            str(request.key),
            lambda: self.dynamodb.update_item(TableName=self.name, **request.arguments()),
        )

    def put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> None:
        """One conditional PutItem (`values` in wire format); ConditionFailed if it failed."""
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "Item": to_item(item),
            "ConditionExpression": condition,
        }
        if values:
            arguments["ExpressionAttributeValues"] = values
        self._single_write(str(item.get("pk")), lambda: self.dynamodb.put_item(**arguments))

    def delete_if(self, key: dict[str, str], condition: str, values: dict[str, Any]) -> None:
        """One conditional DeleteItem (`values` in wire format); ConditionFailed if it failed."""
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        self._single_write(str(key.get("pk")), lambda: self.dynamodb.delete_item(**arguments))

    def _single_write(self, what: str, call: Callable[[], Any]) -> None:
        with self._counting:
            self.write_calls += 1
            self.items_written += 1
        try:
            call()
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(f"{what} changed since it was read") from err
            if code in THROTTLED:
                raise StorageThrottled(f"{code} writing {what}") from err
            raise

    def transact_update(self, requests: Sequence[Update]) -> None:
        """Several updates that happen together or not at all (TransactWriteItems)."""
        self.write_calls += 1
        self.items_written += len(requests)
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {"Update": {"TableName": self.name, **r.arguments()}} for r in requests
                ]
            )
        except ClientError as err:
            code = err.response["Error"]["Code"]
            reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
            if code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
                raise ConditionFailed(f"{requests[0].key} changed since it was read") from err
            if code in THROTTLED or code in TRANSACTION_CONTENTION:
                raise StorageThrottled(f"{code} in a transaction on {self.name}") from err
            raise


# Another transaction held one of the items: retried like throttling.
TRANSACTION_CONTENTION = frozenset({"TransactionCanceledException", "TransactionConflictException"})


class ConditionFailed(RuntimeError):
    """A conditional write found the item changed since it was read."""


@dataclass(frozen=True)
class Update:
    """One UpdateItem: `expression` over `#name` / `:value` placeholders (values plain Python)."""

    key: dict[str, str]
    expression: str
    names: dict[str, str]
    values: dict[str, Any]
    condition: str | None = None

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "Key": to_item(self.key),
            "UpdateExpression": self.expression,
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            arguments["ExpressionAttributeValues"] = {
                k: _serializer.serialize(v) for k, v in self.values.items()
            }
        if self.condition:
            arguments["ConditionExpression"] = self.condition
        return arguments
