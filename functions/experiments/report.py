"""An experiment's report, computed at read time from its counters (no profile scan).

For each goal: every arm's exposures, conversions, conversion rate and value mean,
and each treated arm against control — the difference of conversion rates with
its always-valid confidence sequence (`lift`), the fixed-horizon
interval beside it, the relative lift, and the same for the value per exposed
person. Every report carries a sample-ratio-mismatch test of the exposures
against the arms' configured shares. A goal with a covariate also gets the
CUPED-adjusted comparison beside each (`cuped`), which is then the `headline`
(what the dashboard, its chart and the CLI lead with); `lift`'s own numbers stay
the unadjusted difference. See docs/experiments.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from functions.experiments.book import MINOR_UNITS, Analysis
from functions.experiments.statistics import (
    MIN_EXPOSURES,
    Comparison,
    Covariate,
    Cuped,
    Moments,
    compare,
    cuped,
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
        x_conversion: dict[str, Covariate] = {}
        x_value: dict[str, Covariate] = {}
        covariate = analysis.covariate_of(goal)
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
            if covariate is not None:
                # Counter items from before covariates existed lack these: 0.
                x = counters.get(f"{base}|x", 0) / MINOR_UNITS
                xx = counters.get(f"{base}|xx", 0) / MINOR_UNITS**2
                xc = counters.get(f"{base}|xc", 0) / MINOR_UNITS
                xs = counters.get(f"{base}|xs", 0) / MINOR_UNITS**2
                x_conversion[arm], x_value[arm] = Covariate(x, xx, xc), Covariate(x, xx, xs)
                row["covariate_mean"] = round(x / n, 4) if n else None
            rows.append(row)
        comparisons: list[dict[str, Any]] = []
        for arm in arms:
            if arm == control:
                continue
            adjusted = value_adjusted = None
            if covariate is not None:
                adjusted = _cuped(conversion, x_conversion, arm, control, alpha)
                if goal.value is not None:
                    value_adjusted = _cuped(value, x_value, arm, control, alpha)
            entry: dict[str, Any] = {
                "arm": arm,
                "against": control,
                "lift": _lift(compare(conversion[arm], conversion[control], alpha), adjusted),
            }
            if goal.value is not None:
                raw = compare(value[arm], value[control], alpha)
                entry["value_lift"] = _lift(raw, value_adjusted)
            comparisons.append(entry)
        goals.append(
            {
                "goal": goal.id,
                "event": goal.event,
                "within": goal.within,
                "value": goal.value,
                "covariate": covariate,
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


def _cuped(
    metric: Mapping[str, Moments],
    covariate: Mapping[str, Covariate],
    arm: str,
    control: str,
    alpha: float,
) -> Cuped:
    return cuped(metric[arm], covariate[arm], metric[control], covariate[control], alpha)


def _lift(result: Comparison, adjusted: Cuped | None = None) -> dict[str, Any]:
    """The unadjusted difference (the contract's `lift`, always), and with a covariate
    the CUPED-adjusted one beside it as `cuped`, which is then the `headline`."""
    out = _interval(result)
    if adjusted is None:
        return out | {"headline": "unadjusted"}
    cuped_lift = _interval(adjusted.comparison)
    del cuped_lift["method"], cuped_lift["enough_data"]  # the same as the unadjusted's
    cuped_lift["variance_reduction"] = round(adjusted.variance_reduction, 6)
    cuped_lift["theta"] = round(adjusted.theta, 6)
    return out | {"headline": "cuped", "cuped": cuped_lift}


def headline(lift: Mapping[str, Any]) -> Mapping[str, Any]:
    """The numbers a reader should lead with: CUPED's when the report has them."""
    return lift["cuped"] if lift.get("headline") == "cuped" else lift


def _interval(result: Comparison) -> dict[str, Any]:
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
        lift = headline(answer["lift"] or {})
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
