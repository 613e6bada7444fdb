"""Sessions and touches on the profile (functions/profiles/touches.py): the session
rule, the bound, each channel's time-decayed influence, merges, storage, and CEL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.profiles.apply import apply_event, fold
from functions.profiles.codec import decode_state, encode_state
from functions.profiles.computed import computed_values, next_change_at
from functions.profiles.evaluate import CompiledSegments
from functions.profiles.state import ProfileState, Sessions
from functions.profiles.touches import influence, profile_influence
from functions.shared.enrichment_config import CHANNELS
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig, TouchesTrait

T0 = datetime(2026, 11, 1, tzinfo=UTC)
TRAIT = {"id": "channels", "kind": "touches", "keep": 3, "window": "30d", "half_life": "7d"}
CONFIG = SegmentsConfig.model_validate(
    {
        "computed_traits": [TRAIT],
        "segments": [
            {"id": "email_led", "condition": "profile.computed.channels.influence.email > 0.5"}
        ],
    }
)
_ids = itertools.count()


def visit(
    at: datetime,
    channel: str = "direct",
    campaign: dict[str, str] | None = None,
    *,
    bot: bool = False,
    page: bool = True,
    event: str = "Product Viewed",
) -> CanonicalEvent:
    enrichment: dict[str, Any] = {"channel": channel, "bot": bot}
    if campaign:
        enrichment["campaign"] = campaign
    context: dict[str, Any] = {"enrichment": enrichment}
    if page:
        context["page"] = {"url": "https://shop.example/"}
    return CanonicalEvent(
        message_id=f"m{next(_ids)}",
        type="track",
        event=event,
        anonymous_id="a1",
        context=context,
        source={"name": "web", "protocol": "segment"},
        timestamp=at,
        received_at=at,
    )


def applied(*events: CanonicalEvent, state: ProfileState | None = None) -> ProfileState:
    state = state or ProfileState()
    for e in events:
        apply_event(state, e, CONFIG, e.timestamp)
    return state


def sessions(state: ProfileState) -> Sessions:
    found = state.computed["channels"].sessions
    assert found is not None
    return found


def channels(state: ProfileState, now: datetime) -> dict[str, Any]:
    value: dict[str, Any] = computed_values(state, CONFIG, now)["channels"]
    return value


EMAIL = {"source": "news", "medium": "email", "name": "may"}


def test_a_session_is_30_minutes_of_visits_or_a_new_campaign() -> None:
    state = applied(
        visit(T0, "search"),
        visit(T0 + timedelta(minutes=20), "internal"),  # same session: 20 min later
        visit(T0 + timedelta(minutes=45), "internal"),  # 25 min after the last visit
        visit(T0 + timedelta(minutes=80), "email", EMAIL),  # a campaign: a new session
        visit(T0 + timedelta(minutes=85), "email", EMAIL),  # the same campaign goes on
        visit(T0 + timedelta(hours=3), "direct"),  # 95 minutes later
    )
    touches = sessions(state).touches
    assert [(t.channel, t.campaign) for t in touches] == [
        ("search", None),
        ("email", "may"),
        ("direct", None),
    ]
    assert sessions(state).count == 3


def test_bots_backend_events_and_late_visits_start_nothing() -> None:
    state = applied(
        visit(T0, "search"),
        visit(T0 + timedelta(hours=1), "direct", bot=True),
        visit(T0 + timedelta(hours=2), event="Order Completed", page=False),
        visit(T0 + timedelta(hours=5), "email", EMAIL),
        visit(T0 + timedelta(hours=4), "social"),  # arrives after a later visit
    )
    assert [t.channel for t in sessions(state).touches] == ["search", "email"]


def test_the_newest_touches_are_kept_and_the_first_is_remembered() -> None:
    steps = [visit(T0 + timedelta(hours=h), c) for h, c in enumerate(["paid", "search", "email"])]
    state = applied(*steps, visit(T0 + timedelta(hours=3), "direct"))
    assert [t.channel for t in sessions(state).touches] == ["search", "email", "direct"]
    value = channels(state, T0 + timedelta(hours=4))
    assert value["first"]["channel"] == "paid" and value["last"]["channel"] == "direct"
    assert value["sessions"] == 4


def test_influence_is_the_time_decayed_share_of_the_touches_in_the_window() -> None:
    trait = TouchesTrait.model_validate(TRAIT)
    now = T0 + timedelta(days=40)
    state = applied(
        visit(T0, "paid"),  # 40 days old: out of the 30-day window
        visit(now - timedelta(days=7), "direct"),  # one half-life: weight 1/2
        visit(now, "email"),  # weight 1
    )
    shares = influence(sessions(state), trait, now)
    assert shares == {c: 0.0 for c in CHANNELS} | {"email": 0.6667, "direct": 0.3333}
    # Every weight decays alike: the shares hold until a touch leaves the window.
    assert influence(sessions(state), trait, now + timedelta(days=10)) == shares
    assert next_change_at(state, CONFIG, now) == now - timedelta(days=7) + timedelta(days=30)
    assert influence(sessions(state), trait, now + timedelta(days=24)) == {
        c: 0.0 for c in CHANNELS
    } | {"email": 1.0}


def test_cel_reads_the_influence_without_has() -> None:
    engine = CompiledSegments(CONFIG)
    nobody = engine.evaluate_profile("p1", ProfileState(), T0)
    assert not nobody.errors and "email_led" not in nobody.memberships
    state = applied(visit(T0, "search"), visit(T0 + timedelta(days=1), "email", EMAIL))
    evaluated = engine.evaluate_profile("p1", state, T0 + timedelta(days=1))
    assert "email_led" in evaluated.memberships  # email 1.0 vs search 0.5: 0.67


def test_a_merge_keeps_both_peoples_touches_within_the_bound() -> None:
    mine = applied(visit(T0, "search"), visit(T0 + timedelta(days=2), "email", EMAIL))
    theirs = applied(visit(T0 + timedelta(days=1), "social"), visit(T0 + timedelta(days=3)))
    fold(mine, theirs, CONFIG, "merge-1", T0 + timedelta(days=3))
    merged = sessions(mine)
    assert [t.channel for t in merged.touches] == ["social", "email", "direct"]
    assert merged.count == 4 and merged.first is not None and merged.first.channel == "search"
    assert merged.visited == int((T0 + timedelta(days=3)).timestamp())


def test_sessions_survive_storage() -> None:
    state = applied(visit(T0, "search"), visit(T0 + timedelta(days=1), "email", EMAIL))
    again = decode_state(encode_state(state))
    assert sessions(again) == sessions(state)
    assert channels(again, T0 + timedelta(days=1)) == channels(state, T0 + timedelta(days=1))


def test_an_activation_carries_the_first_touches_traits_influence() -> None:
    state = applied(visit(T0, "search"))
    shares = profile_influence(state.computed, CONFIG.computed_traits, T0)
    assert shares is not None and shares["search"] == 1.0
    assert profile_influence(state.computed, SegmentsConfig().computed_traits, T0) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 60 * 24 * 40),  # minutes after T0
            st.sampled_from([*CHANNELS, "unknown"]),
            st.sampled_from([None, "may", "june"]),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_any_visits_keep_the_bound_and_shares_that_add_up(visits: list[Any]) -> None:
    events = [
        visit(
            T0 + timedelta(minutes=m),
            channel,
            {"name": name, "medium": "email"} if name else None,
            bot=bot,
        )
        for m, channel, name, bot in visits
    ]
    state = applied(*events)
    now = T0 + timedelta(days=41)
    found = state.computed.get("channels")
    if found is None or found.sessions is None:
        assert all(bot for *_, bot in visits)
        return
    kept = found.sessions.touches
    assert len(kept) <= 3 and kept == sorted(kept, key=lambda t: t.at)
    assert found.sessions.count >= len(kept)
    shares = channels(state, now)["influence"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3) or not any(shares.values())
