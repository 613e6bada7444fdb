"""Finding 5: refused bodies were stored whole, before the key was checked.

With no key, a 9 MB body got 413 and a 9 MB failed-events record; write keys
(`writeKey` in the body, `?writeKey=`) were stored verbatim in failed events.
"""

from __future__ import annotations

import hashlib
import json

from tests.hostile.conftest import Ingest

EVIDENCE = 1024 + 64  # a prefix, plus what redaction may add


def test_a_9_mb_body_without_a_key_leaves_evidence_not_a_copy(ingest: Ingest) -> None:
    body = b'{"batch": [' + b'{"type": "track"},' * 500_000 + b"{}]}"
    collected = ingest.collector.segment("batch", ingest.request("/v1/batch", body, {}))
    assert collected.answer.status == 413
    (failure,) = ingest.failed.failures
    assert len(failure.raw.encode()) <= EVIDENCE
    assert failure.raw_bytes == len(body)
    assert failure.raw_sha256 == hashlib.sha256(body).hexdigest()


def test_a_wrong_key_in_the_header_is_refused_before_the_body_is_read(ingest: Ingest) -> None:
    body = json.dumps({"batch": [{"type": "track", "event": "E", "anonymousId": "a"}] * 5000})
    auth = {"authorization": "Basic d3Jvbmc6"}  # "wrong:"
    collected = ingest.collector.segment("batch", ingest.request("/v1/batch", body, auth))
    assert collected.answer.status == 401
    assert len(ingest.failed.failures[0].raw.encode()) <= EVIDENCE


def test_write_keys_are_redacted_in_every_place_a_client_puts_them(ingest: Ingest) -> None:
    ingest.collector.segment(
        "track", ingest.request("/v1/track", '{"writeKey": "local-write-key", "event": ', {})
    )
    ingest.collector.segment(
        "track", ingest.request("/v1/track", "", {}, query={"writeKey": "nope-key-123"})
    )
    ingest.collector.segment(
        "batch",
        ingest.request(
            "/v1/batch",
            json.dumps({"writeKey": "local-write-key", "batch": [{"writeKey": "k2", "type": "x"}]}),
            {},
        ),
    )
    assert len(ingest.failed.failures) == 3
    for failure in ingest.failed.failures:
        for key in ("local-write-key", "nope-key-123", '"k2"'):
            assert key not in failure.raw, failure.raw
