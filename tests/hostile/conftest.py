"""Hostile input: what anyone holding the public write key (or no key, through the
pixel) can send. Each test here reproduces a finding of issue 13 on the code
before its fix; its docstring names the finding.

The ingest tests drive the real `Collector` on in-memory storage (the fakes of
tests/unit/ingest); tests that need the next steps feed what ingest wrote into
the real step logic. Tests of the local gateway and the operator pages share
one `beacon local` subprocess (`stack`): they send what no well-behaved client
sends, and the stack's environment and cached clients must not outlive them in
the test worker.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from functions.ingest.canonicalize import RequestMeta
from functions.ingest.collector import Collected, Collector
from functions.ingest.http import HttpRequest
from functions.shared.config import load_config
from functions.shared.events import CanonicalEvent
from functions.shared.privacy import anonymize_ip
from tests.e2e.conftest import (
    RunningStack,
    _synthesized_policies,  # noqa: F401 - autouse: synthesize first
    running_stack,
)
from tests.integration.conftest import aws_environment, mocked_aws  # noqa: F401 - moto fixtures
from tests.unit.ingest.conftest import WRITE_KEYS, MemoryFailedStore, MemoryStream

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RAW_IP = "203.0.113.77"
CONFIG = load_config("beacon.yaml")
BASIC = {"authorization": "Basic " + base64.b64encode(b"local-write-key:").decode()}


@dataclass
class Ingest:
    """The real collector on in-memory storage, with a clock per request."""

    stream: MemoryStream = field(default_factory=MemoryStream)
    failed: MemoryFailedStore = field(default_factory=MemoryFailedStore)
    now: datetime = NOW

    def __post_init__(self) -> None:
        self.collector = Collector(
            config=CONFIG,
            source_for_write_key=WRITE_KEYS.get,
            events=self.stream,
            failed_events=self.failed,
            anonymize_ip=partial(anonymize_ip, handling="truncate"),
        )

    def request(
        self,
        path: str,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    ) -> HttpRequest:
        self.now += timedelta(seconds=1)
        return HttpRequest(
            meta=RequestMeta(
                request_id=f"req-{self.now.timestamp()}",
                received_at=self.now,
                path=path,
                source_ip=RAW_IP,
                user_agent=user_agent,
            ),
            method="GET" if path == "/i" else "POST",
            headers={k.lower(): v for k, v in (headers or {}).items()},
            query=query or {},
            body=body.encode() if isinstance(body, str) else body,
        )

    def segment(self, call: str, payload: Any, headers: dict[str, str] | None = None) -> Collected:
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        return self.collector.segment(call, self.request(f"/v1/{call}", body, headers or BASIC))

    def consent(self, payload: dict[str, Any]) -> Collected:
        return self.collector.consent(self.request("/v1/consent", json.dumps(payload), BASIC))

    def pixel(self, query: dict[str, str]) -> Collected:
        return self.collector.pixel(self.request("/i", query=query))

    def events(self) -> list[CanonicalEvent]:
        return [CanonicalEvent.model_validate_json(r.data) for r in self.stream.records]

    def written_bytes(self) -> int:
        return sum(len(r.data) for r in self.stream.records)


@pytest.fixture
def ingest() -> Ingest:
    return Ingest()


@pytest.fixture(scope="package")
def stack() -> Iterator[RunningStack]:
    yield from running_stack()
