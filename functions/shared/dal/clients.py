"""boto3 clients, created once per container and shared by a function's modules.

boto3 honours AWS_ENDPOINT_URL, which the local stack sets to its moto
server, so the same code talks to AWS or to moto without knowing which.

On Lambda a function's clients use its role's credentials (the default
session). The local stack runs every function in one process, each with its
own role: it binds that function's session around each invocation
(`session_for_clients`), and the clients made while it is bound are that
function's, cached per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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

_bound_session: ContextVar[boto3.session.Session | None] = ContextVar(
    "beacon_boto3_session", default=None
)


@cache
def _client(service: str, session: boto3.session.Session | None) -> Any:
    return (session or boto3.session.Session()).client(service, config=_CONFIG)


class _Clients:
    """`client(service)`; `client.cache_clear()` forgets every client (tests)."""

    def __call__(self, service: str) -> Any:
        return _client(service, _bound_session.get())

    def cache_clear(self) -> None:
        _client.cache_clear()


client = _Clients()


@contextmanager
def session_for_clients(session: boto3.session.Session | None) -> Iterator[None]:
    """Clients made in this block (this thread and context) use `session`."""
    token = _bound_session.set(session)
    try:
        yield
    finally:
        _bound_session.reset(token)


def bound_session() -> boto3.session.Session | None:
    """The session bound here, for code that must hand it to another thread."""
    return _bound_session.get()
