"""The segments step's profiles as a participant in profile views, export and erasure,
and the segment listing with current sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from functions.profiles.computed import computed_values
from functions.profiles.stored import StoredProfile
from functions.shared.erasure import Person
from functions.shared.ports import ProfilesPort
from functions.shared.segment_definitions import SegmentsConfig


class ProfileData:
    name = "profile"

    def __init__(
        self,
        store: ProfilesPort,
        config: SegmentsConfig,
        clock: Any = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def _live(self, person: Person) -> list[StoredProfile]:
        stored = self.store.load(person.profile_ids)
        return [p for p in stored.values() if p.live]

    def widen(self, person: Person) -> None:
        """Profiles know no identifiers of their own: the identity graph widens."""

    def view(self, person: Person) -> dict[str, Any] | None:
        live = self._live(person)
        if not live:
            return None
        # The identity graph's live profile, if several ids are known for the person.
        profile = max(live, key=lambda p: p.state.last_seen or datetime.min.replace(tzinfo=UTC))
        return self.render(profile, self.clock())

    def render(self, profile: StoredProfile, now: datetime) -> dict[str, Any]:
        """What the read API shows: traits, computed traits as of now, segments, scores."""
        state = profile.state
        return {
            "traits": state.traits,
            "computed": to_jsonable_python(computed_values(state, self.config, now)),
            "segments": {
                segment: {"since": m.since.isoformat(), "held_out": m.held_out}
                for segment, m in sorted(state.memberships.items())
            },
            "scores": profile.scores,
            "first_seen": _iso(state.first_seen),
            "last_seen": _iso(state.last_seen),
            "version": profile.version,
        }

    def export(self, person: Person) -> dict[str, Any]:
        now = self.clock()
        return {"profiles": [self.render(p, now) for p in self._live(person)]}

    def erase(self, person: Person, at: datetime) -> int:
        """The profiles and their tombstones, each replaced by an erasure marker (no data
        about the person) so that events still in flight cannot recreate it."""
        return self.store.erase(person.profile_ids, at)

    def segments(self) -> list[dict[str, Any]]:
        """Every configured segment with its current size (members, held-out included)."""
        sizes = self.store.segment_sizes()
        return [
            {
                "id": s.id,
                "description": s.description,
                "condition": s.condition,
                "holdout_percent": s.holdout_percent,
                "size": max(sizes.get(s.id, 0), 0),
            }
            for s in self.config.segments
        ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
