"""`goals:` and `experiments:` in beacon.yaml: what counts as success, declared up front.

A goal is a conversion — a track event, optionally with property values, within a
window after the person's exposure — and optionally a value metric (a numeric
property summed per exposed person: revenue). An experiment measures one
segment's activation: its arms are the segment's holdout (control) and its
treated members, or its variants (functions/shared/segment_definitions.py).

An analysis is keyed by the experiment's `analysis` id, a digest of its own
definition, its goals' and its segment's arms: changing any of them starts a new
analysis with fresh counters, so no result mixes two definitions.

An experiment may name a covariate for CUPED: a numeric computed trait whose
value at the moment of exposure (behaviour before it) is kept with the exposure
and adjusts the goal's metrics (functions/experiments/statistics.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from functions.shared.schema import Slug, Strict
from functions.shared.segment_definitions import AnyTrait, Segment, Window, window_seconds

Scalar = str | int | float | bool
MAX_GOALS_PER_EXPERIMENT = 5
# Computed trait kinds whose value is a number: what a CUPED covariate can be.
COVARIATE_KINDS = ("count", "sum", "average")


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
    covariate: Slug | dict[Slug, Slug] | None = Field(
        default=None,
        description=(
            "CUPED: a count, sum or average computed trait read at exposure (pre-exposure"
            " behaviour, e.g. orders_365d), for every goal, or {goal id: trait id}"
        ),
    )
    description: str = ""

    @field_validator("covariate")
    @classmethod
    def _covariates(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(value, dict) and len(value) > MAX_GOALS_PER_EXPERIMENT:
            raise ValueError(f"at most {MAX_GOALS_PER_EXPERIMENT} covariates, one per goal")
        return value

    def covariate_of(self, goal_id: str) -> str | None:
        """The computed trait whose value at exposure adjusts this goal's metrics, if any."""
        if isinstance(self.covariate, dict):
            return self.covariate.get(goal_id)
        return self.covariate

    def analysis(
        self, goals: dict[str, Goal], segment: Segment, traits: Mapping[str, AnyTrait] | None = None
    ) -> str:
        """`<id>.<digest>`: the counters' key for this exact definition. A covariate's
        trait definition is part of it (another covariate is another analysis); an
        experiment without one keeps the digest it had before covariates existed."""
        exclude = {"description", "alpha", "covariate"}
        defined: dict[str, Any] = {
            "experiment": self.model_dump(mode="json", exclude=exclude),
            "goals": [goals[g].model_dump(mode="json") for g in self.goals],
            "arms": segment.arms(),
        }
        covariates = {g: t for g in self.goals if (t := self.covariate_of(g)) is not None}
        if covariates:
            known = traits or {}
            defined["covariates"] = {
                g: known[t].model_dump(mode="json") if t in known else t
                for g, t in covariates.items()
            }
        digest = hashlib.sha256(json.dumps(defined, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.id}.{digest}"
