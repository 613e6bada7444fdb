"""Webhooks on the local stack: a shopper entering `cart_abandoners` is delivered,
signed, to the demo destinations' sinks, and the read API shows the delivery log."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import timedelta

import pytest

from .conftest import RunningStack
from .test_consent_over_http import ADMIN, call, eventually
from .test_segments_over_http import send

pytestmark = pytest.mark.e2e


def received(stack: RunningStack, sink: str) -> list[dict]:
    """What a sink kept: an operator page, behind the admin key."""
    request = urllib.request.Request(f"{stack.url}/_sink/{sink}/received", headers=ADMIN)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_an_abandoned_cart_reaches_the_webhook_and_journey_builder(stack):
    user = f"abandoner-{uuid.uuid4().hex[:8]}"
    send(stack, user, {"traits": {"email": f"{user}@example.org"}}, timedelta(hours=30))
    added = {"product_id": "sku-104", "price": 289.0, "quantity": 1}
    send(stack, user, {"event": "Product Added", "properties": added}, timedelta(hours=25))

    def delivered():
        status, answer = call(
            stack, "GET", f"/v1/profiles/user_id:{user}/deliveries", headers=ADMIN
        )
        outcomes = {
            (d["destination"], d["subject"], d["outcome"]) for d in answer.get("deliveries", [])
        }
        wanted = {
            ("crm-webhook", "cart_abandoners", "delivered"),
            ("sfmc", "cart_abandoners", "delivered"),
        }
        return status == 200 and wanted <= outcomes

    assert eventually(delivered, timeout_s=40), "the cart_abandoners entry was not delivered"
    webhook = [
        r
        for r in received(stack, "crm-webhook")
        if r["body"].get("user_id") == user and r["body"]["type"] == "segment.entered"
    ]
    assert [r["body"]["segment_id"] for r in webhook] == ["cart_abandoners"]
    assert webhook[0]["webhook_id"] == webhook[0]["body"]["id"]  # signed, deduplicable
    journey = [r for r in received(stack, "sfmc") if r["body"].get("ContactKey") == user]
    assert journey and journey[0]["body"]["EventDefinitionKey"] == "APIEvent-beacon-demo"
