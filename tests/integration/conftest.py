"""Integration fixtures: the wiring table's resources on moto.

Two ways to reach moto:

* `mocked_aws`: moto in-process (`mock_aws`), for code that takes a boto3 client;
* `local_aws`: the real `moto_server` on a free port, for the pollers, which
  build their own clients against an endpoint.

Resources are always created from the wiring table (`TOPOLOGY`), never from
hand-written definitions, so the tests exercise what deploys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.aws import LocalAws, moto_server
from tests.integration.aws_helpers import HOST, REGION, free_port


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, and no endpoint override left behind by another test."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def mocked_aws(aws_environment: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def kinesis(mocked_aws: None) -> Any:
    return boto3.client("kinesis", region_name=REGION)


@pytest.fixture
def s3(mocked_aws: None) -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    """A real moto server (threaded, in this process) on a free port."""
    with moto_server(HOST, free_port()) as aws:
        yield aws
