"""Labelled training rows, built through the same code that keeps live profiles.

Simulated data. `simulator.journeys` generates shoppers' Segment events over
SIMULATION_DAYS days. Every CUTOFF_EVERY_DAYS days from FIRST_CUTOFF_DAY on,
each shopper's events up to that cutoff are turned into `CanonicalEvent`s and
applied to their `ProfileState` with `apply_events(..., now=cutoff)` (as the
segments step does), the profile dict is built with `activation(...)` (what
CEL and the scoring Lambda see), and the features come from
`functions.scoring.features.feature_matrix`, the Lambda's own extraction. So a
feature cannot mean one thing in training and another in production. The label
comes from the shopper's events after the cutoff:

  churn     population: customers (at least one order before the cutoff) seen
            in the ACTIVE_WITHIN_DAYS days before it; positive: no event at all
            (no visit, no order) in the CHURN_HORIZON_DAYS days after it
  purchase  population: every profile seen in the ACTIVE_WITHIN_DAYS days
            before the cutoff; positive: an order in the PURCHASE_HORIZON_DAYS
            days after it

Profiles quiet for longer than ACTIVE_WITHIN_DAYS are left out: the Lambda
scores profiles as they change, and a shopper gone for a year would only teach
the model what it can see from recency alone. One shopper gives a row per
cutoff; `groups` keeps their rows together when the data is split.

Your own data. `load_csv` reads an export with one column per feature name
(FEATURES), one 0/1 column per target (`churn`, `purchase`; an empty cell
leaves the row out of that target) and optionally `profile_id` (rows with the
same id stay on one side of the split). An empty feature cell takes the
feature's default, as in production. `write_csv` writes the simulated set in
that format.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from functions.profiles.apply import apply_events
from functions.profiles.evaluate import activation
from functions.profiles.state import Incoming, ProfileState
from functions.scoring.features import FeatureSpec, feature_matrix
from functions.shared.events import CanonicalEvent, Source
from functions.shared.segment_definitions import SegmentsConfig
from simulator.journeys import Journey, generate_journeys

SIMULATION_START = datetime(2025, 1, 1, tzinfo=UTC)
SIMULATION_DAYS = 480
FIRST_CUTOFF_DAY = 120
CUTOFF_EVERY_DAYS = 30
ACTIVE_WITHIN_DAYS = 90
CHURN_HORIZON_DAYS = 60
PURCHASE_HORIZON_DAYS = 30
DEFAULT_CUSTOMERS = 1500

TARGETS = ("churn", "purchase")
LABELS = {
    "churn": (
        f"customer (1+ order before the cutoff, seen in the {ACTIVE_WITHIN_DAYS} days before it)"
        f" with no event at all in the {CHURN_HORIZON_DAYS} days after it"
    ),
    "purchase": (
        f"profile seen in the {ACTIVE_WITHIN_DAYS} days before the cutoff"
        f" that places an order in the {PURCHASE_HORIZON_DAYS} days after it"
    ),
}
ORDER_EVENT = "Order Completed"
_SOURCE = Source(name="simulator", protocol="segment")

# The model inputs, in order. Sources are paths into the profile dict that
# `activation` builds under SegmentsConfig() defaults (docs/models.md lists them).
NEVER_DAYS = 365.0  # "days since" for something that never happened
FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        name="recency_days", source="computed.last_seen", transform="days_since", default=0
    ),
    FeatureSpec(
        name="tenure_days", source="computed.first_seen", transform="days_since", default=0
    ),
    FeatureSpec(
        name="days_since_order",
        source="computed.rfm.last_order",
        transform="days_since",
        default=NEVER_DAYS,
    ),
    FeatureSpec(name="orders_365d", source="computed.orders_365d", default=0),
    FeatureSpec(name="lifetime_value", source="computed.lifetime_value", default=0),
    FeatureSpec(name="average_order_value", source="computed.average_order_value", default=0),
    FeatureSpec(name="product_views_7d", source="computed.product_views_7d", default=0),
    FeatureSpec(name="product_views_30d", source="computed.product_views_30d", default=0),
    FeatureSpec(name="cart_value", source="computed.cart.value", default=0),
    FeatureSpec(name="cart_quantity", source="computed.cart.quantity", default=0),
    FeatureSpec(name="cart_abandoned", source="computed.cart.abandoned", default=0),
    FeatureSpec(name="rfm_recency", source="computed.rfm.recency", default=1),
    FeatureSpec(name="identified", source="traits.email", transform="present"),
)


@dataclass(frozen=True)
class Dataset:
    target: str
    feature_names: tuple[str, ...]
    rows: list[list[float]]
    labels: list[int]
    groups: list[str]  # profile id per row: one person's rows stay on one side of a split
    as_of: list[str]  # the cutoff (ISO date) per row; empty strings for CSV rows without one
    defaults: dict[str, int]  # feature -> rows that took the default
    description: str  # where the rows came from, for the manifest
    label_definition: str

    @property
    def positives(self) -> int:
        return sum(self.labels)

    @property
    def positive_rate(self) -> float:
        return self.positives / len(self.labels) if self.labels else 0.0


# ---------------------------------------------------------------- simulated


def simulate(
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = 7,
    *,
    days: int = SIMULATION_DAYS,
    start: datetime = SIMULATION_START,
    config: SegmentsConfig | None = None,
    specs: Sequence[FeatureSpec] = FEATURES,
) -> dict[str, Dataset]:
    """One Dataset per target from `customers` simulated shoppers."""
    config = config or SegmentsConfig()
    cutoffs = cutoff_days(days)
    if not cutoffs:
        raise ValueError(f"{days} days leave no room for a cutoff and its label window")
    journeys = generate_journeys(customers, days, seed, start)
    # Per cutoff: the profiles in each target's population, their groups and labels.
    found: dict[str, dict[int, _Rows]] = {t: {c: _Rows() for c in cutoffs} for t in TARGETS}
    for journey in journeys:
        for day, profile, labels in _observations(journey, cutoffs, start, config):
            for target, label in labels.items():
                found[target][day].add(profile, journey.user_id, label)
    description = (
        f"simulated: {customers} shoppers (simulator/journeys.py, seed {seed}), {days} days from"
        f" {start.date().isoformat()}; cutoffs every {CUTOFF_EVERY_DAYS} days from day"
        f" {cutoffs[0]} to day {cutoffs[-1]}"
    )
    datasets: dict[str, Dataset] = {}
    for target in TARGETS:
        datasets[target] = _assemble(target, found[target], start, specs, description)
    return datasets


def cutoff_days(days: int) -> list[int]:
    """Simulation days to cut at: each leaves room for the longest label window after it."""
    last = days - max(CHURN_HORIZON_DAYS, PURCHASE_HORIZON_DAYS)
    return list(range(FIRST_CUTOFF_DAY, last + 1, CUTOFF_EVERY_DAYS))


@dataclass
class _Rows:
    profiles: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add(self, profile: dict[str, Any], group: str, label: int) -> None:
        self.profiles.append(profile)
        self.groups.append(group)
        self.labels.append(label)


def _observations(
    journey: Journey, cutoffs: Sequence[int], start: datetime, config: SegmentsConfig
) -> list[tuple[int, dict[str, Any], dict[str, int]]]:
    """(cutoff day, profile dict as of it, label per target whose population it is in)."""
    times = [_parse_time(event["timestamp"]) for event in journey.events]
    orders = [
        t for t, e in zip(times, journey.events, strict=True) if e.get("event") == ORDER_EVENT
    ]
    state = ProfileState()
    applied = 0
    observations: list[tuple[int, dict[str, Any], dict[str, int]]] = []
    for day in cutoffs:
        cutoff = start + timedelta(days=day)
        upto = bisect.bisect_right(times, cutoff)
        if upto > applied:
            batch = [
                Incoming(_canonical(journey.events[i], times[i])) for i in range(applied, upto)
            ]
            # Applied as the segments step would see them arrive, as of the cutoff.
            apply_events(state, batch, config, now=cutoff)
            applied = upto
        if state.last_seen is None or cutoff - state.last_seen > timedelta(days=ACTIVE_WITHIN_DAYS):
            continue
        profile = activation(journey.user_id, state, config, cutoff)["profile"]
        labels = {"purchase": int(_any_between(orders, cutoff, PURCHASE_HORIZON_DAYS))}
        if bisect.bisect_right(orders, cutoff) > 0:
            labels["churn"] = int(not _any_between(times, cutoff, CHURN_HORIZON_DAYS))
        observations.append((day, profile, labels))
    return observations


def _any_between(times: Sequence[datetime], after: datetime, days: int) -> bool:
    """Is there a time in (after, after + days]?"""
    first = bisect.bisect_right(times, after)
    return first < len(times) and times[first] <= after + timedelta(days=days)


def _canonical(event: Mapping[str, Any], at: datetime) -> CanonicalEvent:
    """What ingest would emit for this wire event (received the moment it was sent)."""
    return CanonicalEvent.model_validate(
        {**event, "timestamp": at, "receivedAt": at, "source": _SOURCE}
    )


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _assemble(
    target: str,
    by_cutoff: Mapping[int, _Rows],
    start: datetime,
    specs: Sequence[FeatureSpec],
    description: str,
) -> Dataset:
    rows: list[list[float]] = []
    labels: list[int] = []
    groups: list[str] = []
    as_of: list[str] = []
    defaults = dict.fromkeys((s.name for s in specs), 0)
    for day, found in sorted(by_cutoff.items()):
        cutoff = start + timedelta(days=day)
        matrix = feature_matrix(found.profiles, specs, cutoff)
        rows.extend(matrix.rows)
        labels.extend(found.labels)
        groups.extend(found.groups)
        as_of.extend([cutoff.date().isoformat()] * len(found.labels))
        for name, count in matrix.defaults.items():
            defaults[name] += count
    return Dataset(
        target=target,
        feature_names=tuple(s.name for s in specs),
        rows=rows,
        labels=labels,
        groups=groups,
        as_of=as_of,
        defaults=defaults,
        description=description,
        label_definition=LABELS[target],
    )


# ---------------------------------------------------------------- CSV


class DataError(ValueError):
    """A user's CSV export cannot be used; the message names the line and column."""


