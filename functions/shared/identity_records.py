"""What the identity table holds about profiles: shared by the identity step and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from functions.shared.identifiers import Identifier

Rule = Literal["deterministic", "probabilistic", "manual"]


@dataclass
class MergeNote:
    """A merge the survivor absorbed; `emitted` once the record is on the stream."""

    merge_id: str
    loser: str
    at: datetime
    rule: Rule
    message_id: str | None
    identifiers: list[str]
    score: float | None = None
    emitted: bool = False


@dataclass
class Profile:
    profile_id: str
    created_at: datetime
    identifiers: dict[str, list[str]] = field(default_factory=dict)  # type -> values
    merged_into: str | None = None  # the redirect left by a merge
    version: int = 0  # the stored version; 0 = not stored yet
    merges: list[MergeNote] = field(default_factory=list)
    block_keys: set[str] = field(default_factory=set)  # where its match traits are filed
    changed: bool = False

    def holds(self) -> list[Identifier]:
        return [Identifier(t, v) for t, values in self.identifiers.items() for v in values]

    def add(self, identifier: Identifier) -> None:
        values = self.identifiers.setdefault(identifier.type, [])
        if identifier.value not in values:
            values.append(identifier.value)
            self.changed = True
