"""E-commerce events become bounded implicit feedback on the profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.profiles.apply import apply_events, fold
from functions.profiles.codec import decode_state, encode_state
from functions.profiles.interactions import (
    MAX_ORDER_LINES,
    ItemSeen,
    interactions,
    item_id,
    recency_weights,
    record_items,
)
from functions.profiles.state import Incoming, ProfileState
from functions.shared.events import CanonicalEvent
from functions.shared.profile_limits import MAX_ITEM_ID_CHARS, MAX_ITEMS
from functions.shared.segment_definitions import SegmentsConfig

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
CONFIG = SegmentsConfig()


def event(n: int, name: str, **properties: Any) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "messageId": f"m-{n}",
            "type": "track",
            "event": name,
            "userId": "u-1",
            "properties": properties,
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": T0 + timedelta(minutes=n),
            "receivedAt": T0 + timedelta(minutes=n),
        }
    )


def test_weights_by_kind_and_bought_marked() -> None:
    state = ProfileState()
    records = [
        event(0, "Product Viewed", product_id="sku-1", category="Camping"),
        event(1, "Product Added", sku="sku-1"),
        event(2, "Order Completed", products=[{"product_id": "sku-1"}, {"sku": "sku-2"}]),
        event(3, "Product Viewed", product_id="sku-3"),
    ]
    apply_events(state, [Incoming(e) for e in records], CONFIG, T0 + timedelta(hours=1))
    assert state.items["sku-1"].weight == 1 + 3 + 5
    assert state.items["sku-1"].category == "Camping"
    assert state.items["sku-1"].bought == int((T0 + timedelta(minutes=2)).timestamp())
    assert state.items["sku-2"].weight == 5 and state.items["sku-2"].bought
    assert state.items["sku-3"].weight == 1 and not state.items["sku-3"].bought
    assert decode_state(encode_state(state)).items == state.items


def test_other_events_and_bad_ids_are_not_items() -> None:
    assert interactions(event(0, "Product Removed", product_id="sku-1")) == []
    assert interactions(event(0, "Cart Viewed", products=[{"product_id": "a"}])) == []
    assert interactions(event(0, "Product Viewed", product_id="a b")) == []
    assert interactions(event(0, "Product Viewed", product_id="x" * 65)) == []
    assert interactions(event(0, "Product Viewed", product_id=True)) == []
    # A bad product_id does not hide a good sku.
    assert [i.item_id for i in interactions(event(0, "Product Viewed", product_id={}, sku=7))] == [
        "7"
    ]


def test_only_the_first_order_lines_count() -> None:
    lines = [{"product_id": f"p{i}"} for i in range(MAX_ORDER_LINES + 30)]
    assert len(interactions(event(0, "Order Completed", products=lines))) == MAX_ORDER_LINES


def test_the_newest_items_are_kept_at_the_cap() -> None:
    items: dict[str, ItemSeen] = {}
    for n in range(MAX_ITEMS + 25):
        record_items(items, event(n, "Product Viewed", product_id=f"p{n}"), 1_000 + n)
    assert len(items) == MAX_ITEMS
    assert "p0" not in items and f"p{MAX_ITEMS + 24}" in items


def test_a_merge_adds_weights_and_keeps_purchases() -> None:
    survivor, loser = ProfileState(), ProfileState()
    now = T0 + timedelta(hours=1)
    apply_events(survivor, [Incoming(event(0, "Product Viewed", product_id="a"))], CONFIG, now)
    loser_events = [
        Incoming(event(1, "Product Viewed", product_id="a")),
        Incoming(event(2, "Order Completed", products=[{"product_id": "b"}])),
    ]
    apply_events(loser, loser_events, CONFIG, now)
    assert fold(survivor, loser, CONFIG, "merge-1", now)
    assert survivor.items["a"].weight == 2
    assert survivor.items["b"].bought


def test_recent_items_count_more() -> None:
    items = {"old": ItemSeen(4.0, 0), "new": ItemSeen(4.0, 28 * 86_400)}
    weights = recency_weights(items, 28 * 86_400)
    assert weights["new"] == 4.0 and abs(weights["old"] - 1.0) < 1e-9


hostile = st.one_of(
    st.text(max_size=300),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(hostile, hostile, hostile), max_size=80))
def test_hostile_ids_and_properties_never_grow_the_profile(
    rows: list[tuple[Any, Any, Any]],
) -> None:
    items: dict[str, ItemSeen] = {}
    for n, (pid, category, products) in enumerate(rows):
        record_items(items, event(n, "Product Viewed", product_id=pid, category=category), n)
        record_items(items, event(n, "Order Completed", products=products), n)
        record_items(items, event(n, "Order Completed", products=[{"sku": pid}] * 80), n)
    assert len(items) <= MAX_ITEMS
    for key, seen in items.items():
        assert item_id(key) == key and len(key) <= MAX_ITEM_ID_CHARS
        assert seen.category is None or len(seen.category) <= MAX_ITEM_ID_CHARS
        assert 0 < seen.weight <= 1_000
