"""Reviewing suggested links: list them, link (merge in the stream) or reject."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.shared.commands import LinkProfiles
from functions.shared.ports import StreamPort, SuggestionStore
from functions.shared.streams import StreamRecord


@dataclass
class Links:
    store: SuggestionStore
    commands: StreamPort  # the `consented` stream, read by the identity step

    def open(self) -> list[dict[str, Any]]:
        return [
            {k: s[k] for k in ("a", "b", "score", "status", "at") if k in s}
            for s in self.store.suggestions()
        ]

    def decide(self, a: str, b: str, decision: str) -> dict[str, Any] | None:
        """None if no such suggestion; ValueError for an unknown decision."""
        if decision not in ("link", "reject"):
            raise ValueError("decision must be link or reject")
        status = "linked" if decision == "link" else "rejected"
        if not self.store.set_suggestion(a, b, status):
            return None
        if decision == "link":
            command = LinkProfiles(command_id=str(uuid.uuid4()), a=a, b=b, at=datetime.now(UTC))
            if self.commands.put([StreamRecord(a, command.to_json())]):
                raise RuntimeError("the link command could not be written; try again")
        return {"a": a, "b": b, "status": status}
