"""One interface for everything Beacon holds about a person: find it, export it, erase it.

Each step that stores personal data registers a `PersonalData` participant
with the API function, so an erasure or export request reaches every table
and nobody forgets one. A participant may also widen the person (the consent
store knows which identifiers were seen together; the identity graph will
know them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
