"""Where each local Kinesis event-source mapping stands, kept in moto.

Lambda keeps its mappings' positions on the AWS side, so a consumer that dies
mid-batch is invoked again with that same batch and then goes on. Locally the
pollers live in the `beacon local` process; to behave the same when that
process is killed and started again against a moto that kept running
(`beacon local --aws-endpoint`), each poller writes, before every invocation,
the range of records it is about to deliver, and when a batch is done, the
last sequence number done. A restarted poller redoes the pending range exactly
(the same batch boundaries, as a Lambda retry has) and resumes after it.

A local-only table: it is not part of the wiring table because in AWS this
state is Lambda's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.topology import ResourceNames

TABLE = "local-event-source-mappings"


def table_name(names: ResourceNames) -> str:
    return f"{names.prefix}{TABLE}"


def create_table(dynamodb: Any, names: ResourceNames) -> None:
    dynamodb.create_table(
        TableName=table_name(names),
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "mapping", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "mapping", "AttributeType": "S"}],
    )


@dataclass(frozen=True)
class Position:
    done_through: str | None  # every record up to this sequence number is done
    pending: tuple[str, str] | None  # first and last sequence of the batch in flight


class Checkpoints:
    def __init__(self, dynamodb: Any, table: str, mapping: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._key = {"mapping": {"S": mapping}}

    def load(self) -> Position:
        item = self._dynamodb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        item = item.get("Item", {})
        done = item.get("done_through", {}).get("S")
        pending = item.get("pending", {}).get("L")
        return Position(done, (pending[0]["S"], pending[1]["S"]) if pending else None)

    def begin(self, first: str, last: str) -> None:
        """The invocation about to run covers `first`..`last`."""
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET pending = :p",
            ExpressionAttributeValues={":p": {"L": [{"S": first}, {"S": last}]}},
        )

    def done(self, last: str) -> None:
        """Every record up to `last` is processed or sent to the on-failure destination."""
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET done_through = :d REMOVE pending",
            ExpressionAttributeValues={":d": {"S": last}},
        )
