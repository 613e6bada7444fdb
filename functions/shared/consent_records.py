"""What the consent table holds: state per hashed identifier, and its audit trail.

Shared by the consent step (which decides) and the API (which exports and
erases), so both read and write the same records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

MAX_LINKED = 50  # identifiers remembered per identifier, so erasure reaches them all
# Decisions kept per category: enough to judge a replayed or late event by the
# decision in force at its own time, not by whatever came after.
MAX_HISTORY = 10


@dataclass(frozen=True)
class CategoryDecision:
    granted: bool
    at: datetime  # in force from: never later than Beacon received it
    source: str
    message_id: str
    received: datetime | None = None  # when Beacon received it (None: stored before, = at)
    # A grant from a source with no key (the Snowplow pixel and tp2): it holds for
    # the device ids it came with, never for a user id, email or external id.
    device_only: bool = False

    @property
    def received_at(self) -> datetime:
        return self.received or self.at

    def newer_than(self, other: CategoryDecision | None) -> bool:
        return other is None or self.order > other.order

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.at, self.message_id)


def in_force(history: list[CategoryDecision], at: datetime) -> CategoryDecision | None:
    """The newest decision taken at or before `at` (history is oldest first)."""
    found = None
    for decision in history:
        if decision.at <= at:
            found = decision
    return found


@dataclass
class ConsentState:
    """One identifier's consent, keyed by its salted hash (never the raw value)."""

    key: str
    categories: dict[str, list[CategoryDecision]] = field(default_factory=dict)  # oldest first
    suppressed: bool = False
    erased_at: datetime | None = None
    linked: set[str] = field(default_factory=set)
    changed: bool = False

    def latest(self, category: str) -> CategoryDecision | None:
        history = self.categories.get(category)
        return history[-1] if history else None

    def insert(self, category: str, decision: CategoryDecision) -> bool:
        """Add a decision to the history; True if the history changed.

        Idempotent, and only changes are kept: Segment's consent wrapper repeats the
        preferences on every event, and a repeat of what is already in force at that
        time adds nothing (nor a write, nor an audit entry).
        """
        history = self.categories.setdefault(category, [])
        if any(d.order == decision.order for d in history):
            return False
        current = in_force(history, decision.at)
        if current is not None and current.granted == decision.granted:
            return False
        if len(history) >= MAX_HISTORY and decision.order < history[0].order:
            return False  # older than all we keep: it would be trimmed at once
        history.append(decision)
        history.sort(key=lambda d: d.order)
        del history[:-MAX_HISTORY]
        self.changed = True
        return True


@dataclass(frozen=True)
class AuditEntry:
    """One change to one identifier's consent (append-only history)."""

    key: str
    at: datetime
    message_id: str
    source: str
    changes: dict[str, dict[str, bool | None]]  # category -> {"from": ..., "to": ...}
