"""A profile as the profiles table holds it, and the storage port the steps use.

Logic (the segments and scoring steps, the read API) depends on this port;
`functions/shared/dal/profiles_store.py` implements it with DynamoDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from functions.profiles.state import ProfileState


@dataclass
class StoredProfile:
    profile_id: str
    state: ProfileState
    scores: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # 0: not stored yet
    merged_into: str | None = None  # a tombstone: this profile was folded into another
    # An erasure marker: the person was erased; events still in flight are dropped and
    # the profile is never written again (docs/segments.md, "Erasure").
    erased_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def live(self) -> bool:
        """A stored profile with state: neither a tombstone nor an erasure marker."""
        return self.exists and self.merged_into is None and self.erased_at is None


@dataclass(frozen=True)
class Burial:
    """A profile folded into the one being saved: its tombstone goes in the same
    write, with the segment sizes its memberships leave."""

    loser: StoredProfile
    size_changes: Mapping[str, int]


class ProfilesPort(Protocol):
    def load(self, profile_ids: Iterable[str]) -> dict[str, StoredProfile]:
        """Every stored profile or tombstone among `profile_ids`, in batched reads."""
        ...

    def due(self, now: datetime, limit: int) -> list[str]:
        """Profiles whose time-based re-evaluation is due by `now`."""
        ...

    def save(
        self,
        profile: StoredProfile,
        *,
        due_at: datetime | None,
        at: datetime,
        size_changes: Mapping[str, int] | None = None,
        buried: Sequence[Burial] = (),
    ) -> None:
        """State, scores and due time over the version read; raises if it moved on.

        With `buried`, those profiles become tombstones pointing here in the same
        transaction, each over the version read too: a fold and its burial happen
        together or not at all."""
        ...

    def save_scores(self, profile: StoredProfile, at: datetime) -> None:
        """Scores only, over the version read."""
        ...

    def bury(
        self,
        loser: StoredProfile,
        survivor_id: str,
        at: datetime,
        size_changes: Mapping[str, int] | None = None,
    ) -> None:
        """Replace a folded profile by a tombstone pointing at its survivor."""
        ...

    def segment_sizes(self) -> dict[str, int]: ...

    def erase(self, profile_ids: Iterable[str], at: datetime) -> int:
        """Replace each profile (or tombstone) by an erasure marker; how many there were.
        Markers are not records about the person: erasing again counts none."""
        ...
