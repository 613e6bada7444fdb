"""Failed events: what could not be accepted, kept whole with the reason.

Snowplow's "bad rows": nothing is lost and nothing is silently dropped. Each
record holds the raw input as it arrived (IPs and write keys redacted), so it
can be fixed and replayed; the store is keyed by day and reason. What a client
could use to fill the store — a body refused for its size, or sent without a
valid key — is kept as evidence instead: a bounded prefix, its length and its
SHA-256 (`raw_bytes`, `raw_sha256`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict


class FailedEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    failed_at: AwareDatetime
    step: str  # the pipeline step that gave up: ingest, consent, ...
    reason: str  # machine-readable: invalid_event, event_too_large, unauthorized ...
    message: str  # for people: names the field at fault
    raw: str  # the input as received, redacted (or its first bytes: see raw_sha256)
    raw_bytes: int | None = None  # set when `raw` is only a prefix: the input's length
    raw_sha256: str | None = None  # ... and its SHA-256, to match it to a client's copy
    field: str | None = None
    index: int | None = None
    message_id: str | None = None
    source: str | None = None
    protocol: Literal["segment", "snowplow"] | None = None
    request_id: str | None = None
    path: str | None = None
    retryable: bool = False  # true when the input was fine and storage failed

    def day(self) -> str:
        return self.failed_at.strftime("%Y-%m-%d")


def object_key(step: str, day: str, reason: str, stamp: datetime, request_id: str) -> str:
    """`ingest/dt=2026-11-22/reason=invalid_event/20-45-03.123456-<request id>.jsonl`."""
    return f"{step}/dt={day}/reason={reason}/{stamp.strftime('%H-%M-%S.%f')}-{request_id}.jsonl"


def record_key(failure: FailedEvent) -> str:
    """`segments/dt=2026-11-22/reason=malformed_record/record-<sequence>.jsonl`: the same
    key every time the record's batch is redelivered."""
    record = "".join(c if c.isalnum() or c in "-_." else "_" for c in failure.request_id or "")
    return f"{failure.step}/dt={failure.day()}/reason={failure.reason}/record-{record}.jsonl"
