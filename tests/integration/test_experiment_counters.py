"""Experiment counters kept by the segments Lambda on moto, exactly, with the profiles.

The project's beacon.yaml runs `viewer_nudge` on `frequent_viewers` (two variants)
with the goal `order_7d`. A profile that views four products enters the segment
and is exposed; an order inside the window converts it. Counters are read back
through the store the read API uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from functions.experiments.book import DAILY_COUNTERS
from functions.profiles.evaluate import arm_of
from functions.segments.step import SegmentsStep
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from tests.integration.segments_rig import SegmentsRig, at, merged, segments_rig, track


@pytest.fixture
def rigged(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SegmentsRig, SegmentsStep]]:
    with segments_rig(monkeypatch) as pair:
        yield pair


def counters(rig: SegmentsRig) -> dict[str, int]:
    table = DynamoTable(rig.names.table("profiles"), rig.raw_dynamodb)
    return ProfilesStore(table).experiment_counters()


def daily_changes(rig: SegmentsRig, *hours: float) -> dict[str, int]:
    """The experiment counter changes the steps recorded on the days of `hours`."""
    daily = DailyCounters(DynamoTable(rig.names.table("counters"), rig.raw_dynamodb))
    total: Counter[str] = Counter()
    for day in sorted({at(h).date().isoformat() for h in hours}):
        total.update(daily.day_totals(DAILY_COUNTERS, day))
    return {name: n for name, n in total.items() if n}


def nudge(step: SegmentsStep) -> str:
    return next(
        k for k, a in step.experiments.analyses.items() if a.experiment.id == "viewer_nudge"
    )


def views(profile: str, start: float) -> list[object]:
    return [track(profile, start + i * 0.01) for i in range(4)]


def order(profile: str, hours: float, total: float) -> object:
    return track(profile, hours, "Order Completed", {"total": total})


def test_exposure_and_conversion_are_counted_once_whatever_is_redelivered(
    rigged: tuple[SegmentsRig, SegmentsStep],
) -> None:
    rig, step = rigged
    key = nudge(step)
    arm = f"{key}|{arm_of(step.experiments.analyses[key].segment, 'p1')}"
    rig.clock[0] = at(1)
    entering = rig.records(views("p1", 0.5))
    rig.deliver_ok(entering)
    assert counters(rig) == {f"{arm}|n": 1}

    rig.clock[0] = at(5)
    converting = rig.records([order("p1", 4.0, 80.0)])
    rig.deliver_ok(converting)
    rig.deliver_ok(converting)  # Lambda redelivers
    rig.deliver_ok(entering)  # and replays older records
    expected = {
        f"{arm}|n": 1,
        f"{arm}|order_7d|c": 1,
        f"{arm}|order_7d|s": 8000,
        f"{arm}|order_7d|q": 8000 * 8000,
    }
    assert counters(rig) == expected
    # A late event inside the window still counts; one before the exposure (at 1 h) or
    # after its 7 days does not.
    rig.clock[0] = at(300)
    late = [order("p1", 3.5, 20.0), order("p1", 0.9, 500.0), order("p1", 200.0, 999.0)]
    rig.deliver_ok(rig.records(late))
    assert counters(rig)[f"{arm}|order_7d|s"] == 10000
    assert counters(rig)[f"{arm}|order_7d|c"] == 1  # a person converts once
    change = next(c for c in rig.changes() if c.profile_id == "p1" and c.segments)
    assert change.segments[0].variant == arm.rsplit("|", 1)[1]
    # Each day's changes, kept for the lift over time, add up to the counters: the
    # redelivered and replayed batches added nothing there either.
    assert daily_changes(rig, 1, 5, 300) == counters(rig)
    late_day = {f"{arm}|order_7d|s": 2000, f"{arm}|order_7d|q": 10000**2 - 8000**2}
    assert daily_changes(rig, 300) == late_day  # the day of the late order: its 20.00


def test_a_merge_of_two_exposed_profiles_counts_one_person(
    rigged: tuple[SegmentsRig, SegmentsStep],
) -> None:
    rig, step = rigged
    key = nudge(step)
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records([*views("a", 0.1), *views("b", 0.2)]))
    rig.clock[0] = at(2)
    rig.deliver_ok(rig.records([order("b", 1.5, 10.0)]))
    exposed = sum(n for name, n in counters(rig).items() if name.endswith("|n"))
    assert exposed == 2

    rig.clock[0] = at(3)
    rig.deliver_ok(rig.records([merged("a", "b", 2.5)]))

    after = counters(rig)
    assert sum(n for name, n in after.items() if name.endswith("|n")) == 1
    survivor_arm = arm_of(step.experiments.analyses[key].segment, "a")
    assert after[f"{key}|{survivor_arm}|n"] == 1
    # The loser's conversion happened before it was this person's exposure's: it left.
    assert sum(n for name, n in after.items() if name.endswith("|c")) == 0
    # The loser's part left on the merge's day.
    assert daily_changes(rig, 1, 2, 3) == {name: n for name, n in after.items() if n}


def test_the_covariate_is_the_spend_before_exposure_and_its_sums_are_kept_exactly(
    rigged: tuple[SegmentsRig, SegmentsStep],
) -> None:
    """viewer_nudge's covariate is lifetime_value: what the person spent before they
    entered frequent_viewers, frozen at the exposure, counted with its sums."""
    rig, step = rigged
    key = nudge(step)
    arm = f"{key}|{arm_of(step.experiments.analyses[key].segment, 'p2')}"
    rig.clock[0] = at(1)
    before = rig.records([order("p2", 0.2, 30.0), *views("p2", 0.5)])
    rig.deliver_ok(before)
    assert counters(rig) == {
        f"{arm}|n": 1,
        f"{arm}|order_7d|x": 3000,
        f"{arm}|order_7d|xx": 3000**2,
    }

    rig.clock[0] = at(5)
    after = rig.records([order("p2", 4.0, 80.0)])
    rig.deliver_ok(after)
    rig.deliver_ok(after)  # redelivered
    rig.deliver_ok(before)  # replayed
    expected = {
        f"{arm}|n": 1,
        f"{arm}|order_7d|c": 1,
        f"{arm}|order_7d|s": 8000,
        f"{arm}|order_7d|q": 8000**2,
        f"{arm}|order_7d|x": 3000,
        f"{arm}|order_7d|xx": 3000**2,
        f"{arm}|order_7d|xc": 3000,
        f"{arm}|order_7d|xs": 3000 * 8000,
    }
    assert counters(rig) == expected
    # The order raised lifetime_value to 110; the covariate stays what it was at exposure.
    assert daily_changes(rig, 1, 5) == expected
