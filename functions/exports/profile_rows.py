"""A stored profile as one row of the profile export: only what consent allows, nothing
of erased people (docs/exports.md, "What a row holds").

The rules, in the order they are applied:

1. Only a live profile is a row: a tombstone (merged away), an erasure marker or a
   profile without state never is (the Scan filters them out already; this checks).
2. A profile the identity graph no longer knows, or knows as merged into another,
   is skipped: the graph loses a person's profile in the same erasure that marks the
   profile item (functions/api/people.py erases identity before profiles), and a
   merge reaches the graph before the profiles table folds the loser in. Either way
   the row would be about someone who is gone, or a second row for one person.
3. Consent: the row's contents need every category of `ExportPolicy.required`
   granted (`consent.required_for_profiles` by default: what the person allowed a
   profile to be built for) in the consent the profile holds, which is the consent
   step's stamp on the person's newest event (defaults of the deployment's policy
   applied), so a withdrawal reaches it like any event. Without it the row keeps
   only `profile_id`, `consent`, `consent_at`, `exported_at` and `consented =
   false`: what a warehouse needs to delete what earlier exports gave it, and
   nothing about the person.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from functions.profiles.computed import computed_values
from functions.profiles.stored import StoredProfile
from functions.shared.decision import PERSONA, persona_of
from functions.shared.identity_records import Profile
from functions.shared.segment_definitions import SegmentsConfig


@dataclass(frozen=True)
class ExportPolicy:
    """The consent categories a person must have granted, every one of them."""

    required: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.required:
            raise ValueError("an export needs at least one consent category to require")

    def allows(self, consent: Mapping[str, bool]) -> bool:
        granted = {category.lower(): given for category, given in consent.items()}
        return all(granted.get(category) is True for category in self.required)

    @classmethod
    def checked(cls, required: tuple[str, ...], known: tuple[str, ...]) -> ExportPolicy:
        """A policy naming only categories the deployment knows (beacon.yaml's
        `consent.categories`); ValueError naming the unknown ones."""
        wanted = tuple(c.strip().lower() for c in required)
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise ValueError(
                f"unknown consent categories {', '.join(unknown)} (known: {', '.join(known)})"
            )
        return cls(wanted)


def _json(value: Any) -> str:
    return json.dumps(to_jsonable_python(value), sort_keys=True, separators=(",", ":"))


def withheld(profile: StoredProfile, now: datetime) -> dict[str, Any]:
    """The row of a person whose consent does not allow the export: no data about them."""
    state = profile.state
    return {
        "profile_id": profile.profile_id,
        "exported_at": now,
        "consented": False,
        "consent": _json(state.consent),
        "consent_at": state.consent_at,
    }


def profile_row(
    profile: StoredProfile,
    identity: Profile | None,
    config: SegmentsConfig,
    policy: ExportPolicy,
    now: datetime,
) -> dict[str, Any] | None:
    """The export row of `profile` (columns: `parquet.PROFILE_SCHEMA`), or None when it
    must not be exported at all (rules 1 and 2 of the module docstring)."""
    if not profile.live or identity is None or identity.merged_into is not None:
        return None
    state = profile.state
    if not policy.allows(state.consent):
        return withheld(profile, now)
    scores = {k: v for k, v in profile.scores.items() if k != PERSONA}
    return {
        **withheld(profile, now),
        "consented": True,
        "identifiers": _json({t: sorted(v) for t, v in sorted(identity.identifiers.items()) if v}),
        "user_id": state.user_id,
        "traits": _json(state.traits),
        "computed": _json(computed_values(state, config, now)),
        "segments": _json(
            {
                segment: {"since": m.since, "held_out": m.held_out}
                for segment, m in sorted(state.memberships.items())
            }
        ),
        "segment_ids": sorted(state.memberships),
        "scores": _json(scores),
        "persona": persona_of(profile.scores),
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "profile_version": profile.version,
    }
