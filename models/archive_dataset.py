"""Point-in-time training rows from the event archive (`beacon train --from-archive`).

The archive's `events` rows are grouped by profile (merged-away profiles under
their survivor) and turned back into `CanonicalEvent`s. For each cutoff, a
profile's features come from the events **known at the cutoff** — dated and
received at or before it (a late event dated earlier was not known then) —
applied with `apply_events(..., now=cutoff)` and read with `activation` and
`feature_matrix`, exactly as models/dataset.py does for simulated shoppers and
as the segments and scoring steps do live. The labels come only from events
after the cutoff (purchase: an order within the horizon; churn: a customer
with no event within it). `tests/unit/models/test_archive_leakage.py` fails if
any feature uses an event after its cutoff.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.profiles.apply import apply_events
from functions.profiles.evaluate import activation
from functions.profiles.state import Incoming, ProfileState
from functions.scoring.features import FeatureSpec
from functions.shared.archive import event_of
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig
from models.dataset import (
    ACTIVE_WITHIN_DAYS,
    CHURN_HORIZON_DAYS,
    FEATURES,
    ORDER_EVENT,
    PURCHASE_HORIZON_DAYS,
    TARGETS,
    Dataset,
    _assemble,
    _Rows,
)


@dataclass(frozen=True)
class Horizons:
    purchase_days: int = PURCHASE_HORIZON_DAYS
    churn_days: int = CHURN_HORIZON_DAYS
    active_within_days: int = ACTIVE_WITHIN_DAYS


DEFAULT_HORIZONS = Horizons()


def histories(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[CanonicalEvent]]:
    """profile id -> its events, oldest first (the `events` view's rows: one per message
    id, a merged-away profile's under the survivor)."""
    found: dict[str, list[CanonicalEvent]] = {}
    for row in rows:
        found.setdefault(str(row["profile_id"]), []).append(event_of(row))
    for events in found.values():
        events.sort(key=lambda e: (e.timestamp, e.message_id))
    return found


def known_at(
    events: Sequence[CanonicalEvent], cutoff: datetime, by_receipt: bool = True
) -> list[CanonicalEvent]:
    """What the pipeline could have applied by `cutoff`: dated by then and, `by_receipt`,
    received by then. History imported or replayed in bulk (`beacon demo --days`,
    `beacon import`) was received long after it happened: `by_receipt=False` judges it
    by its event time alone (docs/models.md)."""
    return [
        e for e in events if e.timestamp <= cutoff and (not by_receipt or e.received_at <= cutoff)
    ]


def profile_as_of(
    profile_id: str,
    events: Sequence[CanonicalEvent],
    cutoff: datetime,
    config: SegmentsConfig,
    by_receipt: bool = True,
) -> dict[str, Any] | None:
    """The profile dict the scoring step would have seen at `cutoff` (None: no event yet)."""
    known = known_at(events, cutoff, by_receipt)
    if not known:
        return None
    state = ProfileState()
    apply_events(state, [Incoming(e) for e in known], config, now=cutoff)
    profile: dict[str, Any] = activation(profile_id, state, config, cutoff)["profile"]
    return profile


def labels_after(
    events: Sequence[CanonicalEvent], cutoff: datetime, horizons: Horizons
) -> dict[str, int]:
    """Each target's label, from events dated after the cutoff only (and whose
    population the profile is in, judged on what was known at the cutoff)."""
    times = [e.timestamp for e in events]
    orders = [e.timestamp for e in events if e.event == ORDER_EVENT]
    labels = {"purchase": int(_any_between(orders, cutoff, horizons.purchase_days))}
    if any(t <= cutoff for t in orders):
        labels["churn"] = int(not _any_between(times, cutoff, horizons.churn_days))
    return labels


def _any_between(times: Sequence[datetime], after: datetime, days: int) -> bool:
    ordered = sorted(times)
    first = bisect.bisect_right(ordered, after)
    return first < len(ordered) and ordered[first] <= after + timedelta(days=days)


def cutoffs_for(
    first: datetime, last: datetime, every_days: int, horizon_days: int
) -> list[datetime]:
    """Midnights from a week after the first event, each leaving its label window
    inside the history."""
    start = (first + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    cutoffs = []
    moment = start
    while moment + timedelta(days=horizon_days) <= last:
        cutoffs.append(moment)
        moment += timedelta(days=every_days)
    return cutoffs


def from_archive(
    rows: Iterable[Mapping[str, Any]],
    *,
    config: SegmentsConfig | None = None,
    horizons: Horizons = DEFAULT_HORIZONS,
    every_days: int = 7,
    specs: Sequence[FeatureSpec] = FEATURES,
    by_receipt: bool = True,
) -> dict[str, Dataset]:
    """One Dataset per target whose label window fits in the archive's history."""
    config = config or SegmentsConfig()
    people = histories(rows)
    if not people:
        raise ValueError("the archive holds no events")
    first = min(e.timestamp for events in people.values() for e in events)
    last = max(e.timestamp for events in people.values() for e in events)
    datasets: dict[str, Dataset] = {}
    for target in TARGETS:
        horizon = horizons.purchase_days if target == "purchase" else horizons.churn_days
        cutoffs = cutoffs_for(first, last, every_days, horizon)
        if not cutoffs:
            continue
        found = {day: _Rows() for day in range(len(cutoffs))}
        for profile_id, events in sorted(people.items()):
            for day, cutoff in enumerate(cutoffs):
                profile = profile_as_of(profile_id, events, cutoff, config, by_receipt)
                if profile is None or _inactive(events, cutoff, horizons, by_receipt):
                    continue
                label = labels_after(events, cutoff, horizons).get(target)
                if label is not None:
                    found[day].add(profile, profile_id, label)
        description = (
            f"archive: {len(people)} profiles, events {first.date()} to {last.date()};"
            f" cutoffs every {every_days} days from {cutoffs[0].date()} to {cutoffs[-1].date()}"
        )
        datasets[target] = _assemble_at(target, found, cutoffs, specs, description)
    return datasets


def _inactive(
    events: Sequence[CanonicalEvent], cutoff: datetime, horizons: Horizons, by_receipt: bool
) -> bool:
    known = known_at(events, cutoff, by_receipt)
    return not known or cutoff - known[-1].timestamp > timedelta(days=horizons.active_within_days)


def _assemble_at(
    target: str,
    found: Mapping[int, _Rows],
    cutoffs: Sequence[datetime],
    specs: Sequence[FeatureSpec],
    description: str,
) -> Dataset:
    # models/dataset.py's assembly counts cutoffs in days from a start: give it the first.
    start = cutoffs[0]
    by_day = {(cutoffs[i] - start).days: rows for i, rows in found.items()}
    return _assemble(target, by_day, start, specs, description)
