"""Exposures, conversions and value sums kept on the profile, and the counters they give."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from functions.experiments.book import ExperimentBook, counter_delta, minor_units
from functions.experiments.report import report
from functions.experiments.statistics import sample_ratio_mismatch
from functions.profiles.apply import apply_events, fold
from functions.profiles.codec import decode_state, encode_state
from functions.profiles.evaluate import Change, arm_of, is_held_out, variant_of
from functions.profiles.state import Incoming, ProfileState
from functions.shared.config import load_config
from functions.shared.events import CanonicalEvent
from functions.shared.experiment_definitions import Experiment, Goal
from functions.shared.segment_definitions import Segment, SegmentsConfig, Variant

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOLDOUT = Segment(id="at_risk", condition="true", holdout_percent=10)
SPLIT = Segment(
    id="viewers",
    condition="true",
    variants=(Variant(name="reminder", weight=1), Variant(name="discount", weight=3)),
)
ORDER = Goal(id="order_7d", event="Order Completed", within="7d", value="total")
EUROS = Goal(id="euro_order", event="Order Completed", within="2d", where={"currency": "EUR"})
CONFIG = SegmentsConfig(computed_traits=(), segments=(HOLDOUT, SPLIT))


def book() -> ExperimentBook:
    experiments = [
        Experiment(id="winback", segment="at_risk", goals=("order_7d",)),
        Experiment(id="nudge", segment="viewers", goals=("order_7d", "euro_order")),
    ]
    return ExperimentBook([ORDER, EUROS], experiments, [HOLDOUT, SPLIT])


def order(hours: float, total: Any = 50.0, message_id: str | None = None, **props: Any) -> Any:
    stamp = T0 + timedelta(hours=hours)
    return CanonicalEvent.model_validate(
        {
            "messageId": message_id or f"m-{hours}-{total}-{sorted(props.items())}",
            "type": "track",
            "event": "Order Completed",
            "userId": "u",
            "properties": {"total": total, **props},
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": stamp,
            "receivedAt": stamp,
        }
    )


def entered(segment: str, hours: float = 0.0) -> Change:
    return Change("segment.entered", "p", segment, T0 + timedelta(hours=hours), False)


def key(book: ExperimentBook, experiment: str) -> str:
    return next(k for k, a in book.analyses.items() if a.experiment.id == experiment)


def applied(state: ProfileState, *events: Any, b: ExperimentBook | None = None) -> None:
    b = b or book()
    now = max(e.received_at for e in events) + timedelta(minutes=1)  # as when they arrive
    apply_events(state, [Incoming(e) for e in events], CONFIG, now, b.observe)


def test_an_exposed_person_converts_inside_the_window_once_and_adds_their_value() -> None:
    b, state = book(), ProfileState()
    applied(state, order(-1.0), b=b)  # before the exposure: not a conversion
    b.expose(state, "p", [entered("viewers")], computed={})
    arm = arm_of(SPLIT, "p")
    nudge = key(b, "nudge")
    assert b.counters(state) == Counter({f"{nudge}|{arm}|n": 1})
    applied(state, order(2.0, 20.0), order(30.0, 5.5, currency="EUR"), order(200.0), b=b)
    counted = b.counters(state)
    assert counted[f"{nudge}|{arm}|order_7d|c"] == 1
    assert counted[f"{nudge}|{arm}|order_7d|s"] == 2550  # cents; the 200 h order is too late
    assert counted[f"{nudge}|{arm}|order_7d|q"] == 2550 * 2550
    assert counted[f"{nudge}|{arm}|euro_order|c"] == 1
    assert f"{key(b, 'winback')}|control|n" not in counted  # not exposed to that one


def test_a_replayed_or_retried_event_changes_no_count() -> None:
    b, state = book(), ProfileState()
    b.expose(state, "p", [entered("viewers")], computed={})
    applied(state, order(1.0, 10.0, message_id="o-1"), b=b)
    once = b.counters(state)
    applied(state, order(1.0, 10.0, message_id="o-1"), b=b)  # a client's retry
    assert b.counters(state) == once


def test_a_second_entry_is_not_a_second_exposure() -> None:
    b, state = book(), ProfileState()
    b.expose(state, "p", [entered("viewers")], computed={})
    b.expose(state, "p", [entered("viewers", hours=50)], computed={})
    assert sum(n for name, n in b.counters(state).items() if name.endswith("|n")) == 1
    assert state.exposures[key(b, "nudge")].at == T0


def test_a_merge_of_two_exposed_people_leaves_one_exposure_and_the_counts_add_up() -> None:
    b = book()
    survivor, loser = ProfileState(), ProfileState()
    b.expose(survivor, "p", [entered("viewers")], computed={})
    b.expose(loser, "q", [entered("viewers", hours=1)], computed={})
    applied(loser, order(2.0, 10.0), b=b)
    before_s, before_l = b.counters(survivor), b.counters(loser)
    fold(survivor, loser, CONFIG, "merge-1", T0 + timedelta(days=1))
    # The step adds the survivor's delta and subtracts the loser's whole contribution.
    net = Counter(counter_delta(before_s, b.counters(survivor)))
    net.subtract(before_l)
    total = before_s + before_l
    total.update(net)
    assert sum(n for name, n in total.items() if name.endswith("|n")) == 1
    assert state_exposure_arm(survivor, b) == arm_of(SPLIT, "p")  # the survivor's own


def state_exposure_arm(state: ProfileState, b: ExperimentBook) -> str:
    return state.exposures[key(b, "nudge")].arm


def test_a_survivor_never_exposed_takes_the_losers_exposure() -> None:
    b = book()
    survivor, loser = ProfileState(), ProfileState()
    b.expose(loser, "q", [entered("viewers")], computed={})
    fold(survivor, loser, CONFIG, "merge-1", T0)
    assert b.counters(survivor) == b.counters(loser)


def test_exposures_survive_the_codec() -> None:
    b, state = book(), ProfileState()
    b.expose(state, "p", [entered("viewers"), entered("at_risk")], computed={})
    applied(state, order(3.0, 12.34, currency="EUR"), b=b)
    assert decode_state(encode_state(state)).exposures == state.exposures


def test_an_analysis_no_longer_configured_counts_nowhere_and_can_be_forgotten() -> None:
    b, state = book(), ProfileState()
    b.expose(state, "p", [entered("viewers")], computed={})
    changed = ExperimentBook(
        [ORDER, EUROS.model_copy(update={"within": "3d"})],
        [Experiment(id="nudge", segment="viewers", goals=("order_7d", "euro_order"))],
        [SPLIT],
    )
    assert key(changed, "nudge") != key(b, "nudge")  # a changed goal: a new analysis
    assert changed.counters(state) == Counter()
    changed.forget_unconfigured(state)
    assert state.exposures == {}


def test_holdout_arms_agree_with_the_segments_holdout_flag() -> None:
    for n in range(500):
        profile = f"profile-{n}"
        assert (arm_of(HOLDOUT, profile) == "control") == is_held_out(HOLDOUT, profile)
        assert arm_of(HOLDOUT, profile) in ("control", "treated")


def test_variants_split_the_treated_in_their_weights() -> None:
    seen = Counter(variant_of(SPLIT, f"profile-{n}") for n in range(8_000))
    assert set(seen) == {"reminder", "discount"}
    ratio = sample_ratio_mismatch([seen["reminder"], seen["discount"]], [1, 3])
    assert not ratio.flag


@given(st.one_of(st.text(max_size=30), st.floats(), st.integers(), st.booleans(), st.none()))
def test_hostile_values_are_bounded_numbers_or_nothing(value: Any) -> None:
    cents = minor_units(value)
    assert isinstance(cents, int) and abs(cents) <= 10_000_000 * 100


def test_a_report_from_counters_has_the_contracts_fields() -> None:
    b = book()
    nudge = key(b, "nudge")
    counters = {
        f"{nudge}|reminder|n": 1_000,
        f"{nudge}|discount|n": 3_000,
        f"{nudge}|reminder|order_7d|c": 100,
        f"{nudge}|discount|order_7d|c": 390,
        f"{nudge}|reminder|order_7d|s": 500_000,
        f"{nudge}|reminder|order_7d|q": 10**10,
    }
    answer = report(b.analyses[nudge], counters)
    assert [a["name"] for a in answer["arms"]] == ["reminder", "discount"]
    assert answer["arms"][0] | {"conversion_rate": 0.1} == answer["arms"][0]
    lift = answer["lift"]
    assert lift["estimate"] == pytest.approx(0.03)
    assert lift["ci_low"] < 0.03 < lift["ci_high"] and lift["method"] == "sequential"
    assert answer["srm"]["flag"] is False and 0 <= answer["srm"]["p_value"] <= 1
    assert answer["arms"][0]["value_mean"] == pytest.approx(5.0)


def test_the_configuration_refuses_experiments_that_cannot_be_measured() -> None:
    base = load_config("beacon.yaml").model_dump(mode="json")
    for experiments, goals, why in [
        ([{"id": "x", "segment": "nope", "goals": ["g"]}], [], "unknown segment"),
        ([{"id": "x", "segment": "frequent_viewers", "goals": ["g"]}], [], "unknown goals"),
        (
            [{"id": "x", "segment": "lapsed_big_spenders", "goals": ["g"]}],
            [{"id": "g", "event": "Order Completed"}],
            "has one arm",
        ),
    ]:
        with pytest.raises(ValidationError, match=why):
            type(load_config("beacon.yaml")).model_validate(
                base | {"experiments": experiments, "goals": goals}
            )
