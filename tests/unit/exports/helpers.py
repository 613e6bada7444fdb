"""Stored profiles and identity records for the export tests, built the way the steps
store them (the real dataclasses, no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.profiles.state import Membership, ProfileState
from functions.profiles.stored import StoredProfile
from functions.shared.identity_records import Profile

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CATEGORIES = ("necessary", "analytics", "personalization", "advertising")


def consent(*granted: str) -> dict[str, bool]:
    return {c: c in granted for c in CATEGORIES}


def stored(
    profile_id: str,
    *,
    granted: tuple[str, ...] = ("personalization", "advertising"),
    traits: dict[str, Any] | None = None,
    segments: dict[str, bool] | None = None,  # segment -> held out
    scores: dict[str, Any] | None = None,
    version: int = 3,
    merged_into: str | None = None,
    erased_at: datetime | None = None,
) -> StoredProfile:
    state = ProfileState(
        traits=dict(traits or {}),
        first_seen=datetime(2026, 11, 1, tzinfo=UTC),
        last_seen=datetime(2026, 12, 3, tzinfo=UTC),
        consent=consent(*granted),
        consent_at=datetime(2026, 12, 3, tzinfo=UTC),
        user_id=f"u-{profile_id}",
        memberships={
            s: Membership(since=datetime(2026, 12, 1, tzinfo=UTC), held_out=held)
            for s, held in (segments or {}).items()
        },
    )
    return StoredProfile(
        profile_id=profile_id,
        state=state,
        scores=dict(scores or {}),
        version=version,
        merged_into=merged_into,
        erased_at=erased_at,
    )


def identity(profile_id: str, merged_into: str | None = None, **identifiers: list[str]) -> Profile:
    return Profile(
        profile_id=profile_id,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        identifiers=dict(identifiers),
        merged_into=merged_into,
        version=1,
    )
