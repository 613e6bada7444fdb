"""What the consent table holds: state per hashed identifier, and its audit trail.

Shared by the consent step (which decides) and the API (which exports and
erases), so both read and write the same records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

MAX_LINKED = 50  # identifiers remembered per identifier, so erasure reaches them all


@dataclass(frozen=True)
class CategoryDecision:
    granted: bool
    at: datetime
    source: str
    message_id: str

    def newer_than(self, other: CategoryDecision | None) -> bool:
        return other is None or (self.at, self.message_id) > (other.at, other.message_id)


@dataclass
class ConsentState:
    """One identifier's consent, keyed by its salted hash (never the raw value)."""

    key: str
    categories: dict[str, CategoryDecision] = field(default_factory=dict)
    suppressed: bool = False
    erased_at: datetime | None = None
    linked: set[str] = field(default_factory=set)
    changed: bool = False


@dataclass(frozen=True)
class AuditEntry:
    """One change to one identifier's consent (append-only history)."""

    key: str
    at: datetime
    message_id: str
    source: str
    changes: dict[str, dict[str, bool | None]]  # category -> {"from": ..., "to": ...}
