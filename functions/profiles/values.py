"""Event property values as a profile keeps them: bounded numbers and string keys."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from functions.shared.profile_limits import MAX_NUMBER, MAX_VALUE_CHARS


def as_number(value: Any) -> float | None:
    """A finite number within +-MAX_NUMBER, or None: sums of them stay finite."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, str):
            value = float(value[:64])
        if isinstance(value, int | float):
            number = float(value)  # OverflowError for an int past a double's range
            return number if math.isfinite(number) and abs(number) <= MAX_NUMBER else None
    except (ValueError, OverflowError):
        return None
    return None


def as_key(value: Any) -> str | None:
    """Property values kept as strings (DynamoDB map keys; CEL compares them as such),
    cut at MAX_VALUE_CHARS: a profile keeps many of them."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = str(value)[:MAX_VALUE_CHARS]
    return text if text else None


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
