"""The identifiers an event carries, normalized so the same person matches the same key.

Shared by the consent step (state per identifier) and the identity step (the
graph). `hashed_key` gives the salted form stored where raw identifiers must
not be (consent state, suppression records).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from functions.shared.events import CanonicalEvent


@dataclass(frozen=True, order=True)
class Identifier:
    type: str  # user_id, anonymous_id, email, or an external id type
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Identifier:
        """`email:Ana@Example.org` -> Identifier("email", "ana@example.org")."""
        kind, sep, value = text.partition(":")
        if not sep or not kind or not value.strip():
            raise ValueError(f"{text!r} is not an identifier like email:ana@example.org")
        return normalized(kind.strip().lower(), value)

    def hashed_key(self, salt: bytes) -> str:
        return hmac.new(salt, str(self).encode("utf-8"), hashlib.sha256).hexdigest()


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalized(kind: str, value: str) -> Identifier:
    if kind == "email":
        return Identifier("email", normalize_email(value))
    return Identifier(kind, value.strip())


def identifiers_of(event: CanonicalEvent) -> list[Identifier]:
    """Every identifier on the event, user id first, without duplicates."""
    found: list[Identifier] = []
    if event.user_id:
        found.append(normalized("user_id", event.user_id))
    if event.anonymous_id:
        found.append(normalized("anonymous_id", event.anonymous_id))
    for traits in (event.traits, event.context.traits or {}):
        email = traits.get("email")
        if isinstance(email, str) and "@" in email:
            found.append(normalized("email", email))
    for external in event.context.external_ids or []:
        if external.id.strip():
            found.append(normalized(external.type.strip().lower(), external.id))
    return list(dict.fromkeys(found))
