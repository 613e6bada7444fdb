"""A profile's decision item (functions/shared/decision.py), from its stored form.

The segments and scoring steps call this before each profile write and hand the
result to the store, which writes the decision item only when it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from functions.profiles.computed import computed_values
from functions.profiles.stored import StoredProfile
from functions.shared.decision import Decision, DecisionRules, decision_from
from functions.shared.segment_definitions import SegmentsConfig


def profile_decision(
    stored: StoredProfile,
    rules: DecisionRules,
    config: SegmentsConfig,
    now: datetime,
    computed: Mapping[str, Any] | None = None,
    experiments: Mapping[str, tuple[str, str]] | None = None,
) -> Decision:
    """`computed`: the profile's computed traits as of `now` when the caller has them
    already (the segments step evaluated its conditions on them); `experiments`: the
    person's arms (`ExperimentBook.arms`)."""
    state = stored.state
    if computed is None:
        # Worked out only when a page may see one of them.
        computed = computed_values(state, config, now) if rules.computed_traits else {}
    return decision_from(
        traits=state.traits,
        computed=computed,
        memberships={s: m.held_out for s, m in state.memberships.items()},
        consent=state.consent,
        scores=stored.scores,
        rules=rules,
        experiments=experiments,
    )
