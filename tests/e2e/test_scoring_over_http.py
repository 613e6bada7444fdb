"""Scoring on the local stack: an at-risk customer's churn score rises and they enter
`churn_risk`; the read API shows the score and the model version."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_consent_over_http import ADMIN, call, eventually
from .test_segments_over_http import send

pytestmark = pytest.mark.e2e
DAY = timedelta(days=1)


def test_an_at_risk_customer_enters_churn_risk_with_the_models_version(stack):
    user = f"fading-{uuid.uuid4().hex[:8]}"
    send(stack, user, {"traits": {"email": f"{user}@example.org"}}, 201 * DAY)
    send(stack, user, {"event": "Order Completed", "properties": {"total": 80.0}}, 200 * DAY)
    send(stack, user, {"event": "Order Completed", "properties": {"total": 60.0}}, 150 * DAY)
    send(stack, user, {"event": "Product Viewed", "properties": {"category": "Shoes"}}, 100 * DAY)

    def scored():
        status, profile = call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN)
        if status == 200 and "churn_risk" in profile.get("segments", {}):
            return profile
        return None

    profile = eventually(scored, timeout_s=40)
    assert profile, "the fading customer never entered churn_risk"
    churn = profile["scores"]["churn"]
    manifest = json.loads(Path(ROOT, "models", "churn.manifest.json").read_text())
    assert churn["probability"] >= 0.7
    assert churn["model_version"] == manifest["version"]
    assert "purchase" in profile["scores"]
