"""Calling a function's real handler in-process, the way Lambda calls it."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from functions.shared.dal.clients import session_for_clients
from infra.topology import Function

Handler = Callable[[dict[str, Any], Any], Any]


def _drop_buffered_metrics() -> None:
    """Metrics are switched off locally, but Powertools still buffers them and prints
    the buffer once it holds 100 values; all functions share this process, so it would."""
    from functions.shared.observability import metrics

    metrics.clear_metrics()


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One deployed function: its handler, one invocation at a time.

    Lambda never runs two invocations in one container at once, and handlers
    rely on it (module-level caches, Powertools' current event); a lock keeps
    that true when the HTTP server and the pollers call from many threads.
    `session` is its role's (infra/local/iam.py): the handler's boto3 clients use it.
    """

    def __init__(self, spec: Function, handler: Handler | None = None) -> None:
        self.spec = spec
        self._handler = handler
        self.session: boto3.session.Session | None = None
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors = 0

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler

    def invoke(self, event: dict[str, Any]) -> Any:
        handler = self.handler
        context = LocalContext(
            function_name=self.spec.name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            _deadline=time.monotonic() + self.spec.timeout_s,
        )
        with self._lock, session_for_clients(self.session):
            self.invocations += 1
            try:
                return handler(event, context)
            except Exception:
                self.errors += 1
                raise
            finally:
                _drop_buffered_metrics()
