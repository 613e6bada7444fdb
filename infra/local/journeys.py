"""The local journey platforms' customers: a delivered message can make them buy.

An experiment needs outcomes. In production the journey platform sends the
message and some people act on it; locally the sinks receive the message and
nobody acts. A sink told to act (`POST /_sink/<name>/act`, admin key) plays the
customers: each `segment.entered` delivery of the named segment converts with
the rate of the person's arm (a variant's name, or `treated`) and, if it does,
the conversion event is sent back to Beacon's ingest API as a server source
would. The draw is a seeded hash of the person and the segment, so a run is
reproducible and a redelivered message decides the same way.

`GET /_sink/<name>/acted` lists every decision (who, which arm, converted or
not): the truth an experiment report is checked against.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

MAX_RATES = 10  # arms per segment (variants are 2-10)


@dataclass(frozen=True)
class Acting:
    """How one sink's customers answer a segment's messages."""

    segment: str
    event: str
    rates: Mapping[str, float]  # arm -> probability of converting after the message
    properties: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)  # e.g. the consent it carries
    seed: int = 0

    @classmethod
    def from_json(cls, data: Any) -> Acting:
        """ValueError naming the field when `data` is not a usable instruction."""
        if not isinstance(data, dict):
            raise ValueError("expected an object with segment, event and rates")
        segment, event, rates = data.get("segment"), data.get("event"), data.get("rates")
        if not isinstance(segment, str) or not segment:
            raise ValueError("segment: a segment id")
        if not isinstance(event, str) or not event:
            raise ValueError("event: the event a converting customer sends")
        if not isinstance(rates, dict) or not 0 < len(rates) <= MAX_RATES:
            raise ValueError(f"rates: 1-{MAX_RATES} arms, each with a probability")
        if not all(isinstance(r, int | float) and 0 <= r <= 1 for r in rates.values()):
            raise ValueError("rates: each probability between 0 and 1")
        properties, context = data.get("properties", {}), data.get("context", {})
        if not isinstance(properties, dict) or not isinstance(context, dict):
            raise ValueError("properties, context: objects")
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise ValueError("seed: an integer")
        rated = {str(k): float(v) for k, v in rates.items()}
        return cls(segment, event, rated, properties, context, seed)

    def converts(self, person: str, arm: str) -> bool:
        digest = hashlib.sha256(f"{self.seed}|{self.segment}|{person}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.rates.get(arm, 0.0)


def arm_named(message: Mapping[str, Any]) -> str:
    """The arm a delivered activation names: its variant, else treated (a held-out
    person gets no message at all)."""
    return str(message.get("variant") or "treated")


@dataclass
class Customers:
    """Decisions per sink; `send` carries a conversion back to Beacon."""

    send: Callable[[dict[str, Any]], None] | None = None
    acting: dict[str, Acting] = field(default_factory=dict)
    acted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def instruct(self, sink: str, acting: Acting) -> None:
        with self._lock:
            self.acting[sink] = acting
            self.acted[sink] = []

    def decisions(self, sink: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.acted.get(sink, []))

    def delivered(self, sink: str, message: Any) -> None:
        """A new (not duplicate) delivery reached `sink`: act on it if told to."""
        acting = self.acting.get(sink)
        if acting is None or not isinstance(message, dict):
            return
        if message.get("type") != "segment.entered" or message.get("segment_id") != acting.segment:
            return
        person = message.get("user_id") or message.get("anonymous_id")
        if not isinstance(person, str):
            return
        arm = arm_named(message)
        converted = acting.converts(person, arm)
        with self._lock:
            self.acted[sink].append({"person": person, "arm": arm, "converted": converted})
        if converted and self.send is not None:
            identity = "userId" if message.get("user_id") else "anonymousId"
            self.send(
                {
                    "type": "track",
                    "event": acting.event,
                    identity: person,
                    "properties": dict(acting.properties),
                    "messageId": str(uuid.uuid4()),
                    "timestamp": datetime.now(UTC).isoformat(),
                    "context": {**acting.context, "library": {"name": "beacon-local-journeys"}},
                }
            )


class IngestSender:
    """Posts an event to `base_url`'s ingest API as the source of `write_key` does, from
    a thread of its own (the sink answers the webhook first). `settle` waits for the
    posts in flight; `sent` and `failed` count them, for a ledger that includes what
    the simulated customers sent."""

    def __init__(self, base_url: str, write_key: str) -> None:
        self.url = f"{base_url}/v1/track"
        self.auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self.sent = 0
        self.failed = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._post, args=(event,), daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def settle(self, timeout_s: float) -> bool:
        """True once no post is in flight (within `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _post(self, event: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - the local stack's own http URL
            self.url,
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "Authorization": self.auth},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
                answer.read()
        except OSError as err:
            logger.warning("a simulated customer's conversion was not sent: %r", err)
            with self._lock:
                self.failed += 1
        else:
            with self._lock:
                self.sent += 1
