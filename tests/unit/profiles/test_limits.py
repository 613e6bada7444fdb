"""The profile's limits hold against the worst a client can send, and the bound a
configuration allows is computed honestly (an adversarial profile stays under it)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from functions.profiles.apply import apply_events
from functions.profiles.codec import state_to_dict
from functions.profiles.state import Incoming, ProfileState
from functions.shared.config import load_config
from functions.shared.events import CanonicalEvent
from functions.shared.profile_limits import (
    MAX_PROFILE_TRAIT_BYTES,
    MAX_PROFILE_TRAITS,
    MAX_STATE_BYTES,
    worst_case_bytes,
)
from functions.shared.segment_definitions import MostFrequentTrait, SegmentsConfig

CONFIG = load_config("beacon.yaml").segments
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def event(kind: str, at: datetime, **fields: object) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "messageId": str(uuid.uuid4()),
            "type": kind,
            "userId": "u",
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": at,
            "receivedAt": at,
            **fields,
        }
    )


def hostile_events() -> list[Incoming]:
    """Every part filled: distinct long values in every bucket, cart items, traits."""
    out: list[Incoming] = []
    long = "v" * 5_000
    for hour in range(24 * 31):
        at = NOW - timedelta(hours=hour)
        for n in range(12):
            value = f"{hour}-{n}-{long}"
            out.append(
                Incoming(
                    event(
                        "track",
                        at,
                        event="Product Viewed",
                        properties={"category": value, "product_id": value},
                    )
                )
            )
        out.append(
            Incoming(
                event(
                    "track",
                    at,
                    event="Product Added",
                    properties={"product_id": f"p{hour}{long}", "name": long, "price": 1e300},
                )
            )
        )
        out.append(
            Incoming(event("track", at, event="Order Completed", properties={"total": 1e15}))
        )
        traits = {f"t{hour}_{k}": "x" * 2_000 for k in range(10)}
        out.append(Incoming(event("identify", at, traits=traits)))
    return out


def test_a_hostile_profile_stays_within_the_configurations_bound() -> None:
    state = ProfileState()
    apply_events(state, hostile_events(), CONFIG, NOW)
    size = len(json.dumps(state_to_dict(state), separators=(",", ":")).encode())
    assert size <= worst_case_bytes(CONFIG) <= MAX_STATE_BYTES
    assert len(state.traits) <= MAX_PROFILE_TRAITS
    assert len(json.dumps(state.traits)) <= MAX_PROFILE_TRAIT_BYTES + 4 * len(state.traits)
    assert state.refused_traits > 0


def test_a_configuration_that_allows_oversized_profiles_is_refused_naming_the_part() -> None:
    greedy = MostFrequentTrait(
        id="top", event="Product Viewed", property="category", window="30d", max_values=500
    )
    with pytest.raises(ValidationError, match=r"computed\.top .* KB"):
        SegmentsConfig(computed_traits=(greedy,), segments=())
