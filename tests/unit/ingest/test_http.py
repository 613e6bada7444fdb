from __future__ import annotations

import base64
import gzip
import hashlib
import zlib

import pytest

from functions.ingest.http import (
    EVIDENCE_PREFIX_BYTES,
    BodyError,
    decode_body,
    evidence,
    write_key_from,
)

from .conftest import make_request


def test_plain_gzip_and_deflate():
    assert decode_body(b'{"a":1}', None) == '{"a":1}'
    assert decode_body(gzip.compress(b'{"a":1}'), "gzip") == '{"a":1}'
    assert decode_body(zlib.compress(b'{"a":1}'), "deflate") == '{"a":1}'


def test_gzip_bomb_stops_at_the_limit():
    bomb = gzip.compress(b"0" * 50_000_000)
    with pytest.raises(BodyError) as err:
        decode_body(bomb, "gzip", limit=1000)
    assert err.value.status == 413


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [(b"x" * 11, None, 413), (b"junk", "gzip", 400), (b"{}", "br", 415), (b"\xff", None, 400)],
)
def test_body_errors(body, encoding, status):
    with pytest.raises(BodyError) as err:
        decode_body(body, encoding, limit=10)
    assert err.value.status == status


def test_evidence_keeps_small_text_whole_and_large_or_binary_bodies_as_a_prefix():
    assert evidence(b"hello", "hello").text == "hello"
    assert evidence(b"hello", "hello").sha256 is None
    big = b"x" * (EVIDENCE_PREFIX_BYTES * 10)
    kept = evidence(big, big.decode())
    assert kept.text == "x" * EVIDENCE_PREFIX_BYTES
    assert kept.length == len(big)
    assert kept.sha256 == hashlib.sha256(big).hexdigest()
    assert evidence(big, big.decode(), whole=True).text == big.decode()
    compressed = gzip.compress(big)  # never kept as base64: no redaction could reach inside
    assert not evidence(compressed).text.startswith("base64:")


def test_write_key_precedence_and_garbage_auth():
    auth = {"Authorization": "Basic " + base64.b64encode(b"from-header:").decode()}
    assert write_key_from(make_request(headers=auth), {"writeKey": "b"}) == "from-header"
    assert write_key_from(make_request(), {"writeKey": "b"}) == "b"
    assert write_key_from(make_request(query={"writeKey": "q"}), {}) == "q"
    assert write_key_from(make_request(headers={"Authorization": "Basic !!!"}), None) is None
    assert write_key_from(make_request(headers={"Authorization": "Bearer x"}), None) is None
