"""Helpers for integration tests: wiring-table resources on moto, and reading them back."""

from __future__ import annotations

import socket
import uuid
from typing import Any

from infra.local.aws import table_definition
from infra.topology import TOPOLOGY, ResourceNames

REGION = "us-east-1"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def unique_names() -> ResourceNames:
    """Physical names no other test uses (the moto server lives for a whole module)."""
    return ResourceNames(prefix=f"it-{uuid.uuid4().hex[:10]}-")


def create_stream(kinesis: Any, names: ResourceNames, logical: str = "events") -> str:
    """Create a wiring-table stream and wait for it; returns its physical name."""
    stream = TOPOLOGY.stream(logical)
    name = names.stream(stream.name)
    kinesis.create_stream(StreamName=name, ShardCount=stream.shards)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    return name


def create_bucket(s3: Any, names: ResourceNames, logical: str = "failed-events") -> str:
    bucket = TOPOLOGY.bucket(logical)
    name = names.bucket(bucket.name)
    s3.create_bucket(Bucket=name)
    return name


def create_table(dynamodb: Any, names: ResourceNames, logical: str) -> str:
    """Create a wiring-table DynamoDB table; returns its physical name."""
    name = names.table(logical)
    dynamodb.create_table(**table_definition(TOPOLOGY.table(logical), name))
    return name


def scan_table(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of `table`, as DynamoDB's wire format has it (every page)."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]


def read_shard(kinesis: Any, stream: str, shard_id: str) -> list[dict[str, Any]]:
    """Every record of one shard, oldest first (bounded: moto answers in one pass)."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    for _ in range(1000):
        answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        records.extend(answer["Records"])
        iterator = answer.get("NextShardIterator")
        if not answer["Records"] or not iterator:
            break
    return records


def shard_ids(kinesis: Any, stream: str) -> list[str]:
    return [shard["ShardId"] for shard in kinesis.list_shards(StreamName=stream)["Shards"]]


def read_stream(kinesis: Any, stream: str) -> dict[str, list[dict[str, Any]]]:
    """Records per shard, each shard in sequence order."""
    return {shard: read_shard(kinesis, stream, shard) for shard in shard_ids(kinesis, stream)}
