"""Recommendations in the scoring step on moto: the recent items the segments step
recorded, the shipped artifact in memory, the top-10 written with the profile and
its decision item, no extra read, and never an item the person bought."""

from __future__ import annotations

import json
from typing import Any

from functions.scoring.recommend import load_configured_recommender
from functions.shared.config import load_config
from tests.integration.segments_rig import SegmentsRig, track
from tests.integration.test_scoring_step import activations, changes_event, rigs, score

__all__ = ["rigs"]
GRANTED = {"granted": ["personalization"], "denied": []}
CAMPING = ["sku-100", "sku-104", "sku-107", "sku-113"]


def viewed(profile: str, skus: list[str], hours: float = -2.0) -> list[Any]:
    return [
        track(
            profile,
            hours + n * 0.01,
            "Product Viewed",
            {"product_id": sku, "category": "Camping"},
            consent=GRANTED,
        )
        for n, sku in enumerate(skus)
    ]


def told(rig: SegmentsRig, profile: str) -> dict[str, Any]:
    item = rig.decision(profile)
    assert item is not None and "body" in item, item
    return json.loads(item["body"])  # type: ignore[no-any-return]


def test_a_camping_viewer_gets_camping_items_without_an_extra_read(rigs: Any) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(viewed("camper", CAMPING)))
    rig.calls.clear()

    assert score(rig, changes_event(rig)) == []

    profile = rig.profile("camper")
    assert profile is not None
    entry = profile.scores["recommendations"]
    ids = [item for item, _ in entry["items"]]
    assert 1 <= len(ids) <= 10 and len(set(ids)) == len(ids)
    artifact = load_configured_recommender(load_config("beacon.yaml").models, ".")
    assert artifact is not None and entry["model_version"] == artifact.version
    assert all(artifact.categories[i] == "Camping" for i in ids[:5]), ids
    assert rig.calls["BatchGetItem"] == 1 and rig.calls["GetItem"] == 0
    body = told(rig, "camper")
    assert [r["item_id"] for r in body["recommendations"]] == ids
    # The segment entry the views caused goes out with the recommendations.
    sent = [a for a in activations(sqs, queue) if a["profile_id"] == "camper"]
    assert sent and all(a["recommendations"] == ids for a in sent)
    # The persona is assigned like a score, told to the page and to destinations.
    persona = profile.scores["persona"]
    assert isinstance(persona["id"], int) and persona["name"]
    assert body["persona"] == persona["name"]
    assert all(a["persona"] == persona["name"] for a in sent)


def test_a_buyer_never_gets_what_they_bought(rigs: Any) -> None:
    rig, _queue = rigs
    order = track(
        "buyer",
        -1.0,
        "Order Completed",
        {"products": [{"product_id": "sku-100", "category": "Camping"}], "total": 449.0},
        consent=GRANTED,
    )
    rig.deliver_ok(rig.records([*viewed("buyer", ["sku-100", "sku-101"]), order]))
    assert score(rig, changes_event(rig)) == []
    profile = rig.profile("buyer")
    assert profile is not None
    ids = [item for item, _ in profile.scores["recommendations"]["items"]]
    assert "sku-100" not in ids and ids
    assert "sku-100" not in [r["item_id"] for r in told(rig, "buyer")["recommendations"]]


def test_the_same_recommendations_are_not_written_again(rigs: Any) -> None:
    rig, _queue = rigs
    rig.deliver_ok(rig.records(viewed("camper", CAMPING)))
    event = changes_event(rig)
    assert score(rig, event) == []
    rig.calls.clear()
    assert score(rig, event) == []
    assert rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"] == 0
