"""The consent table as a participant in profile views, export and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.shared.consent_records import CategoryDecision
from functions.shared.erasure import Person
from functions.shared.ports import ConsentRecords

MAX_PERSON_KEYS = 200


class ConsentData:
    name = "consent"

    def __init__(self, store: ConsentRecords) -> None:
        self.store = store

    def widen(self, person: Person) -> None:
        """Follow the identifiers seen together with the person's (bounded breadth-first)."""
        frontier = set(person.keys)
        while frontier and len(person.keys) < MAX_PERSON_KEYS:
            states = self.store.load(sorted(frontier))
            linked = {k for state in states.values() for k in state.linked}
            frontier = linked - person.keys
            person.keys |= frontier

    def view(self, person: Person) -> dict[str, Any] | None:
        states = self.store.load(sorted(person.keys))
        if not states or any(s.suppressed for s in states.values()):
            return None
        resolved: dict[str, CategoryDecision] = {}
        for state in states.values():
            for category in state.categories:
                decision = state.latest(category)
                if decision is not None and decision.newer_than(resolved.get(category)):
                    resolved[category] = decision
        return {
            category: {"granted": d.granted, "at": d.at.isoformat(), "source": d.source}
            for category, d in sorted(resolved.items())
        }

    def history(self, person: Person) -> list[dict[str, Any]]:
        entries = []
        for key in sorted(person.keys):
            _, audit = self.store.records(key)
            entries += [{"identifier_hash": key, **entry} for entry in audit]
        return sorted(entries, key=lambda e: (str(e.get("at")), str(e.get("message_id"))))

    def export(self, person: Person) -> dict[str, Any]:
        out = []
        for key in sorted(person.keys):
            state, audit = self.store.records(key)
            if state is None and not audit:
                continue
            out.append(
                {
                    "identifier_hash": key,
                    "suppressed": bool(state and state.suppressed),
                    "categories": {
                        c: [
                            {
                                "granted": d.granted,
                                "at": d.at.isoformat(),
                                "source": d.source,
                                "message_id": d.message_id,
                            }
                            for d in history
                        ]
                        for c, history in (state.categories.items() if state else ())
                    },
                    "history": audit,
                }
            )
        return {"identifiers": out}

    def erase(self, person: Person, at: datetime) -> int:
        return self.store.erase(sorted(person.keys), at)
