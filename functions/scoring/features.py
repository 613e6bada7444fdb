"""Model inputs from a profile: the one feature extraction used by training and scoring.

A model's manifest lists its features in input order, each a `FeatureSpec`:
where to read it in the profile dict (`functions.profiles.evaluate.
activation(...)["profile"]`, the same dict CEL sees), how to turn it into a
number, and the number to use when it is missing. Training (`models/dataset.py`)
and the scoring Lambda both call `feature_matrix`, so the two cannot compute a
feature differently.

Transforms:
  value       a number as it is (int, float or Decimal); a boolean is 1 or 0
  days_since  days from a datetime (or an ISO-8601 string) to `now`; never
              negative (a timestamp a little ahead of `now` is clock skew)
  present     1 if the path exists (and is not null), else 0; never defaulted

Anything else (a missing path, null, a string where a number should be, an
unparseable timestamp) takes the spec's `default` and is counted in
`FeatureMatrix.defaults`, which the Lambda publishes: a sudden rise means the
profiles no longer carry what the model was trained on.

Pure Python, no numpy: the Lambda hands the rows to onnxruntime itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from functions.shared.schema import Slug, Strict, matching

DottedPath = Annotated[
    str,
    matching(
        r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        "must be a dotted path of identifiers, e.g. computed.cart.value",
    ),
]
SECONDS_PER_DAY = 86400.0

Transform = Literal["value", "days_since", "present"]


class FeatureSpec(Strict):
    """One model input: `transform` of the value at `source`, or `default`."""

    name: Slug = Field(description="feature name, e.g. recency_days")
    source: DottedPath = Field(description="dotted path into the profile, e.g. computed.cart.value")
    transform: Transform = "value"
    default: float = Field(default=0.0, description="used when the value is missing or unusable")

    @field_validator("default")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


@dataclass(frozen=True)
class FeatureMatrix:
    names: tuple[str, ...]
    rows: list[list[float]]  # one per profile, in the specs' order
    defaults: dict[str, int]  # feature name -> rows where the default was used


_MISSING = object()


def feature_matrix(
    profiles: Sequence[Mapping[str, Any]], specs: Sequence[FeatureSpec], now: datetime
) -> FeatureMatrix:
    """Every profile's features as of `now` (an aware datetime), with default counts."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    defaults = dict.fromkeys((s.name for s in specs), 0)
    rows: list[list[float]] = []
    for profile in profiles:
        row: list[float] = []
        for spec in specs:
            value = extract(profile, spec, now)
            if value is None:
                defaults[spec.name] += 1
                value = spec.default
            row.append(value)
        rows.append(row)
    return FeatureMatrix(tuple(s.name for s in specs), rows, defaults)


def extract(profile: Mapping[str, Any], spec: FeatureSpec, now: datetime) -> float | None:
    """One feature's value, or None when it must take its default."""
    raw = lookup(profile, spec.source)
    if spec.transform == "present":
        return 0.0 if raw is _MISSING or raw is None else 1.0
    if raw is _MISSING:
        return None
    if spec.transform == "days_since":
        return _days_since(raw, now)
    return _number(raw)


def lookup(profile: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or a sentinel (not None: null is a value) if absent."""
    current: Any = profile
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    # Decimal: what DynamoDB hands back for every number.
    if isinstance(raw, int | float | Decimal) and math.isfinite(raw):
        return float(raw)
    return None


def _days_since(raw: Any, now: datetime) -> float | None:
    moment: datetime
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the pipeline stores UTC throughout
    return max(0.0, (now - moment).total_seconds() / SECONDS_PER_DAY)
