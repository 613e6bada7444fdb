"""Segments on the local stack: the seeds' example journeys enter and leave their
segments over real HTTP, the sweep fires a 24 h condition, and the read API shows it.

Time-based conditions are shown without a fake clock: events are sent with
Segment's `timestamp` and `sentAt`, so ingest's clock-skew rule dates them in the
past, and the local sweep (every 5 s) finds the cart once its 24 h are up.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually

pytestmark = pytest.mark.e2e
GRANTED = {"consent": {"categoryPreferences": {"personalization": True, "analytics": True}}}


def send(stack: RunningStack, user: str, body: dict, ago: timedelta = timedelta(0)) -> None:
    now = datetime.now(UTC)
    stamped = {
        **body,
        "userId": user,
        "context": GRANTED,
        "timestamp": (now - ago).isoformat(),
        "sentAt": now.isoformat(),
    }
    path = "/v1/identify" if "traits" in body else "/v1/track"
    status, answer = call(stack, "POST", path, stamped, basic_auth("local-write-key"))
    assert status == 200, answer


def segments_of(stack: RunningStack, user: str) -> dict:
    status, profile = call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN)
    return profile.get("segments", {}) if status == 200 else {}


def wait_for(stack: RunningStack, user: str, wanted: set[str], absent: set[str] = frozenset()):
    def check():
        current = segments_of(stack, user)
        return current if wanted <= set(current) and not (absent & set(current)) else None

    found = eventually(check, timeout_s=40)
    assert found, f"{user}: wanted {wanted}, absent {absent}, has {segments_of(stack, user)}"
    return found


def test_a_cart_left_for_24_hours_enters_cart_abandoners_and_an_order_takes_it_out(stack):
    user = f"cart-{uuid.uuid4().hex[:8]}"
    added = {"product_id": "sku-102", "price": 449.0, "quantity": 1, "name": "Ultralight Tent"}
    # Added 24 h minus 20 s ago: not abandoned yet, but due within seconds.
    margin = timedelta(seconds=20)
    due = datetime.now(UTC) + margin
    send(stack, user, {"event": "Product Added", "properties": added}, timedelta(hours=24) - margin)
    status, profile = eventually(
        lambda: (
            (r := call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN))[0] == 200
            and "segments" in r[1]
            and r
        ),
        timeout_s=30,
    )
    assert status == 200
    if datetime.now(UTC) < due - timedelta(seconds=1):  # a slow machine may read it late
        assert profile["computed"]["cart"]["abandoned"] is False
        assert "cart_abandoners" not in profile["segments"]

    wait_for(stack, user, {"cart_abandoners"})  # the sweep saw the 24 h pass
    send(stack, user, {"event": "Order Completed", "properties": {"total": 449.0}})
    wait_for(stack, user, {"stage_purchase"}, absent={"cart_abandoners"})


def test_frequent_viewers_lifecycle_and_lapsed_big_spenders(stack):
    viewer = f"viewer-{uuid.uuid4().hex[:8]}"
    for _ in range(4):
        send(stack, viewer, {"event": "Product Viewed", "properties": {"category": "Shoes"}})
    found = wait_for(stack, viewer, {"frequent_viewers", "stage_consideration"})
    assert "stage_awareness" not in found

    lapsed = f"lapsed-{uuid.uuid4().hex[:8]}"
    for days in (200, 120):
        send(
            stack,
            lapsed,
            {"event": "Order Completed", "properties": {"total": 650.0}},
            timedelta(days=days),
        )
    wait_for(stack, lapsed, {"lapsed_big_spenders", "stage_retention"})
    # A new order: no longer lapsed.
    send(stack, lapsed, {"event": "Order Completed", "properties": {"total": 80.0}})
    wait_for(stack, lapsed, {"stage_retention"}, absent={"lapsed_big_spenders"})

    status, profile = call(stack, "GET", f"/v1/profiles/user_id:{lapsed}", headers=ADMIN)
    computed = profile["computed"]
    assert computed["orders_total"] == 3 and computed["lifetime_value"] == 1380.0
    assert computed["rfm"]["recency"] == 5

    status, listing = call(stack, "GET", "/v1/segments", headers=ADMIN)
    sizes = {s["id"]: s["size"] for s in listing["segments"]}
    assert status == 200 and sizes["frequent_viewers"] >= 1 and sizes["stage_retention"] >= 1
    assert call(stack, "GET", "/v1/segments")[0] == 401


def test_simulated_journeys_over_weeks_arrive_dated_and_fill_segments(stack):
    from simulator.shoppers import Simulator

    report = Simulator(stack.url, "local-write-key", "local-server-write-key", seed=3).run(
        customers=8, bad_requests=False, days=45
    )
    assert report.units_sent > 50 and set(report.statuses) == {200}

    def sized():
        status, listing = call(stack, "GET", "/v1/segments", headers=ADMIN)
        sizes = {s["id"]: s["size"] for s in listing["segments"]}
        return (
            sizes if status == 200 and sizes["stage_purchase"] + sizes["stage_retention"] else None
        )

    assert eventually(sized, timeout_s=60), "weeks of orders reached no purchase stage"
