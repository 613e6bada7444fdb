"""A profile as the profiles table holds it: its state, scores and version, or a
tombstone or erasure marker in its place.

Logic (the segments and scoring steps, the read API) reads and writes these
through `ProfilesPort` (functions/shared/ports.py), which
`functions/shared/dal/profiles_store.py` implements with DynamoDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    # The digest of the decision item written with it (functions/shared/decision.py):
    # a write adds the decision item only when the new one differs. None: none yet.
    decision_digest: str | None = None

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
