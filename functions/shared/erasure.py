"""One interface for everything Beacon holds about a person: find it, export it, erase it.

Each step that stores personal data registers a `PersonalData` participant
with the API function, so an erasure or export request reaches every table
and nobody forgets one. A participant may also widen the person (the consent
store knows which identifiers were seen together; the identity graph will
know them all).

What an erasure leaves behind, so that events already past the consent step
when it ran cannot bring the person back (docs/consent.md, "the erasure
window"): the suppression in the consent table, the erased identifiers as
salted hashes in the identity table's recent erasures, and an `erased` marker
per profile id in the profiles and deliveries tables. None of them holds
personal data, and none counts as a record about the person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from functions.shared.identifiers import Identifier


@dataclass
class Person:
    """The identifier asked about, and every key found to belong to the same person."""

    asked_for: Identifier
    keys: set[str] = field(default_factory=set)  # salted hashes of their identifiers
    identifiers: set[Identifier] = field(default_factory=set)  # raw, where known (identity)
    profile_ids: set[str] = field(default_factory=set)


class PersonalData(Protocol):
    name: str

    def widen(self, person: Person) -> None:
        """Add the keys this participant links to the person."""
        ...

    def view(self, person: Person) -> dict[str, Any] | None:
        """What the read API shows (None: this participant knows nothing of them)."""
        ...

    def export(self, person: Person) -> dict[str, Any]:
        """Everything held, for an access request."""
        ...

    def erase(self, person: Person, at: datetime) -> int:
        """Delete everything held; return how many records went."""
        ...


# The longest an event can still be on its way from the consent step to the segments
# step: two Kinesis hops (`consented`, `resolved`), each held by its event-source mapping
# for at most `max_record_age_s` (6 h, infra/topology.py), plus an hour for batching
# windows, retries and clock skew. What an erasure leaves for the steps after consent
# lives at least this long; tests/unit/infra/test_topology.py keeps the two in step.
IN_FLIGHT_BOUND = timedelta(hours=13)

# The drop reason the steps after consent count (the consent step's is the same word).
ERASED = "erased"


@dataclass(frozen=True)
class RecentErasures:
    """Salted identifier hashes erased within `IN_FLIGHT_BOUND`, with the newest
    erasure of each: what the identity step checks every event against."""

    erased_at: Mapping[str, datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.erased_at)

    def drops(self, keys: Iterable[str], received_at: datetime) -> bool:
        """An event received at or before the erasure of any of its identifiers.

        One received after it got past the consent step only with a fresh opt-in
        (docs/consent.md), so it goes on.
        """
        return any(
            (erased := self.erased_at.get(key)) is not None and received_at <= erased
            for key in keys
        )
