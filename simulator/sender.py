"""The simulator's side of HTTP: one keep-alive connection per simulator, retrying as
Segment's libraries do, and the report of what was sent, in ledger units.

A ledger unit is one event in an accepted request, or one request that ingest
must refuse whole; `SimulationReport` also counts what may have landed twice (sent
again after no answer or a 5xx) and which failed-event reasons the sender expects.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimulationReport:
    requests: int = 0
    units_sent: int = 0  # ledger units: accepted events + requests refused whole
    # Units sent again after an attempt with no answer or a 5xx: each may have
    # landed too (a duplicate by message id, which the pipeline drops).
    units_resent: int = 0
    expected_failed: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    by_protocol: Counter[str] = field(default_factory=Counter)


class HttpClient:
    """One keep-alive HTTP connection, as a browser or SDK would hold, retrying as
    Segment's libraries do: a connection error, a 429 or a 5xx is sent again with
    exponential backoff (the message ids stay, so the pipeline drops a copy that
    had landed), for up to `retry_for_s`."""

    def __init__(self, endpoint: str, retry_for_s: float = 60.0) -> None:
        url = urllib.parse.urlsplit(endpoint)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.https = url.scheme == "https"
        self.retry_for_s = retry_for_s
        self.unanswered = 0  # attempts sent again: each may or may not have landed
        self._conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        deadline = time.monotonic() + self.retry_for_s
        pause = 0.1
        while True:
            status = self._attempt(method, path, body, headers)
            if status is not None and status != 429 and status < 500:
                return status
            if time.monotonic() + pause > deadline:
                if status is None:
                    raise ConnectionError(f"no answer from {self.host}:{self.port} for {path}")
                return status
            self.unanswered += 1
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def _attempt(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> int | None:
        """The status, or None when the connection failed (a kept-alive connection
        the server closed is reopened once first, as http clients do)."""
        for reopened in (False, True):
            if self._conn is None:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self._conn = cls(self.host, self.port, timeout=30)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                answer = self._conn.getresponse()
                answer.read()
                return answer.status
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if reopened:
                    return None
                self.unanswered += 1  # the server may have taken it before the line dropped
        return None


class Sender:
    """Sends requests over one `HttpClient` and counts them in `report`."""

    def __init__(self, endpoint: str) -> None:
        self.client = HttpClient(endpoint)
        self.report = SimulationReport()

    def post_segment(
        self,
        path: str,
        body: dict[str, Any],
        content_type: str,
        units: int,
        failed: dict[str, int] | None = None,
    ) -> None:
        self.send(
            "POST",
            path,
            json.dumps(body).encode(),
            {"Content-Type": content_type},
            units=units,
            protocol="segment",
            failed=failed,
        )

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        units: int,
        protocol: str,
        failed: dict[str, int] | None = None,
    ) -> None:
        headers = {"User-Agent": "Mozilla/5.0 (Beacon simulator)", **headers}
        unanswered = self.client.unanswered
        status = self.client.send(method, path, body, headers)
        self.report.units_resent += units * (self.client.unanswered - unanswered)
        self.report.requests += 1
        self.report.units_sent += units
        self.report.statuses[status] += 1
        self.report.by_protocol[protocol] += units
        self.report.expected_failed.update(failed or {})
