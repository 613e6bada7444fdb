"""The webhook step's delivery log as a participant in export and erasure, and the
person's deliveries for `GET /v1/profiles/{ref}/deliveries`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.shared.deliveries import record_view
from functions.shared.erasure import Person
from functions.shared.ports import DeliveryLog


class DeliveryData:
    name = "deliveries"

    def __init__(self, log: DeliveryLog) -> None:
        self.log = log

    def widen(self, person: Person) -> None:
        """The log knows profiles, not identifiers: the identity graph widens."""

    def view(self, person: Person) -> dict[str, Any] | None:  # noqa: ARG002 - the protocol's
        """Not part of the profile view (it can be long): see `history`."""
        return None

    def history(self, person: Person) -> list[dict[str, Any]]:
        records = self.log.for_profiles(person.profile_ids)
        return [record_view(r) for r in sorted(records, key=lambda r: r.updated_at, reverse=True)]

    def export(self, person: Person) -> dict[str, Any]:
        return {"deliveries": self.history(person)}

    def erase(self, person: Person, at: datetime) -> int:
        """The delivery records; an `erased` marker per profile keeps the webhook step
        from delivering (and logging) the person's activations still queued."""
        return self.log.erase_profiles(person.profile_ids, at)
