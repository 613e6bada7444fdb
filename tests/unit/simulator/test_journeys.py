"""Simulated shopper journeys: seeded, in Segment's wire shape, and plausibly shaped."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from simulator.catalogue import PRODUCTS
from simulator.journeys import PERSONAS, Journey, generate_journeys, sale_calendar

START = datetime(2025, 1, 1, tzinfo=UTC)
ECOMMERCE = {"Product Viewed", "Product Added", "Product Removed", "Cart Viewed", "Order Completed"}


@pytest.fixture(scope="module")
def journeys() -> list[Journey]:
    return generate_journeys(300, 365, 7, START)


def test_same_seed_same_journeys(journeys: list[Journey]) -> None:
    again = generate_journeys(300, 365, 7, START)
    assert json.dumps([j.events for j in again]) == json.dumps([j.events for j in journeys])
    assert [(j.user_id, j.anonymous_id, j.persona) for j in again] == [
        (j.user_id, j.anonymous_id, j.persona) for j in journeys
    ]


def test_another_seed_other_journeys(journeys: list[Journey]) -> None:
    other = generate_journeys(300, 365, 8, START)
    assert [j.events for j in other] != [j.events for j in journeys]


def test_a_shopper_does_not_depend_on_how_many_are_generated(journeys: list[Journey]) -> None:
    few = generate_journeys(20, 365, 7, START)
    assert [j.events for j in few] == [j.events for j in journeys[:20]]


def test_events_are_segment_wire_shaped_and_time_ordered(journeys: list[Journey]) -> None:
    message_ids: set[str] = set()
    for journey in journeys:
        stamps = [e["timestamp"] for e in journey.events]
        assert stamps == sorted(stamps)
        for event in journey.events:
            assert event["type"] in ("track", "identify", "page")
            assert event["timestamp"].endswith("Z")
            moment = datetime.fromisoformat(event["timestamp"])
            assert moment.tzinfo is not None and moment >= START
            assert event.get("anonymousId") == journey.anonymous_id or (
                event.get("userId") == journey.user_id
            )
            message_ids.add(event["messageId"])
            if event["type"] == "track":
                assert event["event"] in ECOMMERCE
            if event["type"] == "identify":
                assert event["userId"] == journey.user_id
                assert event["traits"] == {"email": journey.email, "first_name": journey.first_name}
        json.dumps(journey.events)  # JSON-ready as they are
    assert len(message_ids) == sum(len(j.events) for j in journeys)


def test_product_and_order_properties(journeys: list[Journey]) -> None:
    skus = {sku for sku, *_ in PRODUCTS}
    totals: list[float] = []
    for event in (e for j in journeys for e in j.events if e["type"] == "track"):
        props = event["properties"]
        if event["event"] in ("Product Viewed", "Product Added", "Product Removed"):
            assert props["product_id"] in skus
            assert {"category", "price", "name"} <= props.keys()
        if event["event"] in ("Product Added", "Product Removed"):
            assert props["quantity"] >= 1
        if event["event"] == "Order Completed":
            assert "anonymousId" not in event  # the shop's backend knows the user only
            lines = props["products"]
            subtotal = round(sum(line["price"] * line["quantity"] for line in lines), 2)
            assert props["subtotal"] == subtotal
            assert props["total"] == round(subtotal - props["discount"], 2)
            totals.append(props["total"])
    assert totals and all(t > 0 for t in totals)
    big = sum(t > 500 for t in totals)
    assert 0 < big < len(totals) * 0.15  # a few big spenders, not most orders


def test_orders_come_after_a_log_in(journeys: list[Journey]) -> None:
    for journey in journeys:
        kinds = [e.get("event") or e["type"] for e in journey.events]
        if "Order Completed" in kinds:
            assert kinds.index("identify") < kinds.index("Order Completed")


def test_every_persona_behaves_like_itself(journeys: list[Journey]) -> None:
    seen = Counter(j.persona for j in journeys)
    assert set(seen) == {p.name for p in PERSONAS}
    orders: dict[str, list[int]] = {}
    for journey in journeys:
        count = sum(e.get("event") == "Order Completed" for e in journey.events)
        orders.setdefault(journey.persona, []).append(count)
    mean = {persona: sum(n) / len(n) for persona, n in orders.items()}
    assert mean["loyal"] > mean["occasional"] > mean["browser"]
    assert mean["browser"] < 0.5


def test_sales_are_seeded_and_inside_the_period() -> None:
    sales = sale_calendar(365, 7)
    assert sales == sale_calendar(365, 7)
    assert 2 <= len(sales) <= 6
    assert all(0 <= s.start_day < s.end_day and s.start_day < 365 for s in sales)


def test_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate_journeys(1, 10, 7, datetime(2025, 1, 1))
