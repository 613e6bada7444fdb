"""The storage ports every step's logic writes through (implemented in `dal/`).

Logic modules depend on these, never on boto3; tests pass in-memory fakes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from functions.shared.failed_events import FailedEvent
from functions.shared.streams import StreamRecord


class StreamPort(Protocol):
    def put(self, records: Sequence[StreamRecord]) -> list[int]:
        """Write records in order; return the positions of those that could not be written."""
        ...


class FailedEventsPort(Protocol):
    def put(self, failures: Sequence[FailedEvent], request_id: str) -> None:
        """Keep every failure with its reason; raise if that is impossible."""
        ...


class FailedRecordsPort(Protocol):
    """Failed events of the stream and queue steps, whose retries redeliver them."""

    def put_each(self, failures: Sequence[FailedEvent]) -> None:
        """Keep each failure under a key of the record it came from (its
        `request_id`): a redelivered batch writes the same keys again instead of
        adding copies. Raise if that is impossible."""
        ...


class CountersPort(Protocol):
    def record_batch(self, name: str, day: str, batch_id: str, counts: Counter[str]) -> None:
        """Write one batch's counts under its stable batch id (a retry overwrites them)."""
        ...
