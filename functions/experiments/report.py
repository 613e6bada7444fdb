"""An experiment's report, computed at read time from its counters (no profile scan).

For each goal: every arm's exposures, conversions, conversion rate and value mean,
and each treated arm against control — the difference of conversion rates with
its always-valid confidence sequence (the headline, `lift`), the fixed-horizon
interval beside it, the relative lift, and the same for the value per exposed
person. Every report carries a sample-ratio-mismatch test of the exposures
against the arms' configured shares. See docs/experiments.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from functions.experiments.book import MINOR_UNITS, Analysis
from functions.experiments.statistics import (
    MIN_EXPOSURES,
    Comparison,
    Moments,
    compare,
    sample_ratio_mismatch,
)
from functions.shared.segment_definitions import CONTROL_ARM

METHOD = (
    "always-valid confidence sequence (normal mixture, Howard et al. 2021), "
    "valid under continuous monitoring"
)


def report(analysis: Analysis, counters: Mapping[str, int]) -> dict[str, Any]:
    shares = analysis.segment.arms()
    arms = list(shares)
    control = CONTROL_ARM if CONTROL_ARM in shares else arms[0]
    exposures = {arm: counters.get(f"{analysis.key}|{arm}|n", 0) for arm in arms}
    srm = sample_ratio_mismatch([exposures[a] for a in arms], [shares[a] for a in arms])
    goals: list[dict[str, Any]] = []
    alpha = analysis.experiment.alpha
    for goal in analysis.goals:
        conversion: dict[str, Moments] = {}
        value: dict[str, Moments] = {}
        rows = []
        for arm in arms:
            base = f"{analysis.key}|{arm}|{goal.id}"
            n = exposures[arm]
            converted = counters.get(f"{base}|c", 0)
            conversion[arm] = Moments(n, converted, converted)  # 0/1 per person
            row: dict[str, Any] = {
                "name": arm,
                "share": round(shares[arm], 4),
                "exposures": n,
                "conversions": converted,
                "conversion_rate": round(converted / n, 6) if n else None,
            }
            if goal.value is not None:
                total = counters.get(f"{base}|s", 0) / MINOR_UNITS
                squares = counters.get(f"{base}|q", 0) / (MINOR_UNITS * MINOR_UNITS)
                value[arm] = Moments(n, total, squares)
                row["value_total"] = round(total, 2)
                row["value_mean"] = round(value[arm].mean, 4) if n else None
            rows.append(row)
        comparisons: list[dict[str, Any]] = []
        for arm in arms:
            if arm == control:
                continue
            entry: dict[str, Any] = {
                "arm": arm,
                "against": control,
                "lift": _lift(compare(conversion[arm], conversion[control], alpha)),
            }
            if goal.value is not None:
                entry["value_lift"] = _lift(compare(value[arm], value[control], alpha))
            comparisons.append(entry)
        goals.append(
            {
                "goal": goal.id,
                "event": goal.event,
                "within": goal.within,
                "value": goal.value,
                "arms": rows,
                "comparisons": comparisons,
            }
        )
    first = goals[0]
    headline = first["comparisons"][0] if first["comparisons"] else None
    return {
        "name": analysis.experiment.id,
        "analysis": analysis.key,
        "segment": analysis.segment.id,
        "description": analysis.experiment.description,
        "confidence": 1 - alpha,
        "method": METHOD,
        "minimum_exposures_per_arm": MIN_EXPOSURES,
        # The first goal's first treated arm, as the contract names them.
        "arms": first["arms"],
        "lift": headline["lift"] if headline else None,
        "srm": {"p_value": srm.p_value, "flag": srm.flag, "expected_shares": shares},
        "goals": goals,
    }


def _lift(result: Comparison) -> dict[str, Any]:
    seq, fixed = result.difference, result.fixed_horizon
    enough = result.enough_data
    out: dict[str, Any] = {
        "estimate": round(seq.estimate, 6),
        "ci_low": round(seq.low, 6) if enough else None,
        "ci_high": round(seq.high, 6) if enough else None,
        "method": "sequential",
        "enough_data": enough,
        "significant": enough and seq.excludes(0.0),
        "fixed_horizon": {
            "ci_low": round(fixed.low, 6) if enough else None,
            "ci_high": round(fixed.high, 6) if enough else None,
            "note": "valid for one look at a sample size declared in advance",
        },
    }
    if result.relative is not None and enough:
        rel = result.relative
        out["relative"] = {
            "estimate": round(rel.estimate, 6),
            "ci_low": round(rel.low, 6),
            "ci_high": round(rel.high, 6),
        }
    return out


def history(
    analysis: Analysis, now: Mapping[str, int], days: Sequence[tuple[str, Mapping[str, int]]]
) -> list[dict[str, Any]]:
    """The headline lift as it stood at the end of each of `days` (oldest first), from
    the counters `now` and each day's changes (the segments and scoring steps record
    them per batch): the counters at the end of a day are now's minus every later
    day's changes, so a window shorter than the experiment is still exact."""
    as_of = Counter({k: v for k, v in now.items() if k.startswith(f"{analysis.key}|")})
    points: list[dict[str, Any]] = []
    for day, changes in reversed(days):
        answer = report(analysis, as_of)
        lift = answer["lift"] or {}
        points.append(
            {
                "day": day,
                "exposures": sum(arm["exposures"] for arm in answer["arms"]),
                "estimate": lift.get("estimate"),
                "ci_low": lift.get("ci_low"),
                "ci_high": lift.get("ci_high"),
            }
        )
        as_of.subtract({k: v for k, v in changes.items() if k.startswith(f"{analysis.key}|")})
    return points[::-1]
