"""The model registry on the local stack: `beacon models push --promote` and the next
event's score carries the new version (no restart); `beacon models rollback` returns
the bundled one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from .conftest import ROOT, RunningStack
from .test_consent_over_http import ADMIN, call, eventually
from .test_segments_over_http import send

pytestmark = pytest.mark.e2e
DAY = timedelta(days=1)
# The local stack re-reads a model pointer every 5 s (BEACON_MODEL_POINTER_TTL_S):
# an event scored sooner after a promotion is scored by the version before.
POINTER_TTL_S = 5


def beacon_models(stack: RunningStack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "models", *args, "--aws-endpoint", stack.aws_endpoint],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def version(name: str) -> str:
    return str(json.loads(Path(ROOT, "models", f"{name}.manifest.json").read_text())["version"])


def test_a_promoted_version_scores_the_next_event_and_rollback_returns(stack):
    user = f"registry-{uuid.uuid4().hex[:8]}"
    bundled, pushed = version("churn"), version("purchase")

    def churn_version(expected: str):
        def check():
            status, profile = call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN)
            churn = profile.get("scores", {}).get("churn", {}) if status == 200 else {}
            return churn.get("model_version") == expected or None

        return eventually(check, timeout_s=40)

    send(stack, user, {"event": "Order Completed", "properties": {"total": 80.0}}, 100 * DAY)
    assert churn_version(bundled), "the bundled churn model never scored"

    beacon_models(stack, "push", "models/purchase.onnx", "--model", "churn", "--promote")
    time.sleep(POINTER_TTL_S + 1)
    try:
        listed = json.loads(beacon_models(stack, "list"))
        assert {"model": "churn", "active": pushed} in [
            {"model": m["model"], "active": m["active"]} for m in listed
        ]
        send(
            stack, user, {"event": "Product Viewed", "properties": {"category": "Shoes"}}, 50 * DAY
        )
        assert churn_version(pushed), "the promoted version never scored an event"
    finally:
        beacon_models(stack, "rollback", "churn")
    time.sleep(POINTER_TTL_S + 1)
    send(stack, user, {"event": "Product Viewed", "properties": {"category": "Bags"}}, 40 * DAY)
    assert churn_version(bundled), "rollback did not return to the bundled model"