def load_csv(path: str | Path, target: str, specs: Sequence[FeatureSpec] = FEATURES) -> Dataset:
    """The rows of a CSV export that carry a `target` label (see the module docstring)."""
    path = Path(path)
    names = [s.name for s in specs]
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")  # spreadsheets like to add a byte-order mark
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    missing = [name for name in [*names, target] if name not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    rows: list[list[float]] = []
    labels: list[int] = []
    groups: list[str] = []
    as_of: list[str] = []
    defaults = dict.fromkeys(names, 0)
    for line, record in enumerate(reader, start=2):
        label_cell = (record.get(target) or "").strip()
        if not label_cell:
            continue  # outside this target's population
        labels.append(_label(label_cell, path, line, target))
        row: list[float] = []
        for spec in specs:
            cell = (record.get(spec.name) or "").strip()
            if not cell:
                defaults[spec.name] += 1
                row.append(spec.default)
                continue
            row.append(_number(cell, path, line, spec.name))
        rows.append(row)
        groups.append((record.get("profile_id") or "").strip() or f"row-{line}")
        as_of.append((record.get("as_of") or "").strip())
    if not rows:
        raise DataError(f"{path}: no row has a {target!r} label")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return Dataset(
        target=target,
        feature_names=tuple(names),
        rows=rows,
        labels=labels,
        groups=groups,
        as_of=as_of,
        defaults=defaults,
        description=f"csv: {path.name} (sha256 {digest}...)",
        label_definition=f"column {target!r} of {path.name}",
    )


def write_csv(path: str | Path, datasets: Sequence[Dataset]) -> int:
    """Write datasets over the same features as one CSV that `load_csv` reads back.

    Rows of different targets for the same profile and cutoff share a line.
    Returns the number of lines written (without the header).
    """
    if not datasets:
        raise ValueError("nothing to write")
    names = datasets[0].feature_names
    if any(d.feature_names != names for d in datasets):
        raise ValueError("datasets must have the same features to share a file")
    targets = [d.target for d in datasets]
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for dataset in datasets:
        for row, label, group, day in zip(
            dataset.rows, dataset.labels, dataset.groups, dataset.as_of, strict=True
        ):
            line = lines.setdefault(
                (group, day),
                {"profile_id": group, "as_of": day, **dict(zip(names, row, strict=True))},
            )
            line[dataset.target] = label
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["profile_id", "as_of", *names, *targets])
        writer.writeheader()
        for key in sorted(lines):
            writer.writerow(lines[key])
    return len(lines)


def _label(cell: str, path: Path, line: int, column: str) -> int:
    value = cell.lower()
    if value in ("1", "1.0", "true"):
        return 1
    if value in ("0", "0.0", "false"):
        return 0
    raise DataError(f"{path} line {line}: {column} must be 0 or 1, not {cell!r}")


def _number(cell: str, path: Path, line: int, column: str) -> float:
    if cell.lower() in ("true", "false"):
        return 1.0 if cell.lower() == "true" else 0.0
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{path} line {line}: {column} is not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{path} line {line}: {column} must be finite, not {cell!r}")
    return value
