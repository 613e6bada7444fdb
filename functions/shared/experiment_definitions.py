"""`goals:` and `experiments:` in beacon.yaml: what counts as success, declared up front.

A goal is a conversion — a track event, optionally with property values, within a
window after the person's exposure — and optionally a value metric (a numeric
property summed per exposed person: revenue). An experiment measures one
segment's activation: its arms are the segment's holdout (control) and its
treated members, or its variants (functions/shared/segment_definitions.py).

An analysis is keyed by the experiment's `analysis` id, a digest of its own
definition, its goals' and its segment's arms: changing any of them starts a new
analysis with fresh counters, so no result mixes two definitions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field

from functions.shared.schema import Slug, Strict
from functions.shared.segment_definitions import Segment, Window, window_seconds

Scalar = str | int | float | bool
MAX_GOALS_PER_EXPERIMENT = 5


class Goal(Strict):
    id: Slug
    event: str = Field(min_length=1, max_length=200, description="the track event that converts")
    where: dict[str, Scalar] = Field(
        default_factory=dict,
        max_length=10,
        description="properties the event must carry with these values, e.g. {currency: EUR}",
    )
    within: Window = Field(default="7d", description="how long after exposure a conversion counts")
    value: str | None = Field(
        default=None,
        max_length=100,
        description="a numeric property summed per exposed person (revenue), if any",
    )

    @property
    def within_seconds(self) -> int:
        return window_seconds(self.within)

    def matches(self, name: str | None, properties: dict[str, Any]) -> bool:
        if name != self.event:
            return False
        return all(properties.get(key) == wanted for key, wanted in self.where.items())


class Experiment(Strict):
    id: Slug
    segment: Slug = Field(description="the segment whose activation is measured")
    goals: tuple[Slug, ...] = Field(min_length=1, max_length=MAX_GOALS_PER_EXPERIMENT)
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="1 - confidence level")
    description: str = ""

    def analysis(self, goals: dict[str, Goal], segment: Segment) -> str:
        """`<id>.<digest>`: the counters' key for this exact definition."""
        defined = {
            "experiment": self.model_dump(mode="json", exclude={"description", "alpha"}),
            "goals": [goals[g].model_dump(mode="json") for g in self.goals],
            "arms": segment.arms(),
        }
        digest = hashlib.sha256(json.dumps(defined, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.id}.{digest}"
