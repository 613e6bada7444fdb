"""The profile state survives the round trip through the item's compressed bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.profiles.apply import apply_events
from functions.profiles.codec import decode_state, encode_state
from functions.profiles.computed import computed_values
from functions.profiles.state import Incoming, Membership, Position, ProfileState
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig

CONFIG = SegmentsConfig()
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def event(n: int, kind: str, **properties: object) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "messageId": f"m-{n}",
            "type": "track",
            "event": kind,
            "userId": "u-1",
            "properties": properties,
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": T0 + timedelta(hours=n),
            "receivedAt": T0 + timedelta(hours=n),
            "consent": {"granted": ["personalization"], "denied": ["advertising"]},
        }
    )


def test_a_busy_profile_round_trips_exactly() -> None:
    state = ProfileState()
    records = [
        Incoming(event(0, "Product Viewed", category="Shoes"), Position("s-0", 10)),
        Incoming(event(1, "Product Added", product_id="p1", price=19.5, quantity=2), None),
        Incoming(event(2, "Order Completed", total=39.0), Position("s-1", 12)),
        Incoming(event(3, "Product Added", product_id="p2", price=5.0, name="Sock"), None),
    ]
    now = T0 + timedelta(hours=5)
    apply_events(state, records, CONFIG, now)
    state.traits, state.trait_times = {"email": "a@example.org"}, {"email": T0}
    state.memberships = {"stage_purchase": Membership(since=now, held_out=True)}
    state.folded_merges = {"merge-1": 1}
    state.recent_changes = {"c1": 5}

    back = decode_state(encode_state(state))

    assert back == state
    assert computed_values(back, CONFIG, now) == computed_values(state, CONFIG, now)
    assert back.user_id == "u-1" and back.consent == {"personalization": True, "advertising": False}


def test_an_empty_profile_is_a_few_bytes() -> None:
    assert decode_state(encode_state(ProfileState())) == ProfileState()
    assert len(encode_state(ProfileState())) < 32
