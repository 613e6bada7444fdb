"""Start `beacon local` as a user would (a subprocess on free ports) and talk to it over HTTP."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.aws import ADMIN
from infra.local.iam import synthesized_policies
from infra.topology import TOPOLOGY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _synthesized_policies() -> None:
    """The functions' IAM policies come from the synthesized stack, cached in .build/iam:
    synthesize once (a minute) before any stack starts, not inside a start's deadline."""
    synthesized_policies(TOPOLOGY, ROOT / "beacon.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningStack:
    url: str
    aws_endpoint: str
    process: subprocess.Popen[str]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id=ADMIN.access_key_id,  # the operator (infra/local/local_identity.py)
            aws_secret_access_key=ADMIN.secret_access_key,
        )

    def stream_records(self, stream: str = "beacon-events") -> list[dict[str, Any]]:
        """Every record in the stream, decoded, with its partition key."""
        kinesis = self.client("kinesis")
        out = []
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
            out += [{"key": r["PartitionKey"], **json.loads(r["Data"])} for r in records]
        return out

    def failed_events(self, bucket: str = "beacon-failed-events") -> list[dict[str, Any]]:
        s3 = self.client("s3")
        out = []
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            out += [{"key": item["Key"], **json.loads(line)} for line in body.splitlines() if line]
        return out


def basic_auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def start_beacon(*args: str, port: int | None = None) -> tuple[subprocess.Popen[str], int, int]:
    port, aws_port = port or free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            *args,
            "--port",
            str(port),
            "--aws-port",
            str(aws_port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return process, port, aws_port


def wait_until_ready(process: subprocess.Popen[str]) -> None:
    """Until `beacon local` says it is up (fails the test if it exits or takes 180 s).

    A guard against a hang, not a timing test: on a shared 2-core machine under load
    a start (moto, the resources, the seven functions' roles) has taken over 60 s."""
    assert process.stdout is not None
    deadline = time.monotonic() + 180
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if "Ctrl-C stops." in line:
            break
        if process.poll() is not None:
            pytest.fail("beacon local exited:\n" + "".join(seen) + process.stdout.read())
    else:
        process.kill()
        pytest.fail("beacon local did not start in 180 s:\n" + "".join(seen))


def stop_beacon(process: subprocess.Popen[str]) -> None:
    process.send_signal(2)  # Ctrl-C: a clean shutdown is part of the contract
    try:
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def running_stack(*arguments: str, port: int | None = None) -> Iterator[RunningStack]:
    """`beacon local [arguments]` started, then stopped with Ctrl-C when the generator
    closes."""
    process, port, aws_port = start_beacon("local", *arguments, port=port)
    wait_until_ready(process)
    try:
        yield RunningStack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}", process)
    finally:
        stop_beacon(process)


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    yield from running_stack()
