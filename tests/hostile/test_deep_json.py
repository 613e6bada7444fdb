"""Finding 2: deep JSON answered 500 and the event was stored nowhere.

About 330 levels of nesting in `properties` (or a tp2 body) crashed a recursive
walk; in a batch, the valid neighbours were written to Kinesis while the client
got a 500 and resent them. Depths 299-300 were refused as a "lone surrogate".
"""

from __future__ import annotations

import json

import pytest

from tests.hostile.conftest import Ingest

PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [40, 299, 300, 330, 900])
def test_a_deep_event_is_refused_with_its_own_reason_and_its_neighbour_kept(
    ingest: Ingest, depth: int
) -> None:
    body = (
        '{"batch": [{"type": "track", "event": "Fine", "anonymousId": "a"},'
        ' {"type": "track", "event": "Deep", "anonymousId": "b", "properties": '
        + nested(depth)
        + "}]}"
    )
    collected = ingest.segment("batch", body)
    assert collected.answer.status == 200
    assert [e.event for e in ingest.events()] == ["Fine"]
    assert ingest.failed.reasons() == ["too_deeply_nested"]
    failure = ingest.failed.failures[0]
    assert failure.index == 1
    assert failure.field is not None and failure.field.startswith("properties.a")
    assert len(failure.raw) < 2_000  # evidence, not a rebuilt 900-level document
    rejected = json.loads(collected.answer.body)["rejected"]
    assert rejected[0]["reason"] == "too_deeply_nested"


def test_a_deep_tp2_item_is_refused_and_its_neighbour_kept(ingest: Ingest) -> None:
    good = {"e": "pv", "aid": "shop-web", "duid": "d1"}
    contexts = (
        '{"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",'
        ' "data": [{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": ' + nested(330) + "}]}"
    )
    deep = {**good, "co": contexts}
    body = json.dumps({"schema": PAYLOAD_DATA, "data": [good, deep]})
    collected = ingest.collector.tp2(ingest.request("/com.snowplowanalytics.snowplow/tp2", body))
    assert collected.answer.status == 200
    assert len(ingest.events()) == 1
    assert ingest.failed.reasons() == ["too_deeply_nested"]


def test_a_tp2_body_whose_item_itself_is_deep_is_refused_per_item(ingest: Ingest) -> None:
    good = json.dumps({"e": "pv", "aid": "shop-web", "duid": "d1"})
    body = '{"schema": "' + PAYLOAD_DATA + '", "data": [' + good + ", " + nested(330) + "]}"
    collected = ingest.collector.tp2(ingest.request("/com.snowplowanalytics.snowplow/tp2", body))
    assert collected.answer.status == 200
    assert len(ingest.events()) == 1
    assert len(ingest.failed.failures) == 1
