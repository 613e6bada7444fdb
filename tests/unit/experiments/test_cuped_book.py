"""The covariate kept with the exposure, its counters, the configuration and the report."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from cli.commands.experiments import render
from cli.dashboard.experiments import _section
from functions.experiments.book import ExperimentBook, counter_delta
from functions.experiments.report import history, report
from functions.experiments.statistics import Covariate, Moments, compare, cuped
from functions.profiles.apply import apply_events, fold
from functions.profiles.codec import decode_state, encode_state, state_from_dict
from functions.profiles.evaluate import Change, arm_of
from functions.profiles.state import Exposure, Incoming, ProfileState
from functions.shared.config import load_config
from functions.shared.events import CanonicalEvent
from functions.shared.experiment_definitions import Experiment
from functions.shared.segment_definitions import (
    CountTrait,
    SegmentsConfig,
    SumTrait,
)
from tests.unit.experiments.test_book import EUROS, HOLDOUT, ORDER, SPLIT, T0

ORDERS = CountTrait(id="orders_365d", event="Order Completed", window="365d")
SPEND = SumTrait(id="spend", event="Order Completed", property="total")
CONFIG = SegmentsConfig(computed_traits=(ORDERS, SPEND), segments=(HOLDOUT, SPLIT))


def book(covariate: Any = "spend", traits: tuple[Any, ...] = (ORDERS, SPEND)) -> ExperimentBook:
    experiment = Experiment(
        id="nudge", segment="viewers", goals=("order_7d", "euro_order"), covariate=covariate
    )
    return ExperimentBook([ORDER, EUROS], [experiment], [HOLDOUT, SPLIT], traits)


def order(hours: float, total: float, message_id: str) -> CanonicalEvent:
    stamp = T0 + timedelta(hours=hours)
    return CanonicalEvent.model_validate(
        {
            "messageId": message_id,
            "type": "track",
            "event": "Order Completed",
            "userId": "u",
            "properties": {"total": total},
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": stamp,
            "receivedAt": stamp,
        }
    )


def entered() -> Change:
    return Change("segment.entered", "p", "viewers", T0, False)


def test_the_covariate_is_the_traits_value_at_exposure_and_its_sums_are_counted() -> None:
    b, state = book(), ProfileState()
    b.expose(state, "p", [entered()], computed={"spend": 12.5, "orders_365d": 3})
    (key,) = b.analyses
    assert state.exposures[key].covariates == {"order_7d": 1250, "euro_order": 1250}
    apply_events(
        state, [Incoming(order(2.0, 40.0, "o-1"))], CONFIG, T0 + timedelta(hours=3), b.observe
    )
    base = f"{key}|{arm_of(SPLIT, 'p')}|order_7d"
    counted = b.counters(state)
    assert counted[f"{base}|x"] == 1250 and counted[f"{base}|xx"] == 1250**2
    assert counted[f"{base}|xc"] == 1250 and counted[f"{base}|xs"] == 1250 * 4000
    # euro_order has no value: no x*value; the order was not in EUR: no x*conversion.
    euro = base.replace("order_7d", "euro_order")
    assert f"{euro}|xs" not in counted and f"{euro}|xc" not in counted
    assert counted[f"{euro}|x"] == 1250
    # The covariate stays what it was at exposure, whatever the trait does later.
    b.expose(state, "p", [entered()], computed={"spend": 999.0})
    assert b.counters(state) == counted


def test_a_negative_covariate_is_counted_and_a_missing_trait_is_zero() -> None:
    b, state = book({"order_7d": "spend"}), ProfileState()
    b.expose(state, "p", [entered()], computed={"spend": -20.0})
    (key,) = b.analyses
    base = f"{key}|{arm_of(SPLIT, 'p')}|order_7d"
    assert b.counters(state)[f"{base}|x"] == -2000
    assert state.exposures[key].covariates == {"order_7d": -2000}  # euro_order: none
    refund = order(1.0, -15.0, "r-1")  # a refund larger than any order: negative value
    apply_events(state, [Incoming(refund)], CONFIG, T0 + timedelta(hours=2), b.observe)
    assert b.counters(state)[f"{base}|s"] == -1500
    assert b.counters(state)[f"{base}|xs"] == -2000 * -1500
    other = ProfileState()
    b.expose(other, "p", [entered()], computed={})
    assert other.exposures[key].covariates == {}
    assert not any(name.endswith(("|x", "|xx")) for name in b.counters(other))


def test_a_merge_keeps_one_exposure_with_its_own_covariate() -> None:
    b = book()
    survivor, loser = ProfileState(), ProfileState()
    b.expose(loser, "q", [entered()], computed={"spend": 30.0})
    b.expose(survivor, "p", [entered()], computed={"spend": 5.0})
    before_s, before_l = b.counters(survivor), b.counters(loser)
    fold(survivor, loser, CONFIG, "merge-1", T0 + timedelta(days=1))
    net = Counter(counter_delta(before_s, b.counters(survivor)))
    net.subtract(before_l)
    total = before_s + before_l
    total.update(net)
    assert {n: v for n, v in total.items() if v} == b.counters(survivor)
    assert sum(v for n, v in total.items() if n.endswith("order_7d|x")) == 500


def test_covariates_survive_the_codec_and_old_exposures_still_decode() -> None:
    b, state = book(), ProfileState()
    b.expose(state, "p", [entered()], computed={"spend": 7.0})
    assert decode_state(encode_state(state)).exposures == state.exposures
    old = {"x": {"k.1": [1772452800, "reminder", ["order_7d"], {"order_7d": 500}]}}
    assert state_from_dict(old).exposures == {
        "k.1": Exposure("reminder", T0, {"order_7d"}, {"order_7d": 500}, {})
    }


def test_an_experiment_without_a_covariate_keeps_its_analysis_and_a_changed_one_starts_anew() -> (
    None
):
    plain = Experiment(id="nudge", segment="viewers", goals=("order_7d",))
    defined = {  # the digest as it was computed before covariates existed
        "experiment": {"id": "nudge", "segment": "viewers", "goals": ["order_7d"]},
        "goals": [ORDER.model_dump(mode="json")],
        "arms": SPLIT.arms(),
    }
    digest = hashlib.sha256(json.dumps(defined, sort_keys=True).encode()).hexdigest()[:8]
    goals = {"order_7d": ORDER}
    assert plain.analysis(goals, SPLIT) == f"nudge.{digest}"
    with_spend = plain.model_copy(update={"covariate": "spend"})
    keys = {
        plain.analysis(goals, SPLIT),
        with_spend.analysis(goals, SPLIT, {"spend": SPEND}),
        with_spend.analysis(goals, SPLIT, {"spend": SPEND.model_copy(update={"window": "90d"})}),
        plain.model_copy(update={"covariate": "orders_365d"}).analysis(
            goals, SPLIT, {"orders_365d": ORDERS}
        ),
    }
    assert len(keys) == 4


def test_the_configuration_refuses_a_covariate_that_is_not_a_number() -> None:
    base = load_config("beacon.yaml").model_dump(mode="json")
    model = type(load_config("beacon.yaml"))
    experiment = {"id": "x", "segment": "frequent_viewers", "goals": ["order_7d"]}
    for covariate, why in [
        ("nope", "'nope' is not a computed trait"),
        ("favourite_category", "is a most_frequent trait"),
        ({"order_30d": "orders_365d"}, "does not measure: order_30d"),
    ]:
        with pytest.raises(ValidationError, match=why):
            model.model_validate(base | {"experiments": [experiment | {"covariate": covariate}]})
    accepted = model.model_validate(
        base | {"experiments": [experiment | {"covariate": {"order_7d": "lifetime_value"}}]}
    )
    assert accepted.experiments[0].covariate_of("order_7d") == "lifetime_value"


def _counters(key: str, arms: dict[str, tuple[int, ...]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for arm, (n, c, s, q, x, xx, xc, xs) in arms.items():
        base = f"{key}|{arm}|order_7d"
        out |= {f"{key}|{arm}|n": n, f"{base}|c": c, f"{base}|s": s, f"{base}|q": q}
        out |= {f"{base}|x": x, f"{base}|xx": xx, f"{base}|xc": xc, f"{base}|xs": xs}
    return out


def test_the_report_leads_with_cuped_when_a_covariate_is_configured() -> None:
    b = book({"order_7d": "spend"})
    (key,) = b.analyses
    counters = _counters(
        key,
        {
            "reminder": (1_000, 100, 600_000, 10**10, 2_000_000, 10**10, 494_000, 4 * 10**9),
            "discount": (
                3_000,
                390,
                2_000_000,
                3 * 10**10,
                6_100_000,
                3 * 10**10,
                1_770_000,
                10**10,
            ),
        },
    )
    answer = report(b.analyses[key], counters)
    goal = answer["goals"][0]
    assert goal["covariate"] == "spend" and goal["arms"][0]["covariate_mean"] == 20.0
    lift = answer["lift"]
    assert lift["headline"] == "cuped"
    # The same numbers as the statistics module's, from the same counters: `lift`
    # itself stays the unadjusted difference, `cuped` is beside it.
    moments = [Moments(1_000, 100, 100), Moments(3_000, 390, 390)]
    xs = [Covariate(20_000, 10**6, 4_940), Covariate(61_000, 3 * 10**6, 17_700)]
    expected = cuped(moments[1], xs[1], moments[0], xs[0])
    adjusted = lift["cuped"]
    assert adjusted["estimate"] == pytest.approx(expected.comparison.difference.estimate, abs=1e-6)
    assert adjusted["ci_low"] == pytest.approx(expected.comparison.difference.low, abs=1e-6)
    assert adjusted["fixed_horizon"]["ci_high"] == pytest.approx(
        expected.comparison.fixed_horizon.high, abs=1e-6
    )
    assert adjusted["variance_reduction"] == pytest.approx(expected.variance_reduction, abs=1e-6)
    assert adjusted["variance_reduction"] > 0.1
    assert adjusted["ci_high"] - adjusted["ci_low"] < lift["ci_high"] - lift["ci_low"]
    assert lift["estimate"] == pytest.approx(0.03)
    plain = compare(moments[1], moments[0]).difference
    assert lift["ci_low"] == pytest.approx(plain.low, abs=1e-6)
    assert goal["comparisons"][0]["value_lift"]["headline"] == "cuped"
    assert answer["goals"][1]["comparisons"][0]["lift"]["headline"] == "unadjusted"  # euro
    (point,) = history(b.analyses[key], counters, [("2026-12-04", {})])  # the chart
    assert (point["estimate"], point["ci_low"]) == (adjusted["estimate"], adjusted["ci_low"])
    reduction = f"variance -{lift['cuped']['variance_reduction']:.0%}"
    assert f"(CUPED, {reduction}; unadjusted +3.00% [" in render(answer)
    assert f"(CUPED: {reduction})" in _section(answer, [])


def test_counter_items_from_before_covariates_report_the_unadjusted_lift() -> None:
    b = book({"order_7d": "spend"})
    (key,) = b.analyses
    counters = {
        f"{key}|reminder|n": 1_000,
        f"{key}|discount|n": 3_000,
        f"{key}|reminder|order_7d|c": 100,
        f"{key}|discount|order_7d|c": 390,
    }
    lift = report(b.analyses[key], counters)["lift"]
    assert lift["cuped"]["variance_reduction"] == 0.0 and lift["cuped"]["theta"] == 0.0
    assert (lift["estimate"], lift["ci_low"]) == (
        lift["cuped"]["estimate"],
        lift["cuped"]["ci_low"],
    )
    no_covariate = book(None)
    (plain_key,) = no_covariate.analyses
    renamed = {k.replace(key, plain_key): v for k, v in counters.items()}
    plain = report(no_covariate.analyses[plain_key], renamed)["lift"]
    assert plain["headline"] == "unadjusted" and "cuped" not in plain
    assert {k: v for k, v in lift.items() if k not in ("headline", "cuped")} == {
        k: v for k, v in plain.items() if k != "headline"
    }


def test_the_project_config_measures_viewer_nudge_with_cuped() -> None:
    book_ = ExperimentBook.from_config(load_config("beacon.yaml"))
    nudge = next(a for a in book_.analyses.values() if a.experiment.id == "viewer_nudge")
    assert nudge.covariate_of(nudge.goals[0]) == "lifetime_value"
