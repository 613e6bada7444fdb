"""Segment membership: CEL conditions over the profile, enter/exit changes, holdouts.

Conditions are compiled once per process (`CompiledSegments`) and evaluated
against one activation, `{"profile": {...}}`:

    profile.id           the profile id
    profile.traits       identify traits (newest write per trait)
    profile.computed     computed traits as of `now` (see computed.py)
    profile.scores       model scores, e.g. scores.churn.probability (may be empty)
    profile.consent      consent categories: {"personalization": true, ...}
    profile.segments     ids of the segments the profile is in before this evaluation
    profile.first_seen / profile.last_seen   event times (absent on a new profile)

A condition that fails to evaluate (a missing key read without `has()`, a
type mismatch) or yields something other than a boolean counts as false for
that profile and is reported in `Evaluation.errors`, so one bad value cannot
stop a batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import cel

from functions.profiles.computed import computed_values, next_change_at
from functions.profiles.state import Membership, ProfileState
from functions.shared.decision import persona_of
from functions.shared.segment_definitions import (
    CONTROL_ARM,
    TREATED_ARM,
    Segment,
    SegmentsConfig,
)

LOOKAHEAD_STEPS = 32  # moments tried by next_recheck before settling for the last


@dataclass(frozen=True)
class Change:
    """`segment.entered` or `segment.exited`, for profile-changes and the webhooks."""

    type: Literal["segment.entered", "segment.exited"]
    profile_id: str
    segment_id: str
    at: datetime
    held_out: bool
    variant: str | None = None  # the treatment of a treated member of a segment with variants


@dataclass(frozen=True)
class Evaluation:
    memberships: dict[str, Membership]  # the profile's memberships after this evaluation
    changes: tuple[Change, ...]
    evaluations: int  # CEL programs run (the benchmark's unit)
    errors: dict[str, str]  # segment id -> why its condition did not evaluate

    @property
    def size_changes(self) -> dict[str, int]:
        """Segment size deltas: +1 for an entry, -1 for an exit."""
        return {c.segment_id: 1 if c.type == "segment.entered" else -1 for c in self.changes}


def holdout_bucket(segment_id: str, profile_id: str) -> int:
    """0-99, the same for a profile and segment on every run and every machine."""
    digest = hashlib.sha256(f"{segment_id}\n{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def is_held_out(segment: Segment, profile_id: str) -> bool:
    return holdout_bucket(segment.id, profile_id) < segment.holdout_percent


def variant_of(segment: Segment, profile_id: str) -> str | None:
    """The treatment a treated member gets, by weight; None without variants.

    A second hash, independent of the holdout's, so the variants split the treated
    members in their weights whatever the holdout. A profile's variant follows its
    id: after a merge the survivor's id decides (docs/experiments.md)."""
    if not segment.variants:
        return None
    digest = hashlib.sha256(f"{segment.id}\nvariant\n{profile_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(v.weight for v in segment.variants)
    for variant in segment.variants:
        if point < variant.weight:
            return variant.name
        point -= variant.weight
    raise AssertionError("unreachable: the point falls within the weights")


def arm_of(segment: Segment, profile_id: str) -> str:
    """The experiment arm of a member: control (held out), its variant, or treated."""
    if is_held_out(segment, profile_id):
        return CONTROL_ARM
    return variant_of(segment, profile_id) or TREATED_ARM


def activation(
    profile_id: str,
    state: ProfileState,
    config: SegmentsConfig,
    now: datetime,
    *,
    scores: Mapping[str, Any] | None = None,
    consent: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The variables a condition sees, as of `now`."""
    profile: dict[str, Any] = {
        "id": profile_id,
        "traits": dict(state.traits),
        "computed": computed_values(state, config, now),
        "scores": dict(scores or {}),
        "consent": dict(consent or {}),
        "segments": sorted(state.memberships),
        # The scoring step's persona name ("" before the first scoring): docs/segments.md.
        "persona": persona_of(scores or {}) or "",
    }
    if state.first_seen is not None:
        profile["first_seen"] = state.first_seen
    if state.last_seen is not None:
        profile["last_seen"] = state.last_seen
    return {"profile": profile}


class CompiledSegments:
    """Every segment's condition compiled once; evaluation is then ~µs per segment."""

    def __init__(self, config: SegmentsConfig) -> None:
        self.config = config
        self.segments = config.segments
        self._programs = [(s, cel.compile(s.condition)) for s in config.segments]
        self._reads = _traits_read(config)

    def evaluate(
        self,
        profile_id: str,
        variables: Mapping[str, Any],
        current: Mapping[str, Membership],
        now: datetime,
    ) -> Evaluation:
        """Memberships after evaluating every condition, and what changed since `current`.

        A member keeps its `since` and its holdout flag; a segment no longer in
        the configuration is left as it is (removing definitions is an operator's
        decision, not a mass exit).
        """
        memberships = dict(current)
        changes: list[Change] = []
        errors: dict[str, str] = {}
        # One Context for every program: the variables are converted to CEL once per
        # profile, not once per condition (about 4x faster with eight segments).
        context = cel.Context(dict(variables))
        for segment, program in self._programs:
            try:
                result = program.execute(context)
            except Exception as err:  # any CEL failure means "not a member", reported
                errors[segment.id] = f"{type(err).__name__}: {err}"
                result = False
            if not isinstance(result, bool):
                errors.setdefault(segment.id, f"condition gave {type(result).__name__}, not bool")
                result = False
            was = memberships.get(segment.id)
            if result and was is None:
                held = is_held_out(segment, profile_id)
                memberships[segment.id] = Membership(since=now, held_out=held)
                variant = None if held else variant_of(segment, profile_id)
                changes.append(
                    Change("segment.entered", profile_id, segment.id, now, held, variant)
                )
            elif not result and was is not None:
                del memberships[segment.id]
                variant = None if was.held_out else variant_of(segment, profile_id)
                changes.append(
                    Change("segment.exited", profile_id, segment.id, now, was.held_out, variant)
                )
        return Evaluation(memberships, tuple(changes), len(self._programs), errors)

    def evaluate_profile(
        self,
        profile_id: str,
        state: ProfileState,
        now: datetime,
        *,
        scores: Mapping[str, Any] | None = None,
        consent: Mapping[str, bool] | None = None,
    ) -> Evaluation:
        """`evaluate` on the profile's own activation and current memberships."""
        variables = activation(profile_id, state, self.config, now, scores=scores, consent=consent)
        return self.evaluate(profile_id, variables, state.memberships, now)

    def next_recheck(
        self,
        profile_id: str,
        state: ProfileState,
        now: datetime,
        *,
        scores: Mapping[str, Any] | None = None,
        consent: Mapping[str, bool] | None = None,
    ) -> datetime | None:
        """When the sweep should look at this profile again, or None if never by time.

        Walks the moments at which a computed trait read by some condition
        changes (`next_change_at`) and returns the first at which a membership
        would change, so a busy profile whose hourly counts tick over is not
        swept every hour for nothing. After LOOKAHEAD_STEPS quiet moments it
        returns the last one tried: a look then is cheap and picks up the walk.
        """
        moment = now
        for _ in range(LOOKAHEAD_STEPS):
            upcoming = next_change_at(state, self.config, moment, only=self._reads)
            if upcoming is None:
                return None
            moment = upcoming
            later = self.evaluate_profile(profile_id, state, moment, scores=scores, consent=consent)
            if later.changes:
                return moment
        return moment


def _traits_read(config: SegmentsConfig) -> frozenset[str] | None:
    """The computed traits some condition reads; None if one may read any."""
    read: set[str] = set()
    for segment in config.segments:
        names = segment.computed_references
        if names is None:
            return None
        read |= names
    return frozenset(read)
