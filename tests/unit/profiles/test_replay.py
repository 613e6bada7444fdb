"""Backfill's replay and graft (functions/profiles/replay.py), without storage.

The truth a backfill must reach: a profile whose new definitions were grafted from
its history holds what a profile that had the definitions from the start holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.profiles.apply import apply_events
from functions.profiles.computed import computed_values
from functions.profiles.evaluate import CompiledSegments
from functions.profiles.replay import (
    ArchivedEvent,
    Definitions,
    applied_live,
    archive_covers,
    graft,
    replay,
    replayable,
)
from functions.profiles.state import Incoming, Position, ProfileState
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig

T0 = datetime(2026, 10, 1, tzinfo=UTC)
TRAIT = "top_product_views_30d"
SEGMENT = "viewed_same_product_3x"
# "Viewed the same product 3 times in 30 days": the definitions a backfill adds.
NEW_TRAIT = {
    "id": TRAIT,
    "kind": "most_frequent",
    "event": "Product Viewed",
    "property": "product_id",
    "window": "30d",
    "output": "count",
}
NEW_SEGMENT = {"id": SEGMENT, "condition": f"profile.computed.{TRAIT} >= 3"}


def configs() -> tuple[SegmentsConfig, SegmentsConfig]:
    """(before, after): after adds "viewed the same product 3 times in 30 days"."""
    before = SegmentsConfig.model_validate(
        {
            "computed_traits": [
                {"id": "views_30d", "kind": "count", "event": "Product Viewed", "window": "30d"}
            ],
            "segments": [{"id": "viewers", "condition": "profile.computed.views_30d >= 1"}],
        }
    )
    after = SegmentsConfig.model_validate(
        {
            "computed_traits": [
                *[t.model_dump() for t in before.computed_traits],
                NEW_TRAIT,
            ],
            "segments": [*[s.model_dump() for s in before.segments], NEW_SEGMENT],
        }
    )
    return before, after


def view(n: int, hours: float, product: str = "sku-1") -> CanonicalEvent:
    moment = T0 + timedelta(hours=hours)
    return CanonicalEvent.model_validate(
        {
            "messageId": f"m-{n}",
            "type": "track",
            "event": "Product Viewed",
            "userId": "u1",
            "properties": {"product_id": product},
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": moment,
            "receivedAt": moment,
        }
    )


def archived(events: list[CanonicalEvent]) -> list[ArchivedEvent]:
    return [ArchivedEvent(e, Position("shard-0", 100 + i)) for i, e in enumerate(events)]


def live_profile(
    events: list[CanonicalEvent], deployed_after: int, config_before: SegmentsConfig
) -> ProfileState:
    """A live profile: the first `deployed_after` events applied before the new
    definitions were deployed, the rest after, one batch each, as the step does."""
    _, after = configs()
    state = ProfileState()
    for i, event in enumerate(events):
        config = config_before if i < deployed_after else after
        engine = CompiledSegments(config)
        apply_events(
            state, [Incoming(event, Position("shard-0", 100 + i))], config, event.received_at
        )
        state.memberships = engine.evaluate_profile("p1", state, event.received_at).memberships
    return state


def test_a_record_is_applied_live_when_at_or_below_the_watermark_of_its_shard() -> None:
    marks = {"shard-0": 105}
    assert applied_live(Position("shard-0", 105), marks)
    assert not applied_live(Position("shard-0", 106), marks)
    assert not applied_live(Position("shard-1", 1), marks)
    assert applied_live(None, marks)  # archived before positions were kept: long applied


def test_the_archive_covers_a_profile_once_every_shard_has_reached_its_watermark() -> None:
    assert archive_covers({"a": 5, "b": 9}, {"a": 5, "b": 12})
    assert not archive_covers({"a": 5, "b": 9}, {"a": 5, "b": 8})
    assert not archive_covers({"a": 5}, {})
    assert archive_covers({}, {})


def test_unknown_definitions_are_refused_and_none_named_means_all() -> None:
    _, after = configs()
    with pytest.raises(ValueError, match="typo"):
        Definitions.chosen(after, ["typo"])
    every = Definitions.chosen(after)
    assert TRAIT in every.traits and SEGMENT in every.segments
    assert Definitions.chosen(after, segments=[SEGMENT]).traits == frozenset()


def test_a_membership_starts_when_the_event_that_made_it_arrived() -> None:
    _, after = configs()
    events = [view(1, 0), view(2, 5, "sku-2"), view(3, 20), view(4, 30)]
    state = replay("p1", archived(events), after, CompiledSegments(after))
    assert state.memberships[SEGMENT].since == events[3].received_at
    assert computed_values(state, after, events[3].received_at)[TRAIT] == 3


def test_views_spread_over_more_than_the_window_make_no_member() -> None:
    _, after = configs()
    events = [view(1, 0), view(2, 24 * 20), view(3, 24 * 40)]
    state = replay("p1", archived(events), after, CompiledSegments(after))
    assert SEGMENT not in state.memberships


def test_a_retried_message_id_in_the_archive_counts_once() -> None:
    _, after = configs()
    events = [view(1, 0), view(2, 1), view(2, 2)]  # the client resent m-2
    state = replay("p1", archived(events), after, CompiledSegments(after))
    assert computed_values(state, after, events[-1].received_at)[TRAIT] == 2


def test_the_graft_replaces_what_the_live_step_applied_since_the_deploy() -> None:
    before, after = configs()
    events = [view(1, 0), view(2, 1), view(3, 2)]
    live = live_profile(events, deployed_after=2, config_before=before)
    # Live, only the third view reached the new trait: one.
    assert computed_values(live, after, events[-1].received_at)[TRAIT] == 1
    chosen = Definitions.chosen(after, [TRAIT], [SEGMENT])
    history = replayable(archived(events), live.applied.watermarks)
    replayed = replay("p1", history, after, CompiledSegments(after))
    changes = graft("p1", live, replayed, chosen, after, events[-1].received_at)
    assert computed_values(live, after, events[-1].received_at)[TRAIT] == 3  # not 4
    assert [(c.type, c.segment_id, c.at) for c in changes] == [
        ("segment.entered", SEGMENT, events[2].received_at)
    ]


def test_records_above_the_watermark_are_left_to_the_live_step() -> None:
    events = [view(1, 0), view(2, 1), view(3, 2)]
    history = replayable(archived(events), {"shard-0": 101})  # the third not applied yet
    assert [a.event.message_id for a in history] == ["m-1", "m-2"]


@st.composite
def histories(draw: Any) -> tuple[list[CanonicalEvent], int]:
    hours = sorted(draw(st.lists(st.integers(0, 24 * 70), min_size=1, max_size=25)))
    products = draw(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=len(hours), max_size=len(hours))
    )
    events = [view(i, h, p) for i, (h, p) in enumerate(zip(hours, products, strict=True))]
    return events, draw(st.integers(0, len(events)))


@settings(max_examples=60, deadline=None)
@given(histories())
def test_a_backfilled_profile_equals_one_that_had_the_definitions_from_the_start(
    drawn: tuple[list[CanonicalEvent], int],
) -> None:
    before, after = configs()
    events, deployed_after = drawn
    now = events[-1].received_at + timedelta(hours=1)
    chosen = Definitions.chosen(after, [TRAIT], [SEGMENT])
    live = live_profile(events, deployed_after, before)
    replayed = replay(
        "p1", replayable(archived(events), live.applied.watermarks), after, CompiledSegments(after)
    )
    graft("p1", live, replayed, chosen, after, now)
    fresh = live_profile(events, 0, before)  # the definitions deployed before any event
    assert computed_values(live, after, now)[TRAIT] == computed_values(fresh, after, now)[TRAIT]
    assert live.memberships.get(SEGMENT) == fresh.memberships.get(SEGMENT)
