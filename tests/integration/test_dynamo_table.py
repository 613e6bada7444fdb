"""DynamoTable: whole-request throttling is retried like unprocessed items, then reported."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.shared.dal.dynamo import DynamoTable, StorageThrottled
from infra.local.aws import table_definition
from infra.topology import TOPOLOGY


class Throttling:
    """A real moto client whose first `times` batch calls are refused for capacity."""

    def __init__(self, client, times: int) -> None:
        self.client, self.left = client, times

    def _maybe_refuse(self, operation: str) -> None:
        if self.left > 0:
            self.left -= 1
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
            raise ClientError(error, operation)

    def batch_get_item(self, **kwargs):
        self._maybe_refuse("BatchGetItem")
        return self.client.batch_get_item(**kwargs)

    def batch_write_item(self, **kwargs):
        self._maybe_refuse("BatchWriteItem")
        return self.client.batch_write_item(**kwargs)


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_definition(TOPOLOGY.table("consent"), "t"))
        yield client


def test_throttled_requests_are_retried_with_backoff(dynamodb):
    sleeps: list[float] = []
    table = DynamoTable("t", Throttling(dynamodb, times=2), sleep=sleeps.append)
    table.batch_write([{"pk": "a", "sk": "state", "v": 1}])
    table.dynamodb.left = 2
    assert table.batch_get([{"pk": "a", "sk": "state"}]) == [{"pk": "a", "sk": "state", "v": 1}]
    assert len(sleeps) == 4


def test_throttled_past_the_last_attempt_is_storage_throttled(dynamodb):
    table = DynamoTable("t", Throttling(dynamodb, times=99), sleep=lambda _: None)
    with pytest.raises(StorageThrottled):
        table.batch_get([{"pk": "a", "sk": "state"}])
    with pytest.raises(StorageThrottled):
        table.batch_write([{"pk": "a", "sk": "state"}])


def test_other_errors_are_not_swallowed(dynamodb):
    table = DynamoTable("missing-table", dynamodb, sleep=lambda _: None)
    with pytest.raises(ClientError):
        table.batch_get([{"pk": "a", "sk": "state"}])
