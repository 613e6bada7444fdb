"""The decision item tells a page the recommendations and persona, bounded, with consent."""

from __future__ import annotations

from typing import Any

from functions.shared.decision import Decision, DecisionRules, decision_from, told_extras

RULES = DecisionRules()
GRANTED = {"personalization": True}


def decide(scores: dict[str, Any], consent: dict[str, bool] = GRANTED) -> Decision:
    return decision_from(
        traits={}, computed={}, memberships={}, consent=consent, scores=scores, rules=RULES
    )


def test_recommendations_and_persona_are_told_and_round_trip() -> None:
    scores = {
        "churn": {"probability": 0.2, "band": "low"},
        "recommendations": {"items": [["sku-1", 1.0], ["sku-2", 0.5]], "model_version": "v"},
        "persona": {"id": 2, "name": "Weekend Cyclists", "model_version": "v"},
    }
    decision = decide(scores)
    assert [r.item_id for r in decision.recommendations] == ["sku-1", "sku-2"]
    assert decision.persona == "Weekend Cyclists"
    assert decision.scores == {"churn": "low"}  # the entries are not models' bands
    assert Decision.from_body(decision.body()) == decision
    assert told_extras(scores) == {
        "recommendations": ["sku-1", "sku-2"],
        "persona": "Weekend Cyclists",
    }


def test_without_consent_nothing_is_told() -> None:
    scores = {"recommendations": {"items": [["sku-1", 1.0]]}, "persona": {"name": "x"}}
    decision = decide(scores, consent={"personalization": False})
    assert decision.recommendations == () and decision.persona is None


def test_stored_values_are_bounded_again_when_read() -> None:
    junk: list[Any] = [["x" * 65, 1.0], [7, 1.0], ["ok", float("nan")], ["a"], "b", ["fine", 2]]
    items = junk + [[f"sku-{i}", 0.1] for i in range(30)]
    decision = decide({"recommendations": {"items": items}, "persona": {"name": "p" * 500}})
    assert decision.recommendations[0].item_id == "fine"
    assert len(decision.recommendations) <= 10
    assert decision.persona == "p" * 100
    assert decide({"recommendations": "nonsense", "persona": ["x"]}).recommendations == ()
