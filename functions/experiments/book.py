"""Experiments counted in the stream: exposures, conversions and value sums per arm.

Pure logic over a profile's state. A person is exposed once per analysis, when
they enter the experiment's segment (held out or treated: the arm is
`evaluate.arm_of`); from then on each goal event inside the goal's window marks
them converted and adds its value. What a profile contributes to the counters
is a function of its state alone (`counters`), so the step that writes the
profile adds `counters(after) - counters(before)` in the same transaction, the
way segment sizes are kept: a replay or redelivery changes no state and so no
count, a retried write adds its delta once, and a merge subtracts the loser's
contribution while the survivor keeps one exposure (its own, or the loser's if
it had none: `profiles.apply.fold`). No scan of profiles is needed for a report.

Counter names: `<analysis>|<arm>|n` (exposures), `<analysis>|<arm>|<goal>|c`
(conversions), `...|s` and `...|q` (sum and sum of squares of the per-person
value, in minor units). A goal with a CUPED covariate x (the experiment's
`covariate` trait at exposure, minor units, kept on the exposure) adds `...|x`,
`...|xx` (sum of x and of x squared), `...|xc` (sum of x times the 0/1
conversion) and, with a value, `...|xs` (sum of x times the value). Counter
items written before covariates existed lack them: a missing name is 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from functions.profiles.evaluate import arm_of
from functions.profiles.state import Exposure, ProfileState
from functions.shared.experiment_definitions import Experiment, Goal
from functions.shared.segment_definitions import AnyTrait, Segment

if TYPE_CHECKING:
    from functions.shared.config import BeaconConfig
    from functions.shared.events import CanonicalEvent

MINOR_UNITS = 100  # values are kept in cents: integers add exactly in DynamoDB
MAX_VALUE = 10_000_000  # per event, in major units: a hostile property cannot swamp a sum


class _Entered(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def segment_id(self) -> str: ...

    @property
    def at(self) -> Any: ...


@dataclass(frozen=True)
class Analysis:
    key: str  # `<experiment id>.<definition digest>`
    experiment: Experiment
    segment: Segment
    goals: tuple[Goal, ...]

    def covariate_of(self, goal: Goal) -> str | None:
        return self.experiment.covariate_of(goal.id)


class ExperimentBook:
    def __init__(
        self,
        goals: Iterable[Goal],
        experiments: Iterable[Experiment],
        segments: Iterable[Segment],
        traits: Iterable[AnyTrait] = (),
    ) -> None:
        by_id = {g.id: g for g in goals}
        segment_by_id = {s.id: s for s in segments}
        trait_by_id = {t.id: t for t in traits}
        self.analyses: dict[str, Analysis] = {}
        self._by_segment: dict[str, list[Analysis]] = {}
        self._by_event: dict[str, list[tuple[Analysis, Goal]]] = {}
        for experiment in experiments:
            segment = segment_by_id[experiment.segment]
            analysis = Analysis(
                experiment.analysis(by_id, segment, trait_by_id),
                experiment,
                segment,
                tuple(by_id[g] for g in experiment.goals),
            )
            self.analyses[analysis.key] = analysis
            self._by_segment.setdefault(segment.id, []).append(analysis)
            for goal in analysis.goals:
                self._by_event.setdefault(goal.event, []).append((analysis, goal))

    @classmethod
    def from_config(cls, config: BeaconConfig) -> ExperimentBook:
        segments = config.segments
        return cls(config.goals, config.experiments, segments.segments, segments.computed_traits)

    def __bool__(self) -> bool:
        return bool(self.analyses)

    def expose(
        self,
        state: ProfileState,
        profile_id: str,
        changes: Iterable[_Entered],
        *,
        computed: Mapping[str, Any],
    ) -> None:
        """Record the first exposure of each analysis whose segment the profile entered,
        with each goal's covariate: its trait's value in `computed` (the profile's
        computed traits in this write, before any activation of it is sent; absent = 0)."""
        for change in changes:
            if change.type != "segment.entered":
                continue
            for analysis in self._by_segment.get(change.segment_id, ()):
                if analysis.key not in state.exposures:
                    arm = arm_of(analysis.segment, profile_id)
                    covariates = {
                        goal.id: minor_units(computed.get(trait))
                        for goal in analysis.goals
                        if (trait := analysis.covariate_of(goal)) is not None
                    }
                    state.exposures[analysis.key] = Exposure(
                        arm=arm, at=change.at, covariates={g: x for g, x in covariates.items() if x}
                    )

    def observe(self, state: ProfileState, event: CanonicalEvent) -> None:
        """An event applied to the profile: a conversion if it reaches a goal in time."""
        if event.event is None or not state.exposures:
            return
        for analysis, goal in self._by_event.get(event.event, ()):
            exposure = state.exposures.get(analysis.key)
            if exposure is None or not goal.matches(event.event, event.properties):
                continue
            if (
                not exposure.at
                <= event.timestamp
                <= exposure.at + timedelta(seconds=goal.within_seconds)
            ):
                continue
            exposure.converted.add(goal.id)
            if goal.value is not None:
                value = minor_units(event.properties.get(goal.value))
                exposure.values[goal.id] = exposure.values.get(goal.id, 0) + value

    def counters(self, state: ProfileState) -> Counter[str]:
        """What this profile contributes to the experiment counters."""
        out: Counter[str] = Counter()
        for key, exposure in state.exposures.items():
            analysis = self.analyses.get(key)
            if analysis is None:
                continue  # an analysis no longer configured counts nowhere
            arm = f"{key}|{exposure.arm}"
            out[f"{arm}|n"] += 1
            for goal in analysis.goals:
                base = f"{arm}|{goal.id}"
                converted = int(goal.id in exposure.converted)
                out[f"{base}|c"] += converted
                value = exposure.values.get(goal.id, 0)
                if goal.value is not None:
                    out[f"{base}|s"] += value
                    out[f"{base}|q"] += value * value
                if analysis.covariate_of(goal) is not None:
                    x = exposure.covariates.get(goal.id, 0)
                    out[f"{base}|x"] += x
                    out[f"{base}|xx"] += x * x
                    out[f"{base}|xc"] += x * converted
                    if goal.value is not None:
                        out[f"{base}|xs"] += x * value
        # Zeros dropped; negative sums (refunds, a negative covariate) kept.
        return Counter({name: n for name, n in out.items() if n})

    def arms(self, state: ProfileState) -> dict[str, tuple[str, str]]:
        """Experiment id -> (its segment, the person's arm), for the decision item."""
        return {
            analysis.experiment.id: (analysis.segment.id, exposure.arm)
            for key, exposure in state.exposures.items()
            if (analysis := self.analyses.get(key)) is not None
        }

    def forget_unconfigured(self, state: ProfileState) -> None:
        """Drop exposures of analyses no longer configured (they count nowhere)."""
        for key in [k for k in state.exposures if k not in self.analyses]:
            del state.exposures[key]


DAILY_COUNTERS = "experiments"  # the daily-counters name their changes are kept under


def experiment_changes(changes: Mapping[str, int]) -> Counter[str]:
    """The experiment counters among a write's counter changes (segment sizes have no
    `|` in their names)."""
    return Counter({name: n for name, n in changes.items() if "|" in name and n})


def counter_delta(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    """after - before, keeping negative entries (a merge's loser leaves)."""
    names = set(before) | set(after)
    delta = {name: after[name] - before[name] for name in names}
    return {name: n for name, n in delta.items() if n}


def minor_units(value: object) -> int:
    """A property's number in cents, bounded; anything else is 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        number = float(value)
    except ValueError:
        return 0
    if not math.isfinite(number):
        return 0
    bounded = max(-MAX_VALUE, min(MAX_VALUE, number))
    return round(bounded * MINOR_UNITS)
