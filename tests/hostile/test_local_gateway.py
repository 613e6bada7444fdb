"""Finding 11: the local gateway against requests no well-behaved client sends.

On the hand-written gateway (main before issue 13) every test here failed:
`Content-Length: abc` dropped the connection with no answer, `-1` read until
the client gave up, a chunked body was read as empty and its chunks as a
second request, a 20 KB header block went through to the function and left no
record, and CORS answers had no `Vary: Origin`.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, basic_auth

pytestmark = pytest.mark.e2e

ANSWER_TIMEOUT_S = 5.0
ALLOWED_ORIGIN = "https://shop.example.com"  # in beacon.yaml's web source


def address(stack: RunningStack) -> tuple[str, int]:
    url = urllib.parse.urlsplit(stack.url)
    assert url.hostname and url.port
    return url.hostname, url.port


def raw_exchange(stack: RunningStack, request: bytes) -> http.client.HTTPResponse:
    """Send bytes as they are; the answer must come within ANSWER_TIMEOUT_S."""
    sock = socket.create_connection(address(stack), timeout=ANSWER_TIMEOUT_S)
    sock.sendall(request)
    answer = http.client.HTTPResponse(sock)
    try:
        answer.begin()
        answer.read()
    except (TimeoutError, http.client.HTTPException, ConnectionError) as err:
        pytest.fail(f"no answer within {ANSWER_TIMEOUT_S} s: {err!r}")
    finally:
        sock.close()
    return answer


def gateway_records(stack: RunningStack, reason: str) -> list[dict[str, Any]]:
    return [
        r
        for r in stack.failed_events()
        if re.match(rf"gateway/dt=\d{{4}}-\d{{2}}-\d{{2}}/reason={reason}/", r["key"])
    ]


def track(message_id: str, **properties: Any) -> bytes:
    event = {
        "type": "track",
        "event": "Hostile Gateway Probe",
        "anonymousId": f"anon-{message_id}",
        "messageId": message_id,
        "properties": properties,
    }
    return json.dumps(event).encode()


@pytest.mark.parametrize("length", ["abc", "-1"])
def test_malformed_content_length_gets_400_and_a_record(stack: RunningStack, length: str) -> None:
    path = f"/v1/track?probe={uuid.uuid4().hex}"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n{{}}"
    ).encode()
    answer = raw_exchange(stack, request)
    assert answer.status == 400
    assert answer.getheader("Connection", "").lower() == "close"  # framing unknown: no reuse
    [record] = [r for r in gateway_records(stack, "bad_content_length") if length in r["message"]]
    assert record["step"] == "gateway" and record["path"] == "/v1/track"  # no query string
    assert record["raw"] == ""  # evidence only, never the body


def test_chunked_body_arrives_whole_and_is_accepted(stack: RunningStack) -> None:
    message_id = f"chunked-{uuid.uuid4().hex}"
    body = track(message_id, note="x" * 3000)
    chunks = [body[i : i + 700] for i in range(0, len(body), 700)]  # splits inside values
    connection = http.client.HTTPConnection(*address(stack), timeout=ANSWER_TIMEOUT_S)
    headers = {"Content-Type": "application/json", **basic_auth("local-write-key")}
    try:
        connection.request("POST", "/v1/track", iter(chunks), headers, encode_chunked=True)
        first = connection.getresponse()
        assert (first.status, first.read()) == (200, b'{"success": true}')
        # The same connection goes on: the chunks were not left behind as a request.
        connection.request("POST", "/v1/track", track(f"{message_id}-next"), headers)
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b'{"success": true}')
    finally:
        connection.close()
    [stored] = [r for r in stack.stream_records() if r.get("messageId") == message_id]
    assert stored["properties"]["note"] == "x" * 3000


def test_header_block_over_api_gateway_limit_gets_431_and_a_record(stack: RunningStack) -> None:
    secret_looking = "s" * 20_000  # a header value the record must never hold
    probe = f"/v1/track?probe={uuid.uuid4().hex}"
    request = (
        f"POST {probe} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {secret_looking}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    answer = raw_exchange(stack, request)
    assert answer.status == 431
    records = gateway_records(stack, "headers_too_large")
    assert records, "a 431 must leave a failed-events record"
    assert all(secret_looking not in json.dumps(r) for r in records)
    assert any(r["path"] == "/v1/track" and "10240" in r["message"] for r in records)


def test_cors_answers_say_vary_origin(stack: RunningStack) -> None:
    """A CORS answer depends on the request's Origin: a cache must key on it."""
    connection = http.client.HTTPConnection(*address(stack), timeout=ANSWER_TIMEOUT_S)
    auth = basic_auth("local-write-key")
    try:
        for origin in (ALLOWED_ORIGIN, "https://evil.example"):
            connection.request(
                "POST",
                "/v1/track",
                track(f"vary-{uuid.uuid4().hex}"),
                {"Content-Type": "application/json", "Origin": origin, **auth},
            )
            answer = connection.getresponse()
            answer.read()
            allowed = answer.getheader("Access-Control-Allow-Origin")
            assert allowed == (origin if origin == ALLOWED_ORIGIN else None)
            assert "origin" in answer.getheader("Vary", "").lower(), origin
        connection.request(
            "OPTIONS",
            "/v1/track",
            headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        preflight = connection.getresponse()
        preflight.read()
        assert preflight.getheader("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
        assert "origin" in preflight.getheader("Vary", "").lower()
    finally:
        connection.close()
