"""The decision item: what a page may be told, built from a profile's view (pure)."""

from __future__ import annotations

import json

import pytest

from functions.shared.decision import (
    DECISION_VERSION,
    NOT_PERSONALIZED,
    Decision,
    DecisionRules,
    Recommendation,
    decision_from,
)

RULES = DecisionRules(
    required_consent=("personalization",),
    traits=("first_name", "nickname"),
    computed_traits=("favourite_category", "cart", "viewed"),
)
GRANTED = {"personalization": True}


def told(**view: object) -> Decision:
    base: dict[str, object] = {
        "traits": {},
        "computed": {},
        "memberships": {},
        "consent": GRANTED,
        "scores": {},
        "rules": RULES,
    }
    return decision_from(**(base | view))  # type: ignore[arg-type]


def test_allow_listed_traits_segments_and_bands_only() -> None:
    decision = told(
        traits={"first_name": "Ana", "last_name": "Silva", "email": "ana@example.org"},
        computed={"favourite_category": "shoes", "orders_total": 3},
        memberships={"cart_abandoners": False, "churn_risk": True},
        scores={
            "churn": {"probability": 0.81, "band": "high"},
            "purchase": {"probability": 0.2},
        },
    )
    assert decision.personalized
    assert dict(decision.traits) == {"first_name": "Ana", "favourite_category": "shoes"}
    # A held-out member is treated as a non-member, as activations treat them.
    assert decision.segments == ("cart_abandoners",)
    assert dict(decision.scores) == {"churn": "high"}  # the band, never the number
    assert "0.81" not in decision.body()


def test_without_the_required_consent_nothing_is_used() -> None:
    view = {
        "traits": {"first_name": "Ana"},
        "memberships": {"cart_abandoners": False},
        "scores": {"churn": {"band": "high"}},
    }
    assert told(consent={"personalization": False}, **view) == NOT_PERSONALIZED
    assert told(consent={}, **view) == NOT_PERSONALIZED  # opt-in: never asked is no
    opt_out = DecisionRules(required_consent=("personalization",), opt_out=True)
    assert decision_from(
        traits={}, computed={}, memberships={"x": False}, consent={}, scores={}, rules=opt_out
    ).personalized


@pytest.mark.parametrize(
    "value",
    [
        "ana@example.org",
        "write to ana@example.org please",
        "+1 415 555 0100",
        "(415) 555-0100",
        "4155550100",
        "Ana +1 415 555 0100",
        "call me: 415.555.0100 after 6",
    ],
)
def test_contact_data_in_an_allowed_trait_is_never_told(value: str) -> None:
    decision = told(traits={"first_name": value, "nickname": "ok"})
    assert dict(decision.traits) == {"nickname": "ok"}


def test_values_are_bounded() -> None:
    decision = told(
        traits={"first_name": "x" * 5000, "nickname": float("inf")},
        computed={
            "cart": {"quantity": 2, "value": 138.0, "abandoned": True, "items": [{"id": 1}]},
            "viewed": [f"c{i}" for i in range(100)],
        },
    )
    assert decision.traits["first_name"] == "x" * RULES.max_value_chars
    assert "nickname" not in decision.traits  # not finite: not told
    assert decision.traits["cart"] == {"quantity": 2, "value": 138.0, "abandoned": True}
    assert len(decision.traits["viewed"]) == 20


def test_identifying_names_are_refused_even_when_listed() -> None:
    rules = DecisionRules(traits=("email", "first_name"))
    decision = decision_from(
        traits={"email": "someone", "first_name": "Ana"},
        computed={},
        memberships={},
        consent=GRANTED,
        scores={},
        rules=rules,
    )
    assert dict(decision.traits) == {"first_name": "Ana"}


def test_body_round_trips_is_versioned_and_stable() -> None:
    decision = Decision(
        personalized=True,
        segments=("a", "b"),
        traits={"first_name": "Ana"},
        scores={"churn": "low"},
        recommendations=(Recommendation("sku-1", 0.9),),
        persona="explorer",
        experiments={"cart_recovery": "treated"},
    )
    body = decision.body()
    assert json.loads(body)["v"] == DECISION_VERSION
    assert Decision.from_body(body) == decision
    assert Decision.from_body(body).digest == decision.digest
    # The slots the next issues fill are present (empty) in every body.
    empty = json.loads(NOT_PERSONALIZED.body())
    assert empty["recommendations"] == [] and empty["experiments"] == {}
    assert "persona" in empty
    with pytest.raises(ValueError, match="unknown version"):
        Decision.from_body(json.dumps({"v": 99}))


def test_equal_content_equal_digest_any_change_a_new_one() -> None:
    a = told(traits={"first_name": "Ana"}, memberships={"x": False})
    b = told(traits={"first_name": "Ana"}, memberships={"x": False})
    c = told(traits={"first_name": "Ana"}, memberships={"x": False, "y": False})
    assert a.digest == b.digest != c.digest


def test_a_page_is_told_its_experiment_arms_only_for_segments_it_may_be_told_of() -> None:
    rules = DecisionRules(required_consent=("personalization",), segments=("frequent_viewers",))
    arms = {
        "viewer_nudge": ("frequent_viewers", "ten_percent_off"),
        "winback": ("churn_risk", "control"),
    }
    decision = told(rules=rules, experiments=arms)
    assert dict(decision.experiments) == {"viewer_nudge": "ten_percent_off"}
    assert json.loads(decision.body())["experiments"] == {"viewer_nudge": "ten_percent_off"}
    refused = told(rules=rules, experiments=arms, consent={"personalization": False})
    assert dict(refused.experiments) == {}
