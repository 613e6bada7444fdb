"""Batched DynamoDB access: BatchGetItem / BatchWriteItem with unprocessed-item retries.

Every step reads the items a batch touches in as few BatchGetItem calls as
the 100-key limit allows, and writes what changed in 25-item BatchWriteItem
calls. Items DynamoDB leaves unprocessed (throttling) are retried with
backoff; if some still are after the last attempt, `StorageThrottled` tells
the step to report those records as batch item failures.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.shared.dal.clients import client

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


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in data.items() if v is not None and v != set()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


class DynamoTable:
    def __init__(
        self,
        name: str,
        dynamodb: Any | None = None,
        max_attempts: int = 5,
        base_delay_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._dynamodb = dynamodb
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.sleep = sleep
        self.read_calls = 0
        self.write_calls = 0
        self.items_read = 0
        self.items_written = 0

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def _backoff(self, attempt: int) -> None:
        if attempt:
            self.sleep(random.uniform(0, self.base_delay_s * 2**attempt))  # noqa: S311

    def batch_get(self, keys: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
        """The items that exist among `keys` (plain dicts of key attribute -> string)."""
        unique = list({tuple(sorted(k.items())): k for k in keys}.values())
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), MAX_GET):
            pending = [to_item(k) for k in unique[start : start + MAX_GET]]
            for attempt in range(self.max_attempts):
                if not pending:
                    break
                self._backoff(attempt)
                self.read_calls += 1
                try:
                    answer = self.dynamodb.batch_get_item(
                        RequestItems={self.name: {"Keys": pending, "ConsistentRead": True}}
                    )
                except ClientError as err:
                    if err.response["Error"]["Code"] not in THROTTLED:
                        raise
                    continue
                items = answer.get("Responses", {}).get(self.name, [])
                self.items_read += len(items)
                found.extend(from_item(i) for i in items)
                pending = answer.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
            if pending:
                raise StorageThrottled(f"{len(pending)} keys of {self.name} left unread")
        return found

    def batch_write(
        self, puts: Iterable[dict[str, Any]] = (), deletes: Iterable[dict[str, str]] = ()
    ) -> None:
        requests = [{"PutRequest": {"Item": to_item(p)}} for p in puts]
        requests += [{"DeleteRequest": {"Key": to_item(d)}} for d in deletes]
        for start in range(0, len(requests), MAX_WRITE):
            pending = requests[start : start + MAX_WRITE]
            for attempt in range(self.max_attempts):
                if not pending:
                    break
                self._backoff(attempt)
                self.write_calls += 1
                try:
                    answer = self.dynamodb.batch_write_item(RequestItems={self.name: pending})
                except ClientError as err:
                    if err.response["Error"]["Code"] not in THROTTLED:
                        raise
                    continue
                self.items_written += len(pending)
                pending = answer.get("UnprocessedItems", {}).get(self.name, [])
                self.items_written -= len(pending)
            if pending:
                raise StorageThrottled(f"{len(pending)} writes to {self.name} left unprocessed")

    def query_partition(self, pk: str, sk_prefix: str | None = None) -> list[dict[str, Any]]:
        """Every item of one partition (optionally under a sort-key prefix), all pages."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if sk_prefix:
            condition += " AND begins_with(sk, :sk)"
            values[":sk"] = {"S": sk_prefix}
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        while True:
            self.read_calls += 1
            answer = self.dynamodb.query(**kwargs)
            items.extend(from_item(i) for i in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return items
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
