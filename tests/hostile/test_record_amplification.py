"""Finding 4: one small request wrote megabytes to Kinesis.

The 32 KB event limit was checked before the batch-level `context` and the
User-Agent were merged into each item: a 103 KB request with a 100 KB context
and 50 items wrote 5 MB; a 12 KB request with a 60 KB User-Agent wrote 12 MB.
"""

from __future__ import annotations

import json

from tests.hostile.conftest import BASIC, Ingest

# What a request may make Beacon write, whatever it holds (ingest's documented limits).
RECORD_LIMIT = 40 * 1024
REQUEST_LIMIT = 1024 * 1024


def test_a_huge_batch_context_is_not_copied_into_every_item(ingest: Ingest) -> None:
    items = [{"type": "track", "event": "E", "anonymousId": f"a{i}"} for i in range(50)]
    body = json.dumps({"batch": items, "context": {"blob": "x" * 100_000}})
    collected = ingest.segment("batch", body)
    assert ingest.written_bytes() <= REQUEST_LIMIT
    assert all(len(r.data) <= RECORD_LIMIT for r in ingest.stream.records)
    assert ingest.failed.reasons() == ["event_too_large"] * 50
    assert collected.answer.status == 400


def test_a_huge_user_agent_is_not_copied_into_every_item(ingest: Ingest) -> None:
    items = [{"type": "track", "event": "E", "anonymousId": f"a{i}"} for i in range(200)]
    request = ingest.request(
        "/v1/batch", json.dumps({"batch": items}), BASIC, user_agent="U" * 60_000
    )
    ingest.collector.segment("batch", request)
    assert ingest.written_bytes() <= REQUEST_LIMIT
    assert len(ingest.failed.failures) == 200


def test_what_one_request_writes_is_bounded_even_when_each_record_fits(ingest: Ingest) -> None:
    """Many tiny items, each inheriting a context just under the record limit."""
    items = [{"type": "track", "event": "E", "anonymousId": f"a{i}"} for i in range(400)]
    body = json.dumps({"batch": items, "context": {"blob": "x" * 30_000}})
    collected = ingest.segment("batch", body)
    assert ingest.written_bytes() <= REQUEST_LIMIT
    written, failed = len(ingest.stream.records), len(ingest.failed.failures)
    assert written + failed == 400 and failed > 0
    assert set(ingest.failed.reasons()) == {"request_writes_too_much"}
    assert json.loads(collected.answer.body)["accepted"] == written
