"""The read/admin API's logic: one person's profile, consent history, export and erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.api.consent_data import ConsentData
from functions.api.identity_data import IdentityData
from functions.shared.erasure import Person, PersonalData
from functions.shared.identifiers import Identifier


@dataclass
class People:
    identity: IdentityData  # widens first: the graph knows all of a person's identifiers
    consent: ConsentData
    others: tuple[PersonalData, ...]  # later steps' participants (profiles, deliveries)
    salt: bytes

    @property
    def participants(self) -> tuple[PersonalData, ...]:
        return (self.identity, self.consent, *self.others)

    def find(self, ref: str) -> Person:
        """`type:value` -> the person, widened by every participant. ValueError if malformed."""
        identifier = Identifier.parse(ref)
        person = Person(
            asked_for=identifier,
            keys={identifier.hashed_key(self.salt)},
            identifiers={identifier},
        )
        for participant in self.participants:
            participant.widen(person)
        return person

    def profile(self, ref: str) -> dict[str, Any] | None:
        """Identity (profile id, identifiers) and profile (traits, computed, segments, scores)
        fields at the top; other participants (consent) by name."""
        person = self.find(ref)
        views = {p.name: p.view(person) for p in self.participants}
        if all(v is None for v in views.values()):
            return None
        # The profile's own fields at the top, as DESIGN.md lists them; the rest by name.
        identity = views.pop("identity") or {}
        profile = views.pop("profile", None) or {}
        return {
            "identifier": str(person.asked_for),
            **identity,
            **profile,
            **{k: v for k, v in views.items() if v is not None},
        }

    def consent_history(self, ref: str) -> dict[str, Any] | None:
        person = self.find(ref)
        history = self.consent.history(person)
        if not history:
            return None
        return {
            "identifier": str(person.asked_for),
            "consent": self.consent.view(person),
            "history": history,
        }

    def export(self, ref: str) -> dict[str, Any] | None:
        person = self.find(ref)
        parts = {p.name: p.export(person) for p in self.participants}
        if not any(_holds_something(part) for part in parts.values()):
            return None
        return {
            "identifier": str(person.asked_for),
            "exported_at": datetime.now(UTC).isoformat(),
            **parts,
        }

    def erase(self, ref: str) -> dict[str, Any]:
        """Idempotent: erasing again deletes nothing more and keeps the suppression."""
        person = self.find(ref)
        at = datetime.now(UTC)
        deleted = {p.name: p.erase(person, at) for p in self.participants}
        return {
            "identifier": str(person.asked_for),
            "erased_at": at.isoformat(),
            "records_deleted": deleted,
            "identifiers_suppressed": len(person.keys),
        }


def _holds_something(part: dict[str, Any]) -> bool:
    return any(bool(v) for v in part.values())
