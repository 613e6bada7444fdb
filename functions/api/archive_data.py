"""The event archive as a participant in export and erasure (docs/archive.md).

Export lists the person's archived events (under every profile id merged into
theirs); erasure removes their rows from the archive's files and leaves an
erasure request in the bucket, so the archive's writer drops their events still
on the way (received before the erasure) instead of landing them after it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from functions.shared.archive import ErasureRequest, Row
from functions.shared.erasure import Person
from functions.shared.ports import EventArchive


def _view(row: Row) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


class ArchiveData:
    name = "archive"

    def __init__(self, archive: EventArchive) -> None:
        self.archive = archive

    def widen(self, person: Person) -> None:
        """Profiles merged into the person's: their archived rows are the person's."""
        if person.profile_ids:
            person.profile_ids |= self.archive.profile_ids(person.profile_ids)

    def view(self, person: Person) -> dict[str, Any] | None:  # noqa: ARG002 - the protocol's
        """Not part of the profile view (it can be long): the export lists it."""
        return None

    def export(self, person: Person) -> dict[str, Any]:
        if not person.profile_ids:
            return {"events": []}
        rows = self.archive.events_of(person.profile_ids)
        rows.sort(key=lambda row: (row["timestamp"], row["message_id"]))
        return {"events": [_view(row) for row in rows]}

    def erase(self, person: Person, at: datetime) -> int:
        if not person.profile_ids:
            return 0
        ids = tuple(sorted(person.profile_ids))
        # Named by what it erases and when: erasing again writes the same request.
        digest = hashlib.sha256(("|".join(ids) + at.isoformat()).encode()).hexdigest()[:32]
        return self.archive.erase(ErasureRequest(request_id=digest, profile_ids=ids, at=at))
