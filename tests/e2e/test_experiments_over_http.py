"""An experiment on the local stack with a known effect, counted exactly, over HTTP.

The shipped beacon.yaml runs `viewer_nudge` on `frequent_viewers`, whose members are
split between the variants `reminder` and `ten_percent_off`. The test plays the
journey platform: it reads the webhooks the crm-webhook sink received, and each
notified shopper orders with the probability of their variant (seeded: 10 % after
a reminder, 50 % after a discount). The report must count every exposure and
every order exactly, in the arm it belongs to, and its interval must contain the
true difference of 40 points.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from .conftest import RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually
from .test_segments_over_http import GRANTED
from .test_webhook_over_http import received

pytestmark = pytest.mark.e2e
SHOPPERS = 240
ORDER_RATE = {"reminder": 0.10, "ten_percent_off": 0.50}


def batch(stack: RunningStack, items: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC).isoformat()
    stamped = [
        {**item, "messageId": str(uuid.uuid4()), "context": GRANTED, "timestamp": now}
        for item in items
    ]
    status, answer = call(
        stack, "POST", "/v1/batch", {"batch": stamped, "sentAt": now}, basic_auth("local-write-key")
    )
    assert status == 200, answer


def report(stack: RunningStack) -> dict[str, Any]:
    status, answer = call(stack, "GET", "/v1/experiments/viewer_nudge", headers=ADMIN)
    assert status == 200, answer
    return answer


def test_a_known_lift_is_counted_exactly_and_inside_the_interval(stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:6]
    users = [f"nudge-{run}-{n}" for n in range(SHOPPERS)]
    for user in users:
        views = {"event": "Product Viewed", "properties": {"category": "Shoes"}}
        batch(stack, [{"type": "track", "userId": user, **views} for _ in range(4)])

    def notified() -> dict[str, str] | None:
        seen = {
            r["body"]["user_id"]: r["body"].get("variant")
            for r in received(stack, "crm-webhook")
            if r["body"].get("user_id") in set(users)
            and r["body"]["type"] == "segment.entered"
            and r["body"]["segment_id"] == "frequent_viewers"
        }
        return seen if len(seen) == SHOPPERS else None

    variants = eventually(notified, timeout_s=180)
    assert variants, "not every frequent viewer was notified"
    assert set(variants.values()) == set(ORDER_RATE)  # every webhook names its variant

    draw = random.Random(18)
    orders: dict[str, int] = dict.fromkeys(ORDER_RATE, 0)
    for user in users:  # the journey platform sends the message; some shoppers buy
        variant = variants[user]
        if draw.random() < ORDER_RATE[variant]:
            orders[variant] += 1
            order = {"event": "Order Completed", "properties": {"total": 40.0}}
            batch(stack, [{"type": "track", "userId": user, **order}])

    def counted() -> dict[str, Any] | None:
        answer = report(stack)
        arms = {a["name"]: a for a in answer["arms"]}
        done = sum(a["conversions"] for a in arms.values()) == sum(orders.values())
        return answer if done else None

    answer = eventually(counted, timeout_s=120)
    assert answer, f"the report never counted {orders}: {report(stack)}"
    arms = {a["name"]: a for a in answer["arms"]}
    exposed = {name: sum(1 for v in variants.values() if v == name) for name in ORDER_RATE}
    for name in ORDER_RATE:
        assert arms[name]["exposures"] == exposed[name]
        assert arms[name]["conversions"] == orders[name]
        mean = 40.0 * orders[name] / exposed[name]
        assert arms[name]["value_mean"] == pytest.approx(mean, abs=1e-4), arms  # 4 decimals
    lift = answer["lift"]
    observed = orders["ten_percent_off"] / exposed["ten_percent_off"] - (
        orders["reminder"] / exposed["reminder"]
    )
    assert lift["estimate"] == pytest.approx(observed, abs=1e-6)
    assert lift["enough_data"] and lift["method"] == "sequential"
    truth = ORDER_RATE["ten_percent_off"] - ORDER_RATE["reminder"]
    assert lift["ci_low"] <= truth <= lift["ci_high"]
    assert answer["srm"]["flag"] is False
