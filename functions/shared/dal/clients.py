"""boto3 clients, created once per container and shared by a function's modules.

boto3 honours AWS_ENDPOINT_URL, which the local stack sets to its moto
server, so the same code talks to AWS or to moto without knowing which.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Fail fast inside a Lambda's time budget; the callers retry with backoff of their own.
# The pool holds a connection for each write `dynamo.side_by_side` runs at once.
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=24,
)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)
