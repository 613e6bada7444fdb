"""Profile aggregates: windows by event time, expiry, kinds, traits, replays, merges, time."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.profiles.apply import apply_event, apply_events, fold
from functions.profiles.computed import computed_values, next_change_at
from functions.profiles.state import Incoming, Position, ProfileState
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import (
    AverageTrait,
    CountTrait,
    FirstSeenTrait,
    LastSeenTrait,
    MostFrequentTrait,
    SegmentsConfig,
    SumTrait,
    UniqueListTrait,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)  # midnight: hour and day buckets start here
CONFIG = SegmentsConfig()
_ids = itertools.count()


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def event(
    event_name: str | None = "Product Viewed",
    at: datetime = T0,
    *,
    type: str = "track",
    message_id: str | None = None,
    received: datetime | None = None,
    traits: dict[str, Any] | None = None,
    **properties: Any,
) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=message_id or f"m{next(_ids)}",
        type=type,
        event=event_name if type == "track" else None,
        anonymous_id="a1",
        traits=traits or {},
        properties=properties,
        source={"name": "web", "protocol": "segment"},
        timestamp=at,
        received_at=received or at,
    )


def apply(
    state: ProfileState, *events: CanonicalEvent, now: datetime | None = None, config=CONFIG
) -> ProfileState:
    for e in events:
        apply_event(state, e, config, now or e.timestamp)
    return state


def values(state: ProfileState, now: datetime, config=CONFIG) -> dict[str, Any]:
    return computed_values(state, config, now)


def only(*traits) -> SegmentsConfig:
    return SegmentsConfig(computed_traits=traits, segments=())


# ---------------------------------------------------------------- windows


def test_count_in_a_window_slides_with_now():
    state = apply(ProfileState(), *(event(at=hours(h)) for h in (0, 1, 2, 30)), now=hours(30))
    assert values(state, hours(30))["product_views_7d"] == 4
    # A 7-day window: the hour-0 bucket leaves it at exactly 7 days.
    assert values(state, days(7) - timedelta(seconds=1))["product_views_7d"] == 4
    assert values(state, days(7))["product_views_7d"] == 3
    assert values(state, days(7) + timedelta(hours=2))["product_views_7d"] == 1
    assert values(state, days(9))["product_views_7d"] == 0


def test_late_event_lands_in_its_own_bucket():
    state = apply(ProfileState(), event(at=days(6)), now=days(6))
    late = event(at=days(1) + timedelta(minutes=30))  # arrives 5 days late
    apply_event(state, late, CONFIG, now=days(6))
    views = state.computed["product_views_7d"].buckets
    assert sorted(views) == [int(days(1).timestamp()), int(days(6).timestamp())]
    # ...and so leaves the window a day after the on-time one's neighbour would.
    assert values(state, days(8))["product_views_7d"] == 1


def test_too_late_for_the_window_is_not_kept_but_counts_for_lifetime_traits():
    state = ProfileState()
    apply_event(state, event("Order Completed", days(1), total=10), CONFIG, now=days(500))
    assert "orders_365d" not in state.computed or not state.computed["orders_365d"].buckets
    assert values(state, days(500))["orders_total"] == 1


def test_old_buckets_are_expired_so_state_stays_small():
    state = ProfileState()
    for h in range(0, 24 * 40, 3):  # a view every 3 hours for 40 days
        apply_event(state, event(at=hours(h)), CONFIG, now=hours(h))
    assert len(state.computed["product_views_7d"].buckets) <= 7 * 24
    assert len(state.computed["product_views_30d"].buckets) <= 30  # daily beyond 7 days
    # The current hour and the 167 before it: views at hours 795, 798, ... 957.
    assert values(state, hours(24 * 40))["product_views_7d"] == 55


def test_sum_average_and_property_filters():
    config = only(
        SumTrait(id="spend", event="Order Completed", property="total", window="30d"),
        AverageTrait(id="aov", event="Order Completed", property="total"),
        CountTrait(id="shoes", event="Order Completed", where={"category": "shoes"}),
    )
    state = apply(
        ProfileState(),
        event("Order Completed", days(0), total=100, category="shoes"),
        event("Order Completed", days(10), total="300.5"),  # numeric strings count
        event("Order Completed", days(11), total="n/a"),  # not a number: counted, not summed
        config=config,
    )
    got = values(state, days(20), config)
    assert got["spend"] == pytest.approx(400.5)
    assert got["aov"] == pytest.approx(200.25)
    assert got["shoes"] == 1
    assert values(state, days(31), config)["spend"] == pytest.approx(300.5)


def test_average_of_nothing_is_absent():
    assert "average_order_value" not in values(ProfileState(), T0)


def test_first_last_most_frequent_and_unique_list():
    config = only(
        FirstSeenTrait(id="first_page", type="page"),
        LastSeenTrait(id="last_any"),
        MostFrequentTrait(
            id="top", event="Product Viewed", property="category", window="7d", max_values=5
        ),
        UniqueListTrait(id="cats", event="Product Viewed", property="category", max_values=2),
    )
    state = apply(
        ProfileState(),
        event("Product Viewed", hours(3), category="hats"),
        event(None, hours(2), type="page"),
        event("Product Viewed", hours(1), category="shoes"),
        event("Product Viewed", hours(4), category="shoes"),
        event("Product Viewed", hours(5), category="socks"),
        now=hours(5),
        config=config,
    )
    got = values(state, hours(6), config)
    assert got["first_page"] == hours(2)
    assert got["last_any"] == hours(5)
    assert got["top"] == "shoes"
    assert got["cats"] == ["socks", "shoes"]  # newest first, capped at 2


# ---------------------------------------------------------------- rfm, cart, lifecycle


def test_rfm_scores():
    state = apply(
        ProfileState(),
        *(event("Order Completed", days(d), total=200) for d in (0, 20, 40)),
        now=days(40),
    )
    rfm = values(state, days(41))["rfm"]
    assert (rfm["recency"], rfm["frequency"], rfm["monetary"]) == (5, 3, 4)  # 3 orders, 600
    assert rfm["score"] == "534"
    assert values(state, days(47))["rfm"]["recency"] == 4  # 7 days after the last order
    assert values(state, days(40 + 180))["rfm"]["recency"] == 1
    assert values(state, days(366))["rfm"]["orders"] == 2  # the first left the 365 d window


def test_rfm_of_nobody_is_all_ones():
    assert values(ProfileState(), T0)["rfm"]["score"] == "111"


def test_cart_add_remove_order():
    state = apply(
        ProfileState(),
        event("Product Added", hours(0), product_id="p1", price=20, quantity=2, name="Hat"),
        event("Product Added", hours(1), product_id="p2", price=5),
        event("Product Removed", hours(2), product_id="p1", quantity=1),
    )
    cart = values(state, hours(3))["cart"]
    assert cart["quantity"] == 2
    assert cart["value"] == 25
    assert cart["last_change"] == hours(2)
    assert [i["product_id"] for i in cart["items"]] == ["p2", "p1"]
    assert not cart["abandoned"]
    assert values(state, hours(26))["cart"]["abandoned"]  # 24 h after the last change
    apply(state, event("Order Completed", hours(27), total=25))
    assert values(state, hours(60))["cart"] == {
        "items": [],
        "quantity": 0,
        "value": 0,
        "abandoned": False,
        "last_change": hours(27),
    }


def test_late_add_from_before_the_order_does_not_refill_the_cart():
    state = apply(ProfileState(), event("Order Completed", hours(5)))
    apply_event(state, event("Product Added", hours(4), product_id="p1"), CONFIG, hours(6))
    assert values(state, hours(6))["cart"]["items"] == []


def test_cart_viewed_with_products_replaces_the_cart():
    state = apply(
        ProfileState(),
        event("Product Added", hours(0), product_id="p1", price=1),
        event("Cart Viewed", hours(1), products=[{"product_id": "p9", "price": 3, "quantity": 2}]),
        event("Cart Viewed", hours(2)),  # no snapshot: nothing changes
    )
    cart = values(state, hours(3))["cart"]
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [("p9", 2)]
    assert cart["last_change"] == hours(1)


def test_lifecycle_stages():
    state = ProfileState()
    apply(state, event("Signed Up", days(0)))
    assert values(state, days(0))["lifecycle_stage"] == "awareness"
    apply(state, event("Product Viewed", days(1)))
    assert values(state, days(1))["lifecycle_stage"] == "consideration"
    apply(state, event("Order Completed", days(2), total=10))
    assert values(state, days(2))["lifecycle_stage"] == "purchase"
    apply(state, event("Order Completed", days(30), total=10))
    assert values(state, days(30))["lifecycle_stage"] == "retention"
    # Two orders in 365 days lapse back to purchase when the first leaves the window.
    assert values(state, days(367))["lifecycle_stage"] == "purchase"


# ---------------------------------------------------------------- traits


def test_identify_traits_last_write_by_timestamp_wins():
    state = apply(
        ProfileState(),
        event(None, hours(2), type="identify", traits={"plan": "pro", "city": "Oslo"}),
        event(None, hours(1), type="identify", traits={"plan": "free", "age": 30}),  # late
        now=hours(3),
    )
    assert state.traits == {"plan": "pro", "city": "Oslo", "age": 30}
    assert state.trait_times["plan"] == hours(2)


# ---------------------------------------------------------------- replay safety


def test_redelivered_record_applies_once():
    state = ProfileState()
    record = Incoming(event("Order Completed", T0, total=10), Position("shard-0", 100))
    assert apply_events(state, [record], CONFIG, T0).applied == 1
    again = apply_events(state, [record, record], CONFIG, hours(1))
    assert (again.applied, again.duplicates) == (0, 2)
    assert values(state, hours(1))["orders_total"] == 1


def test_replay_older_than_the_id_memory_is_caught_by_the_watermark():
    state = ProfileState()
    e = event("Order Completed", T0, total=10)
    apply_events(state, [Incoming(e, Position("shard-0", 100))], CONFIG, T0)
    later = days(3)  # message id forgotten by now
    assert apply_events(state, [], CONFIG, later).applied == 0
    assert state.applied.recent == {}
    result = apply_events(state, [Incoming(e, Position("shard-0", 100))], CONFIG, later)
    assert result.duplicates == 1
    assert values(state, later)["orders_total"] == 1


def test_client_retry_with_the_same_message_id_within_24h_applies_once():
    state = ProfileState()
    first = event("Order Completed", T0, message_id="retry-me", total=10)
    retry = event("Order Completed", T0, message_id="retry-me", received=hours(23), total=10)
    apply_events(state, [Incoming(first, Position("s", 1))], CONFIG, T0)
    result = apply_events(state, [Incoming(retry, Position("s", 2))], CONFIG, hours(23))
    assert result.duplicates == 1
    assert values(state, hours(23))["orders_total"] == 1
    # After the dedup window the same id is a new event, as in Segment.
    late = event("Order Completed", T0, message_id="retry-me", received=hours(30), total=10)
    assert apply_events(state, [Incoming(late, Position("s", 3))], CONFIG, hours(30)).applied == 1


def test_a_batch_applied_in_event_time_order_does_not_trip_its_own_watermark():
    state = ProfileState()
    newer = Incoming(event(at=hours(2)), Position("s", 10))
    older = Incoming(event(at=hours(1)), Position("s", 11))  # late event, later sequence
    assert apply_events(state, [newer, older], CONFIG, hours(3)).applied == 2
    assert state.applied.watermarks == {"s": 11}


def test_message_id_memory_is_bounded():
    state = ProfileState()
    batch = [Incoming(event(at=T0 + timedelta(seconds=i))) for i in range(800)]
    apply_events(state, batch, CONFIG, hours(1))
    assert len(state.applied.recent) == CONFIG.dedup.max_ids


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=30))
def test_any_mix_of_redeliveries_counts_each_message_once(picks):
    pool = [event("Order Completed", hours(i), total=1, message_id=f"id-{i}") for i in range(10)]
    state = ProfileState()
    for n, i in enumerate(picks):
        apply_events(state, [Incoming(pool[i], Position("s", 1000 + n))], CONFIG, hours(12))
    assert values(state, hours(12))["orders_total"] == len(set(picks))
    assert state.events_applied == len(set(picks))


# ---------------------------------------------------------------- merges


def sample_profile(offset: int, *, plan: str) -> ProfileState:
    return apply(
        ProfileState(),
        event(None, hours(offset), type="identify", traits={"plan": plan}),
        event("Product Viewed", hours(offset + 1), category=f"c{offset}"),
        event("Order Completed", hours(offset + 2), total=100 + offset),
        event("Product Added", hours(offset + 3), product_id=f"p{offset}", price=5),
        now=hours(offset + 3),
    )


def test_fold_combines_aggregates():
    survivor, loser = sample_profile(0, plan="free"), sample_profile(10, plan="pro")
    assert fold(survivor, loser, CONFIG, "merge-1", hours(20))
    got = values(survivor, hours(20))
    assert got["orders_total"] == 2
    assert got["lifetime_value"] == 210
    assert got["average_order_value"] == 105
    assert got["first_seen"] == hours(0)
    assert got["last_seen"] == hours(13)
    assert sorted(got["viewed_categories"]) == ["c0", "c10"]
    assert [i["product_id"] for i in got["cart"]["items"]] == ["p10"]  # the newer cart
    assert survivor.traits["plan"] == "pro"  # the newer write
    assert survivor.events_applied == 8  # the ledger's count: four events each


def test_fold_is_idempotent_per_merge_id():
    survivor, loser = sample_profile(0, plan="a"), sample_profile(10, plan="b")
    fold(survivor, loser, CONFIG, "merge-1", hours(20))
    once = copy.deepcopy(survivor)
    assert not fold(survivor, loser, CONFIG, "merge-1", hours(21))
    assert survivor == once


def test_fold_is_commutative_for_computed_values():
    a, b = sample_profile(0, plan="a"), sample_profile(10, plan="b")
    ab, ba = copy.deepcopy(a), copy.deepcopy(b)
    fold(ab, b, CONFIG, "m", hours(20))
    fold(ba, a, CONFIG, "m", hours(20))
    assert values(ab, hours(20)) == values(ba, hours(20))
    assert ab.traits == ba.traits


def test_fold_keeps_a_retry_of_the_losers_event_from_double_counting():
    loser = ProfileState()
    order = event("Order Completed", T0, message_id="o-1", total=10)
    apply_event(loser, order, CONFIG, T0)
    survivor = ProfileState()
    fold(survivor, loser, CONFIG, "m", hours(1))
    assert not apply_event(survivor, order, CONFIG, hours(2))
    assert values(survivor, hours(2))["orders_total"] == 1


def test_a_replay_of_the_losers_old_records_after_the_merge_is_recognised():
    # Redirected to the survivor by the tombstone, days later: the message id is
    # forgotten by then, the watermark the fold carried over still knows it.
    loser = ProfileState()
    record = Incoming(event("Order Completed", T0, total=10), Position("shard-1", 500))
    apply_events(loser, [record], CONFIG, T0)
    survivor = ProfileState()
    apply_events(survivor, [Incoming(event(at=T0), Position("shard-0", 900))], CONFIG, T0)
    fold(survivor, loser, CONFIG, "m", hours(1))
    assert survivor.applied.watermarks == {"shard-0": 900, "shard-1": 500}
    result = apply_events(survivor, [record], CONFIG, days(3))
    assert result.duplicates == 1
    assert values(survivor, days(3))["orders_total"] == 1


# ---------------------------------------------------------------- time


def test_next_change_for_the_24h_cart_abandonment():
    state = apply(
        ProfileState(), event("Product Added", hours(5) + timedelta(minutes=7), product_id="p")
    )
    now = hours(6)
    assert next_change_at(state, CONFIG, now, only={"cart"}) == hours(29) + timedelta(minutes=7)
    apply(state, event("Order Completed", hours(7)))
    assert next_change_at(state, CONFIG, hours(8), only={"cart"}) is None


def test_next_change_for_90_days_without_a_purchase():
    state = apply(ProfileState(), event("Order Completed", days(3) + timedelta(hours=5), total=900))
    moment = next_change_at(state, CONFIG, days(4), only={"last_order_90d"})
    assert moment == days(93) + timedelta(hours=5)
    assert "last_order_90d" in values(state, moment - timedelta(seconds=1))
    assert "last_order_90d" not in values(state, moment)


def test_next_change_for_a_window_edge_is_exact():
    state = apply(ProfileState(), event(at=hours(1) + timedelta(minutes=40)))
    moment = next_change_at(state, CONFIG, hours(2), only={"product_views_7d"})
    assert moment == hours(1) + timedelta(days=7)  # the bucket's start plus the window
    assert values(state, moment - timedelta(seconds=1))["product_views_7d"] == 1
    assert values(state, moment)["product_views_7d"] == 0


def test_next_change_follows_lifecycle_dependencies_and_is_none_without_time():
    state = apply(ProfileState(), event("Signed Up", T0))
    assert next_change_at(state, CONFIG, T0) is None
    apply(state, event("Product Viewed", T0))
    # consideration rests on product_views_30d; product_views_7d is not a dependency.
    assert next_change_at(state, CONFIG, T0, only={"lifecycle_stage"}) == days(30)
    assert next_change_at(state, CONFIG, T0) == days(7)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 24 * 20), min_size=1, max_size=12),
    st.integers(0, 24 * 30),
)
def test_nothing_changes_before_next_change_at(event_hours, now_hour):
    """Between now and next_change_at every computed value stands still."""
    state = ProfileState()
    for h in event_hours:
        apply_event(state, event("Order Completed", hours(h), total=h), CONFIG, hours(h))
        apply_event(state, event("Product Added", hours(h), product_id=str(h)), CONFIG, hours(h))
    now = hours(max(now_hour, max(event_hours)))
    moment = next_change_at(state, CONFIG, now)
    before = values(state, now)
    if moment is None:
        assert values(state, now + timedelta(days=800)) == before
    else:
        assert moment > now
        assert values(state, moment - timedelta(seconds=1)) == before
        assert values(state, moment) != before
