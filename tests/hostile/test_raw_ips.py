"""Finding 6: raw IPs got past the scrubbing.

Failed events kept a raw `context.ip` when the body was gzip, not UTF-8, or
spelled the key `"\\u0069p"`; `traits.ip` and `properties.ip` travelled raw
through every stream (and a profile trait `ip` reached a webhook).
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib

from tests.hostile.conftest import BASIC, RAW_IP, Ingest

MALFORMED = '{"batch": [{"type": "track", "context": {"ip": "' + RAW_IP + '"}}'  # no closing


def readable(raw: str) -> bytes:
    """Everything the stored text can be turned back into (it used to be base64 of the
    body, compressed or not)."""
    if not raw.startswith("base64:"):
        return raw.encode()
    data = base64.b64decode(raw.removeprefix("base64:"))
    try:
        return data + zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    except zlib.error:
        return data


def assert_no_raw_ip(ingest: Ingest) -> None:
    for failure in ingest.failed.failures:
        assert RAW_IP.encode() not in readable(failure.raw), failure.raw
    for record in ingest.stream.records:
        assert RAW_IP.encode() not in record.data


def test_a_gzipped_body_refused_keeps_no_raw_ip(ingest: Ingest) -> None:
    headers = {**BASIC, "content-encoding": "gzip"}
    request = ingest.request("/v1/batch", gzip.compress(MALFORMED.encode()), headers)
    assert ingest.collector.segment("batch", request).answer.status == 400
    assert_no_raw_ip(ingest)


def test_a_body_that_is_not_utf8_keeps_no_raw_ip(ingest: Ingest) -> None:
    body = MALFORMED.encode() + b"\xff\xfe"
    ingest.collector.segment("batch", ingest.request("/v1/batch", body, BASIC))
    assert ingest.failed.failures
    assert_no_raw_ip(ingest)


def test_an_escaped_ip_key_is_redacted_in_a_body_that_does_not_parse(ingest: Ingest) -> None:
    body = '{"batch": [{"type": "track", "context": {"\\u0069p": "' + RAW_IP + '"}}'
    ingest.segment("batch", body)
    assert ingest.failed.reasons() == ["malformed_body"]
    assert_no_raw_ip(ingest)


def test_ip_fields_in_traits_and_properties_are_anonymized_before_the_stream(
    ingest: Ingest,
) -> None:
    ingest.segment("identify", {"userId": "u", "traits": {"ip": RAW_IP, "home": {"IP": RAW_IP}}})
    ingest.segment("track", {"userId": "u", "event": "E", "properties": {"ip": RAW_IP}})
    assert_no_raw_ip(ingest)
    identify, track = ingest.events()
    assert identify.traits["ip"] == "203.0.113.0"
    assert identify.traits["home"] == {"IP": "203.0.113.0"}
    assert track.properties["ip"] == "203.0.113.0"
    assert json.loads(track.to_json())["context"]["ip"] == "203.0.113.0"
