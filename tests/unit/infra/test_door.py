"""What the local gateway refuses at the door, decided from the request's head alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.local.door import (
    MAX_PAYLOAD_BYTES,
    MAX_REQUEST_LINE_AND_HEADERS_BYTES,
    refusal_at_door,
    unreadable_request,
)

LINE = "POST /v1/track?writeKey=k HTTP/1.1"
TARGET = "/v1/track?writeKey=k"


def test_an_ordinary_request_goes_in() -> None:
    headers = [("Host", "127.0.0.1:8080"), ("Content-Length", "12")]
    assert refusal_at_door(LINE, TARGET, headers) is None
    assert refusal_at_door(LINE, TARGET, [("Transfer-Encoding", "Chunked")]) is None
    assert refusal_at_door("GET /i HTTP/1.1", "/i", []) is None


def test_the_header_limit_counts_the_request_line_and_the_values() -> None:
    room = MAX_REQUEST_LINE_AND_HEADERS_BYTES - len(LINE)
    assert refusal_at_door(LINE, TARGET, [("X-Pad", "a" * room)]) is None
    refusal = refusal_at_door(LINE, TARGET, [("X-Pad", "a" * (room + 1))])
    assert refusal is not None
    assert (refusal.status, refusal.reason, refusal.field) == (431, "headers_too_large", "headers")
    assert "10241" in refusal.message and "a" * 20 not in refusal.message


@pytest.mark.parametrize(
    "lengths",
    [["abc"], ["-1"], ["+5"], [" "], ["1e3"], ["٣"], ["5", "6"]],
)
def test_a_content_length_must_be_one_plain_number(lengths: list[str]) -> None:
    refusal = refusal_at_door(LINE, TARGET, [("Content-Length", n) for n in lengths])
    assert refusal is not None
    assert (refusal.status, refusal.reason) == (400, "bad_content_length")


def test_the_same_content_length_twice_is_one() -> None:
    assert refusal_at_door(LINE, TARGET, [("Content-Length", "5"), ("content-length", "5")]) is None


def test_over_10_mb_declared_is_413() -> None:
    headers = [("Content-Length", str(MAX_PAYLOAD_BYTES + 1))]
    refusal = refusal_at_door(LINE, TARGET, headers)
    assert refusal is not None and (refusal.status, refusal.reason) == (413, "payload_too_large")
    assert refusal_at_door(LINE, TARGET, [("Content-Length", str(MAX_PAYLOAD_BYTES))]) is None


def test_two_framings_or_an_unknown_coding_are_refused() -> None:
    both = refusal_at_door(
        LINE, TARGET, [("Content-Length", "2"), ("Transfer-Encoding", "chunked")]
    )
    assert both is not None and both.status == 400
    gzip = refusal_at_door(LINE, TARGET, [("Transfer-Encoding", "gzip, chunked")])
    assert gzip is not None and (gzip.status, gzip.reason) == (501, "unsupported_transfer_encoding")


def test_the_record_is_evidence_only() -> None:
    refusal = refusal_at_door(LINE, TARGET, [("Authorization", "Basic " + "s" * 11_000)])
    assert refusal is not None
    record = refusal.failed_event(datetime(2026, 3, 1, tzinfo=UTC), "req-1")
    assert record.step == "gateway" and record.raw == ""
    assert record.path == "/v1/track"  # the query string may carry a key
    assert "s" * 20 not in record.model_dump_json()


def test_the_parsers_refusals_name_no_part_of_the_request() -> None:
    refusal = unreadable_request(414, None)
    assert (refusal.reason, refusal.path) == ("uri_too_long", None)
    assert unreadable_request(400, "/v1/t?writeKey=k").path == "/v1/t"
    assert unreadable_request(431, "/x").reason == "headers_too_large"
