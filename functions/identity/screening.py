"""The identifiers identity matches on, normalized, screened and ranked.

On top of the shared set (user id, anonymous id, email, external ids) the
identity step adds the email's SHA-256 (to meet hashed emails from other
sources), phone numbers in E.164 and device ids. Blocked values (config
regexes: `null`, `0000...`, test emails) never match anything.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from functions.shared.config import Identity
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier, identifiers_of
from functions.shared.phones import e164


def normalize_phone(value: str, default_region: str) -> str | None:
    """E.164, or None if it is not a valid number."""
    return e164(value, default_region)


@dataclass(frozen=True)
class Screened:
    usable: list[Identifier]  # most trusted first
    blocked: list[Identifier]


@dataclass(frozen=True)
class IdentifierRules:
    rules: Identity

    @cached_property
    def _blocked(self) -> list[re.Pattern[str]]:
        return [re.compile(p, re.IGNORECASE) for p in self.rules.blocked_values]

    def is_blocked(self, identifier: Identifier) -> bool:
        return any(p.search(identifier.value) for p in self._blocked)

    def of(self, event: CanonicalEvent) -> Screened:
        found = identifiers_of(event)
        for identifier in list(found):
            if identifier.type == "email":
                digest = hashlib.sha256(identifier.value.encode()).hexdigest()
                found.append(Identifier("email_sha256", digest))
        for traits in (event.traits, event.context.traits or {}):
            phone = traits.get("phone")
            if isinstance(phone, str) and phone.strip():
                e164 = normalize_phone(phone, self.rules.default_phone_region)
                if e164:
                    found.append(Identifier("phone", e164))
        device = (event.context.model_extra or {}).get("device")
        if isinstance(device, dict) and isinstance(device.get("id"), str) and device["id"].strip():
            found.append(Identifier("device_id", device["id"].strip()))
        unique = list(dict.fromkeys(found))
        usable = [i for i in unique if not self.is_blocked(i)]
        # A blocked email also blocks its hash.
        blocked_emails = {
            hashlib.sha256(i.value.encode()).hexdigest()
            for i in unique
            if i.type == "email" and self.is_blocked(i)
        }
        usable = [i for i in usable if not (i.type == "email_sha256" and i.value in blocked_emails)]
        blocked = [i for i in unique if i not in usable]
        usable.sort(key=lambda i: self.rules.rank(i.type))  # stable: event order within a rank
        return Screened(usable, blocked)
