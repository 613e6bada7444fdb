"""In-memory stand-ins for ingest's storage ports (plain fakes, not mocks)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

import pytest

from functions.ingest.canonicalize import RequestMeta
from functions.ingest.collector import Collector
from functions.ingest.http import HttpRequest
from functions.shared.config import load_config
from functions.shared.failed_events import FailedEvent
from functions.shared.privacy import anonymize_ip
from functions.shared.streams import StreamRecord

RECEIVED = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
WRITE_KEYS = {"local-write-key": "web", "local-server-write-key": "server"}


class MemoryStream:
    def __init__(self, refuse: set[int] | None = None) -> None:
        self.records: list[StreamRecord] = []
        self.refuse = refuse or set()

    def put(self, records: Sequence[StreamRecord]) -> list[int]:
        refused = [i for i in range(len(records)) if i in self.refuse]
        self.records.extend(r for i, r in enumerate(records) if i not in self.refuse)
        return refused

    def events(self) -> list[dict]:
        return [json.loads(r.data) for r in self.records]


class MemoryFailedStore:
    def __init__(self, broken: bool = False) -> None:
        self.failures: list[FailedEvent] = []
        self.broken = broken

    def put(self, failures: Sequence[FailedEvent], request_id: str) -> None:
        if self.broken:
            raise ConnectionError("S3 is down")
        self.failures.extend(failures)

    def reasons(self) -> list[str]:
        return [f.reason for f in self.failures]


@pytest.fixture
def config():
    return load_config("beacon.yaml")


@pytest.fixture
def stream():
    return MemoryStream()


@pytest.fixture
def failed():
    return MemoryFailedStore()


@pytest.fixture
def collector(config, stream, failed):
    return Collector(
        config=config,
        source_for_write_key=WRITE_KEYS.get,
        events=stream,
        failed_events=failed,
        anonymize_ip=partial(anonymize_ip, handling="truncate"),
    )


def make_request(
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path: str = "/v1/track",
    method: str = "POST",
    source_ip: str = "203.0.113.77",
) -> HttpRequest:
    return HttpRequest(
        meta=RequestMeta(
            request_id="req-1",
            received_at=RECEIVED,
            path=path,
            source_ip=source_ip,
            user_agent="Mozilla/5.0 (test)",
        ),
        method=method,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query=query or {},
        body=body.encode() if isinstance(body, str) else body,
    )
