"""The lift over time: the report as it stood at the end of each day, from the
counters now and each day's recorded changes."""

from __future__ import annotations

from collections import Counter

from cli.dashboard.experiments import lift_chart
from functions.experiments.book import ExperimentBook
from functions.experiments.report import history, report
from functions.shared.config import load_config


def nudge() -> object:
    book = ExperimentBook.from_config(load_config("beacon.yaml"))
    return next(a for a in book.analyses.values() if a.experiment.id == "viewer_nudge")


def day_of(analysis: object, reminder: tuple[int, int], discount: tuple[int, int]) -> Counter[str]:
    key = analysis.key  # type: ignore[attr-defined]
    out: Counter[str] = Counter()
    for arm, (n, c) in (("reminder", reminder), ("ten_percent_off", discount)):
        out[f"{key}|{arm}|n"] += n
        out[f"{key}|{arm}|order_7d|c"] += c
    return out


def test_each_day_shows_the_report_of_the_counters_at_its_end() -> None:
    analysis = nudge()
    before_window = day_of(analysis, (300, 30), (300, 60))  # older than the window
    days = [
        ("2026-11-01", day_of(analysis, (10, 1), (12, 5))),
        ("2026-11-02", Counter()),  # nothing happened
        ("2026-11-03", day_of(analysis, (200, 20), (190, 90))),
    ]
    now = before_window + sum((c for _, c in days), Counter())
    other = {"churn_winback.x|control|n": 7}  # another analysis's counters are ignored

    points = history(analysis, {**now, **other}, days)  # type: ignore[arg-type]

    assert [p["day"] for p in points] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    first = report(analysis, before_window + days[0][1])  # type: ignore[arg-type]
    assert points[0]["estimate"] == first["lift"]["estimate"]
    assert points[0]["ci_low"] == first["lift"]["ci_low"]
    assert points[0]["exposures"] == 622 and points[1] == {**points[0], "day": "2026-11-02"}
    last = report(analysis, now)  # type: ignore[arg-type]
    assert (points[2]["ci_low"], points[2]["ci_high"]) == (
        last["lift"]["ci_low"],
        last["lift"]["ci_high"],
    )


def test_the_chart_draws_the_lift_its_band_and_zero() -> None:
    points = [
        {"day": "d1", "exposures": 0, "estimate": None, "ci_low": None, "ci_high": None},
        {"day": "d2", "exposures": 80, "estimate": 0.3, "ci_low": None, "ci_high": None},
        {"day": "d3", "exposures": 400, "estimate": 0.2, "ci_low": 0.05, "ci_high": 0.35},
        {"day": "d4", "exposures": 900, "estimate": 0.18, "ci_low": 0.1, "ci_high": 0.26},
    ]
    svg = lift_chart(points)
    assert svg.count("<polyline") == 1 and "<polygon" in svg and "<line" in svg
    band = svg.split("<polygon fill='#3d7be033' points='")[1].split("'")[0]
    assert len(band.split()) == 4  # two days with an interval, above and below
    assert "second day" in lift_chart(points[:2])  # one point is no line
