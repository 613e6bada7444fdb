"""The read/admin API's logic: one person's profile, consent history, export and erasure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.api.consent_data import ConsentData
from functions.api.identity_data import IdentityData
from functions.shared.erasure import Person, PersonalData
from functions.shared.identifiers import Identifier


@dataclass(frozen=True)
class Lookup:
    """`GET /v1/profiles/{ref}`: the profile, which always has a `profile_id`, or None
    and what is known without one (the consent step records a person before the
    identity step has given them a profile)."""

    profile: dict[str, Any] | None
    known: dict[str, Any] = field(default_factory=dict)


@dataclass
class People:
    identity: IdentityData  # widens first: the graph knows all of a person's identifiers
    consent: ConsentData
    others: tuple[PersonalData, ...]  # later steps' participants (profiles, deliveries)
    salt: bytes
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

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

    def profile(self, ref: str) -> Lookup:
        """Identity (profile id, identifiers) and profile (traits, computed, segments, scores)
        fields at the top; other participants (consent) by name. Without a profile id
        there is no profile to show, whatever else is known."""
        person = self.find(ref)
        views = {p.name: p.view(person) for p in self.participants}
        identity = views.pop("identity") or {}
        profile = views.pop("profile", None) or {}
        others = {k: v for k, v in views.items() if v is not None}
        if "profile_id" not in identity:
            return Lookup(None, others)
        # The profile's own fields at the top, as DESIGN.md lists them; the rest by name.
        return Lookup({"identifier": str(person.asked_for), **identity, **profile, **others})

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
        """Idempotent: erasing again deletes nothing more and keeps the suppression.

        Consent goes first: once its suppression is written, the consent step drops
        the person's events unless they opt in afresh. Every event received before
        that moment may still be in flight past consent, so the later steps are given
        that moment: they drop the person's events received up to it.
        """
        person = self.find(ref)
        at = self.clock()
        deleted = {self.consent.name: self.consent.erase(person, at)}
        suppressed_at = self.clock()
        for participant in (self.identity, *self.others):
            deleted[participant.name] = participant.erase(person, suppressed_at)
        return {
            "identifier": str(person.asked_for),
            "erased_at": at.isoformat(),
            "records_deleted": deleted,
            "identifiers_suppressed": len(person.keys),
        }


def _holds_something(part: dict[str, Any]) -> bool:
    return any(bool(v) for v in part.values())
