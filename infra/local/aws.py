"""The wiring table's resources, created on a moto server instead of AWS.

Table, stream, queue and bucket definitions come from `infra/topology.py`,
the same rows the CDK stack reads, so local and deployed cannot drift.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from functions.shared.config import BeaconConfig
from infra.local.destinations import local_secret_value
from infra.local.local_identity import ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY
from infra.local.moto_process import wait_until_ready
from infra.topology import ResourceNames, Table, Topology

_ROOT = Path(__file__).resolve().parents[2]
LOCAL_REGION = "us-east-1"
# The operator: the admin user the moto process creates (infra/local/local_identity.py).
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ADMIN_ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET_ACCESS_KEY,
}
# What a boto3 client made outside any function's session gets in the local
# stack's process: no identity at all, so that it fails loudly
# (UnrecognizedClientException) instead of quietly acting as the admin.
NO_IDENTITY = {"AWS_ACCESS_KEY_ID": "AKIANOFUNCTIONBOUND0", "AWS_SECRET_ACCESS_KEY": "none"}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


ADMIN = Credentials(ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY)


@dataclass(frozen=True)
class LocalAws:
    """A running moto server and how to reach it, as the admin unless `credentials`
    name another identity (a function's role)."""

    endpoint: str
    region: str = LOCAL_REGION
    credentials: Credentials = ADMIN
    server_pid: int | None = None  # the moto process, when the local stack started it

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            region_name=self.region,
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            aws_session_token=self.credentials.session_token,
        )

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint)

    def acting_as(self, credentials: Credentials) -> LocalAws:
        return LocalAws(
            endpoint=self.endpoint,
            region=self.region,
            credentials=credentials,
            server_pid=self.server_pid,
        )

    def environment(self) -> dict[str, str]:
        """What makes every boto3 client in this process talk to moto (with no identity:
        each function's clients get its role's, `infra/local/iam.py`)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **NO_IDENTITY,
        }


@contextmanager
def moto_server(host: str, port: int, enforce_iam: bool = True) -> Iterator[LocalAws]:
    """moto with Beacon's fixes in a child process (infra/local/moto_process.py): the
    handlers and moto no longer share one interpreter, and a killed parent leaves
    no orphan (the child watches its parent). It enforces IAM (`enforce_iam=False`
    only to measure what that costs)."""
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "infra.local.moto_process",
            "--host",
            host,
            "--port",
            str(port),
            "--parent-pid",
            str(os.getpid()),
            *([] if enforce_iam else ["--no-iam"]),
        ],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(process.stdout)
        # Drain what moto prints later (werkzeug's warnings), or a full pipe blocks it.
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
        yield LocalAws(endpoint=f"http://{host}:{port}", server_pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def point_process_at(aws: LocalAws) -> None:
    """Handlers run in this process: their boto3 clients must find moto, never AWS."""
    os.environ.update(aws.environment())


def provisioned(aws: LocalAws, topology: Topology, names: ResourceNames) -> bool:
    """True if this moto already holds the stack (a restart against a kept moto)."""
    streams = aws.client("kinesis").list_streams()["StreamNames"]
    return names.stream(topology.streams[0].name) in streams


def provision(
    aws: LocalAws,
    topology: Topology,
    names: ResourceNames,
    config: BeaconConfig,
    write_keys: dict[str, str] | None = None,
    admin_key: str | None = None,
) -> None:
    """Create every stream, table, queue, bucket and secret of the wiring table."""
    kinesis = aws.client("kinesis")
    for stream in topology.streams:
        kinesis.create_stream(StreamName=names.stream(stream.name), ShardCount=stream.shards)
    dynamodb = aws.client("dynamodb")
    for table in topology.tables:
        dynamodb.create_table(**table_definition(table, names.table(table.name)))
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=names.table(table.name),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
    sqs = aws.client("sqs")
    urls: dict[str, str] = {}
    # Dead-letter queues first, so redrive policies can name them.
    for queue in sorted(topology.queues, key=lambda q: q.dead_letter is not None):
        attributes = {
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(queue.retention_days * 86400),
        }
        if queue.dead_letter:
            dlq_arn = sqs.get_queue_attributes(
                QueueUrl=urls[queue.dead_letter], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            )
        urls[queue.name] = sqs.create_queue(
            QueueName=names.queue(queue.name), Attributes=attributes
        )["QueueUrl"]
    s3 = aws.client("s3")
    for bucket in topology.buckets:
        s3.create_bucket(Bucket=names.bucket(bucket.name))
    secrets = aws.client("secretsmanager")
    keys = write_keys or {}
    for source in config.sources:
        secrets.create_secret(
            Name=source.write_key_secret,
            SecretString=keys.get(source.name, source.local_write_key),
        )
        if source.identity_verification_secret:
            secrets.create_secret(
                Name=source.identity_verification_secret,
                SecretString=source.local_identity_verification_key,
            )
    secrets.create_secret(
        Name=config.admin.admin_key_secret,
        SecretString=admin_key or config.admin.local_admin_key,
    )
    secrets.create_secret(
        Name=config.consent.identifier_salt_secret, SecretString=os.urandom(32).hex()
    )
    # One secret per name; destinations sharing a credential share it.
    for name, destination in {d.secret.secret_name: d for d in config.destinations}.items():
        secrets.create_secret(Name=name, SecretString=local_secret_value(destination))
    if config.ingest.ip_hash_salt_secret:
        secrets.create_secret(
            Name=config.ingest.ip_hash_salt_secret, SecretString=os.urandom(16).hex()
        )


def table_definition(table: Table, physical_name: str) -> dict[str, Any]:
    """CreateTable arguments for a wiring-table row (also used by integration tests)."""
    attributes = {table.partition_key}
    keys = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    if table.sort_key:
        attributes.add(table.sort_key)
        keys.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
    indexes = []
    for index in table.indexes:
        index_keys = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        attributes.add(index.partition_key)
        if index.sort_key:
            attributes.add(index.sort_key)
            index_keys.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": index_keys,
                "Projection": {"ProjectionType": index.projection},
            }
        )
    definition: dict[str, Any] = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)
        ],
    }
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    return definition
