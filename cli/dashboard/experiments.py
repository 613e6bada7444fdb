"""The dashboard's experiments page: each report now, and its lift over time.

The report is the read API's (`functions/experiments/report.py`) on the same
counters; the history comes from each day's counter changes, which the segments
and scoring steps record per batch (`DAILY_COUNTERS` in the counters table): the
lift and its always-valid interval as they stood at the end of each day.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from functions.experiments.book import DAILY_COUNTERS, ExperimentBook
from functions.experiments.report import headline, history, report
from functions.shared.dal.counters import DailyCounters

DAYS = 30  # the chart's window


def experiment_sections(
    book: ExperimentBook, counters: Mapping[str, int], daily: DailyCounters, today: date
) -> str:
    if not book:
        return "<p>No experiments are configured (docs/experiments.md).</p>"
    days = [(today - timedelta(days=n)).isoformat() for n in reversed(range(DAYS))]
    changes = [(day, daily.day_totals(DAILY_COUNTERS, day)) for day in days]
    return "".join(
        _section(report(analysis, counters), history(analysis, counters, changes))
        for analysis in book.analyses.values()
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _section(answer: dict[str, Any], points: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_e(a['name'])}</td><td class='n'>{a['exposures']}</td>"
        f"<td class='n'>{a['conversions']}</td>"
        f"<td class='n'>{_e(_rate(a['conversion_rate']))}</td>"
        f"<td class='n'>{_e(a.get('value_mean', ''))}</td></tr>"
        for a in answer["arms"]
    )
    lift, srm = answer["lift"] or {}, answer["srm"]
    if lift.get("enough_data"):
        lead = headline(lift)  # CUPED's numbers when the goal has a covariate
        verdict = (
            f"lift {_points(lead['estimate'])} "
            f"[{_points(lead['ci_low'])}, {_points(lead['ci_high'])}]"
            + (" — significant" if lead["significant"] else " — not significant yet")
        )
        if lead is not lift:
            verdict += f" (CUPED: variance -{lead['variance_reduction']:.0%})"
    else:
        verdict = f"not enough data yet ({answer['minimum_exposures_per_arm']} per arm)"
    srm_note = (
        f"<p class='bad'>sample ratio mismatch (p = {srm['p_value']:.2g}): do not trust it</p>"
        if srm["flag"]
        else ""
    )
    return (
        f"<section data-testid='experiment-{_e(answer['name'])}'>"
        f"<h2>{_e(answer['name'])} <small>on {_e(answer['segment'])}</small></h2>"
        f"<p>{_e(answer['description'])}</p><p><b>{_e(verdict)}</b></p>{srm_note}"
        "<table><tr><th>arm</th><th>exposed</th><th>converted</th><th>rate</th>"
        f"<th>value per person</th></tr>{rows}</table>{lift_chart(points)}</section>"
    )


def _rate(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


def _points(value: float) -> str:
    return f"{100 * value:+.1f} pts"


def lift_chart(points: list[dict[str, Any]], width: int = 560, height: int = 160) -> str:
    """The lift (line) and its interval (band) at the end of each day, with zero marked;
    days without enough data leave a gap in the band."""
    shown = [p for p in points if p["estimate"] is not None and p["exposures"]]
    if len(shown) < 2:
        return "<p>The chart starts on the second day with exposures.</p>"
    ends = ("estimate", "ci_low", "ci_high")
    values = [0.0, *(p[k] for p in shown for k in ends if p[k] is not None)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(points) - 1)
    x = {p["day"]: i * step for i, p in enumerate(points)}

    def y(v: float) -> float:
        return float(height - 8 - (height - 16) * (v - low) / span)

    line = " ".join(f"{x[p['day']]:.1f},{y(p['estimate']):.1f}" for p in shown)
    banded = [p for p in shown if p["ci_low"] is not None]
    band = " ".join(
        [f"{x[p['day']]:.1f},{y(p['ci_high']):.1f}" for p in banded]
        + [f"{x[p['day']]:.1f},{y(p['ci_low']):.1f}" for p in reversed(banded)]
    )
    zero = y(0.0)
    return (
        f"<svg width='{width}' height='{height}' data-testid='lift-chart' "
        f"aria-label='lift and its interval, {_e(points[0]['day'])} to {_e(points[-1]['day'])}'>"
        f"<polygon fill='#3d7be033' points='{band}'/>"
        f"<line x1='0' x2='{width}' y1='{zero:.1f}' y2='{zero:.1f}' stroke='#999' "
        "stroke-dasharray='4 3'/>"
        f"<polyline fill='none' stroke='#3d7be0' stroke-width='2' points='{line}'/></svg>"
    )
