"""The decision item on moto: the segments step writes it with the profile, in the
same transaction, only when what a page may be told changed; merges leave a
redirect and erasure an erasure marker; the touchpoint reads it in one GetItem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from tests.integration.segments_rig import SegmentsRig, at, identify, merged, segments_rig, track

GRANTED = {"granted": ["personalization"], "denied": []}
WITHDRAWN = {"granted": [], "denied": ["personalization"]}


@pytest.fixture
def rig(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentsRig]:
    with segments_rig(monkeypatch) as (rig, _step):
        yield rig


def consented_identify(profile: str, hours: float, **traits: Any) -> Any:
    event = identify(profile, hours, **traits)
    stamped = event.event.model_copy(
        update={"consent": track("x", 0, consent=GRANTED).event.consent}
    )
    return event.model_copy(update={"event": stamped})


def body(rig: SegmentsRig, profile: str) -> dict[str, Any]:
    item = rig.decision(profile)
    assert item is not None and "body" in item, item
    return json.loads(item["body"])  # type: ignore[no-any-return]


def store(rig: SegmentsRig) -> ProfilesStore:
    return ProfilesStore(DynamoTable(rig.names.table("profiles"), rig.raw_dynamodb))


def test_written_with_the_profile_only_when_it_changes(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(
        rig.records(
            [
                consented_identify("p1", 0.1, first_name="Ana", email="ana@example.org"),
                track("p1", 0.2, consent=GRANTED),
            ]
        )
    )
    told = body(rig, "p1")
    assert told["personalized"] is True
    assert told["traits"] == {
        "first_name": "Ana",
        "favourite_category": "Shoes",
        "lifecycle_stage": "consideration",
    }
    assert "ana@example.org" not in json.dumps(told)
    assert rig.calls["TransactWriteItems"] == 1  # profile and decision together
    written = rig.decision("p1")

    # A view that changes nothing a page is told: the profile is written alone.
    rig.calls.clear()
    rig.deliver_ok(rig.records([track("p1", 0.3, consent=GRANTED)]))
    assert rig.calls["UpdateItem"] == 1 and rig.calls["TransactWriteItems"] == 0
    assert rig.decision("p1") == written

    # The person withdraws: the decision says so, and tells nothing else.
    rig.deliver_ok(rig.records([track("p1", 0.4, consent=WITHDRAWN)]))
    assert (
        body(rig, "p1") == json.loads(json.dumps(body(rig, "p1")))
        and body(rig, "p1")["personalized"] is False
    )
    assert body(rig, "p1")["traits"] == {} and body(rig, "p1")["segments"] == []


def test_no_item_for_a_profile_with_nothing_to_tell(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records([track("p2", 0.1)]))  # no consent stamp: opt-in says no
    assert rig.profile("p2") is not None
    assert rig.decision("p2") is None  # no item answers as not personalized


def test_a_merge_redirects_and_an_erasure_marks(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(
        rig.records(
            [
                consented_identify("loser", 0.1, first_name="Ana"),
                consented_identify("winner", 0.1, first_name="Ana"),
            ]
        )
    )
    rig.deliver_ok(rig.records([merged("winner", "loser", 0.5)]))
    redirect = store(rig).decision("loser")
    assert redirect is not None and redirect.merged_into == "winner"
    survivor = store(rig).decision("winner")
    assert survivor is not None and survivor.decision is not None
    assert survivor.decision.traits["first_name"] == "Ana"

    store(rig).erase(["winner"], at(2))
    erased = store(rig).decision("winner")
    assert erased is not None and erased.erased and erased.decision is None
    item = rig.decision("winner")
    assert item is not None and "body" not in item and "expires_at" in item
