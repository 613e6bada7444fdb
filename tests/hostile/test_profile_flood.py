"""Finding 3: anyone could freeze a person's profile.

Ten identifies with a different ~29 KB trait each pushed the profile item past
DynamoDB's 400 KB; every later event of that person failed in the segments step
and went to the on-failure bucket. Now ingest refuses an oversized trait, and a
profile keeps at most MAX_PROFILE_TRAITS traits within MAX_PROFILE_TRAIT_BYTES,
refusing (and counting) the rest: a flood of identifies cannot grow the item.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.profiles.computed import computed_values
from functions.segments import handler
from functions.segments.step import SegmentsStep
from tests.hostile.conftest import Ingest
from tests.integration.segments_rig import SegmentsRig, identify, segments_rig, track

DYNAMODB_ITEM_LIMIT = 400 * 1024
MAX_STATE_BYTES = 300 * 1024  # profiles/limits.py: the most a configuration may allow


@pytest.fixture
def rig(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentsRig]:
    pair: tuple[SegmentsRig, SegmentsStep]
    with segments_rig(monkeypatch) as pair:
        yield pair[0]


def test_ingest_refuses_a_29_kb_trait_naming_it(ingest: Ingest) -> None:
    ingest.segment("identify", {"userId": "u", "traits": {"bio": "x" * 29_000}})
    assert ingest.failed.reasons() == ["limit_exceeded"]
    assert ingest.failed.failures[0].field == "traits.bio"


def test_a_person_flooded_with_1000_large_identifies_still_has_later_orders_applied(
    rig: SegmentsRig,
) -> None:
    # Each identify as large as ingest lets through: 15 new traits of 1.9 KB (29 KB).
    flood = [
        identify("p1", 0.001 * n, **{f"t{n}_{k}": f"{n}-{k}-" + "v" * 1_900 for k in range(15)})
        for n in range(1000)
    ]
    for start in range(0, len(flood), 200):
        rig.deliver_ok(rig.records(flood[start : start + 200]))
    rig.deliver_ok(rig.records([track("p1", 2.0, "Order Completed", {"total": 42.0})]))

    stored = rig.profile("p1")  # deliver_ok: no record failed, none went to the bucket
    assert stored is not None
    assert stored.state.events_applied == 1001
    assert stored.state.refused_traits > 0
    config = handler.segments_step().config
    assert computed_values(stored.state, config, rig.clock[0])["orders_total"] == 1
    state_bytes = len(rig.item("p1")["state"].value)
    assert state_bytes < MAX_STATE_BYTES < DYNAMODB_ITEM_LIMIT
