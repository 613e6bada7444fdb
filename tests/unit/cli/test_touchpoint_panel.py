"""The dashboard's "What a page is told" panel: the answer, and why."""

from __future__ import annotations

from pathlib import Path

from cli.dashboard.touchpoint import touchpoint_panel
from functions.shared.config import load_config
from functions.shared.decision import Decision, StoredDecision

ROOT = Path(__file__).resolve().parents[3]
CONFIG = load_config(ROOT / "beacon.yaml")
PROFILE = {
    "consent": {"personalization": {"granted": True, "at": "2026-11-22T20:45:03+00:00",
                                    "source": "segment:categoryPreferences"}},
    "segments": {"cart_abandoners": {"since": "2026-11-23T10:00:00+00:00", "held_out": False},
                 "churn_risk": {"since": "2026-11-23T10:00:00+00:00", "held_out": True}},
    "scores": {"churn": {"probability": 0.81, "band": "high"}},
}  # fmt: skip


def test_told_with_the_rule_the_allow_list_and_the_consent() -> None:
    decision = Decision(True, ("cart_abandoners",), {"first_name": "<Ana>"}, {"churn": "high"})
    panel = touchpoint_panel(PROFILE, StoredDecision(decision), CONFIG)
    assert "segment cart_abandoners" in panel and "profile.computed.cart.abandoned" in panel
    assert "personalization: granted at 2026-11-22T20:45:03+00:00" in panel
    assert "held out of churn_risk" in panel
    assert "&lt;Ana&gt; (personalize.traits)" in panel  # escaped
    assert "band high (probability 0.81" in panel


def test_not_personalized_says_so() -> None:
    refused = {"consent": {"personalization": {"granted": False, "at": "t", "source": "cmp"}}}
    panel = touchpoint_panel(refused, None, CONFIG)
    assert "personalization: refused" in panel and '"personalized": false' in panel
