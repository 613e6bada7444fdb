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


def test_a_camping_viewer_gets_related_items_on_the_page_and_in_braze_a_buyer_never_the_bought(
    stack,
):
    """Issue 17: recommendations from related items through GET /v1/personalize and in
    the Braze sink's attributes; the bought item is never among them."""
    from functions.scoring.recommend import load_configured_recommender
    from functions.shared.config import load_config

    artifact = load_configured_recommender(load_config("beacon.yaml").models, ".")
    assert artifact is not None
    user, anonymous_id = f"camper-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    tents = ["sku-100", "sku-104", "sku-113", "sku-107"]  # four Camping items this hour
    for n, sku in enumerate(tents):
        viewed = {"product_id": sku, "category": "Camping"}
        send(
            stack,
            user,
            {"event": "Product Viewed", "properties": viewed, "anonymousId": anonymous_id},
            timedelta(minutes=10 - n),
        )
    bought = {"products": [{"product_id": "sku-100", "category": "Camping"}], "total": 449.0}
    send(stack, user, {"event": "Order Completed", "properties": bought}, timedelta(minutes=1))

    def told():
        url = f"/v1/personalize?writeKey=local-write-key&anonymousId={anonymous_id}"
        status, answer = call(stack, "GET", url)
        items = [r["item_id"] for r in answer.get("recommendations", [])] if status == 200 else []
        # Wait for the answer that reflects the order as well as the views.
        return items if items and "sku-100" not in items else None

    items = eventually(told, timeout_s=40)
    assert items, "no recommendations in GET /v1/personalize"
    assert len(items) <= 10 and "sku-100" not in items
    assert sum(artifact.categories.get(i) == "Camping" for i in items) >= 5, items

    def in_braze():
        attributes = [
            a
            for r in received(stack, "braze")
            for a in r["body"].get("attributes", [])
            if a.get("external_id") == user and "beacon_recommendations" in a
        ]
        return attributes[-1]["beacon_recommendations"] if attributes else None

    sent = eventually(in_braze, timeout_s=40)
    assert sent, "the Braze sink got no beacon_recommendations attribute"
    assert all(isinstance(i, str) for i in sent) and len(sent) <= 10
    assert any(artifact.categories.get(i) == "Camping" for i in sent)
