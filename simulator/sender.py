"""The simulator's side of HTTP: keep-alive connections (one per lane), retrying as
Segment's libraries do, and the report of what was sent, in ledger units.

A ledger unit is one event in an accepted request, or one request that ingest
must refuse whole; `SimulationReport` also counts what may have landed twice (sent
again after no answer or a 5xx) and which failed-event reasons the sender expects.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
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
    """Sends requests and counts them in `report`, over `concurrency` keep-alive
    connections (lanes), as that many browsers and servers would.

    Each lane sends its requests in order on a thread of its own; a shopper's
    requests all go to one lane (`use_lane`), so a shopper's consent, identify and
    events arrive in the order the shopper made them, while shoppers run side by
    side. With one lane, requests go out inline, one at a time. `finish` waits for
    every lane and raises the first connection failure a lane met."""

    def __init__(self, endpoint: str, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.report = SimulationReport()
        self._lock = threading.Lock()
        self._lanes = [_Lane(HttpClient(endpoint), self._count) for _ in range(concurrency)]
        self._lane = self._lanes[0]
        if concurrency > 1:
            for lane in self._lanes:
                lane.start()

    def use_lane(self, n: int) -> None:
        """Send what follows on lane `n` (modulo the lanes): one lane per shopper."""
        self._lane = self._lanes[n % len(self._lanes)]

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
        request = _Request(method, path, body, headers, units, protocol, failed or {})
        if len(self._lanes) == 1:
            self._lane.send(request)
        else:
            self._lane.queue.put(request)

    def finish(self) -> SimulationReport:
        for lane in self._lanes:
            lane.close()
        errors = [lane.error for lane in self._lanes if lane.error is not None]
        if errors:
            raise errors[0]
        return self.report

    def _count(self, request: _Request, status: int, resent: int) -> None:
        with self._lock:
            self.report.units_resent += request.units * resent
            self.report.requests += 1
            self.report.units_sent += request.units
            self.report.statuses[status] += 1
            self.report.by_protocol[request.protocol] += request.units
            self.report.expected_failed.update(request.failed)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    units: int
    protocol: str
    failed: dict[str, int]


class _Lane:
    """One connection and, with more than one lane, the thread that sends on it."""

    def __init__(self, client: HttpClient, count: Callable[[_Request, int, int], None]) -> None:
        self.client = client
        self.count = count
        # Bounded: the simulator waits for a lane rather than holding every request.
        self.queue: queue.Queue[_Request | None] = queue.Queue(maxsize=64)
        self.error: Exception | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="simulator-lane", daemon=True)
        self._thread.start()

    def send(self, request: _Request) -> None:
        unanswered = self.client.unanswered
        status = self.client.send(request.method, request.path, request.body, request.headers)
        self.count(request, status, self.client.unanswered - unanswered)

    def close(self) -> None:
        if self._thread is not None:
            self.queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (request := self.queue.get()) is not None:
            if self.error is None:  # after a failure, drain without sending
                try:
                    self.send(request)
                except Exception as err:
                    self.error = err
