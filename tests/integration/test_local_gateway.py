"""The local gateway over real sockets, in front of a handler that echoes its event.

What API Gateway does with a request (routes, payload 2.0 events, answers)
and what it refuses before any function runs; keep-alive; a clean stop.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.door import MAX_PAYLOAD_BYTES, Refusal
from infra.local.gateway import BoundRoute, Gateway, LocalPage
from infra.local.invoke import LocalFunction
from infra.topology import TOPOLOGY

HOST = "127.0.0.1"
INGEST = next(fn for fn in TOPOLOGY.functions if fn.name == "ingest")


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["rawPath"] == "/v1/fail":
        raise RuntimeError("the function failed")
    return {"statusCode": 200, "headers": {"X-Echo": "1"}, "body": json.dumps(event)}


class Rig:
    def __init__(self) -> None:
        self.refusals: list[Refusal] = []
        self.pages: dict[str, LocalPage] = {}
        function = LocalFunction(INGEST, echo)
        self.gateway = Gateway(
            [BoundRoute(route, function) for route in INGEST.http_routes],
            self.pages,
            record_refusal=self.refusals.append,
        )
        self.port = self.gateway.start(HOST, 0)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=10)

    def raw(self, request: bytes) -> http.client.HTTPResponse:
        with socket.create_connection((HOST, self.port), timeout=10) as sock:
            sock.sendall(request)
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            answer.read()
            return answer


@pytest.fixture
def rig() -> Iterator[Rig]:
    rig = Rig()
    yield rig
    rig.gateway.stop()


def event_of(answer: http.client.HTTPResponse) -> dict[str, Any]:
    assert answer.status == 200, answer.status
    event: dict[str, Any] = json.loads(answer.read())
    return event


def test_a_request_becomes_a_payload_2_event(rig: Rig) -> None:
    connection = rig.connection()
    connection.request(
        "POST",
        "/v1/batch?writeKey=k&tag=a&tag=b",
        body=gzip.compress(b'{"batch": []}'),
        headers={"Content-Encoding": "gzip", "Cookie": "a=1; b=2", "X-Twice": "1"},
    )
    event = event_of(connection.getresponse())
    assert event["routeKey"] == "POST /v1/{proxy+}"
    assert event["pathParameters"] == {"proxy": "batch"}
    assert event["rawPath"] == "/v1/batch"
    assert event["rawQueryString"] == "writeKey=k&tag=a&tag=b"
    assert event["queryStringParameters"] == {"writeKey": "k", "tag": "a,b"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["content-encoding"] == "gzip"
    assert event["headers"]["host"] == f"{HOST}:{rig.port}"
    assert event["isBase64Encoded"] is True
    assert gzip.decompress(base64.b64decode(event["body"])) == b'{"batch": []}'
    assert event["requestContext"]["http"]["sourceIp"] == HOST
    assert event["requestContext"]["http"]["protocol"] == "HTTP/1.1"


def test_connections_are_kept_alive(rig: Rig) -> None:
    connection = rig.connection()
    connection.request("GET", "/i?e=pv")
    first = connection.getresponse()
    first.read()
    sock = connection.sock
    for n in range(20):
        connection.request("POST", "/v1/track", body=json.dumps({"n": n}).encode())
        answer = connection.getresponse()
        assert json.loads(event_of(answer)["body"]) == {"n": n}
        assert answer.getheader("Connection") is None
    assert connection.sock is sock, "the connection was reopened"


def test_a_chunked_body_is_read_whole_and_the_connection_goes_on(rig: Rig) -> None:
    connection = rig.connection()
    chunks = [b'{"part": "', b"x" * 5000, b'"}']
    connection.request("POST", "/v1/track", iter(chunks), encode_chunked=True)
    assert json.loads(event_of(connection.getresponse())["body"]) == {"part": "x" * 5000}
    connection.request("POST", "/v1/track", body=b"{}")
    assert event_of(connection.getresponse())["body"] == "{}"


def test_over_10_mb_is_refused_with_413_before_the_body(rig: Rig) -> None:
    declared = MAX_PAYLOAD_BYTES + 1
    head = f"POST /v1/track?writeKey=k HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
    answer = rig.raw(head.encode() + b"\r\n")
    assert answer.status == 413
    [refusal] = rig.refusals
    assert (refusal.reason, refusal.path) == ("payload_too_large", "/v1/track")
    assert str(declared) in refusal.message


def test_a_chunked_body_over_10_mb_is_refused_with_413(rig: Rig) -> None:
    connection = rig.connection()
    block = b"x" * (1024 * 1024)
    connection.request("POST", "/v1/track", iter([block] * 11), encode_chunked=True)
    answer = connection.getresponse()
    assert answer.status == 413
    assert answer.getheader("Connection") == "close"
    assert [r.reason for r in rig.refusals] == ["payload_too_large"]


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        ("Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400, "malformed_chunked_body"),
        ("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400, "bad_content_length"),
        ("Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "bad_content_length"),
        ("Content-Length: +2\r\n\r\n{}", 400, "bad_content_length"),
        ("Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported_transfer_encoding"),
        ("".join(f"X-H{i}: v\r\n" for i in range(101)) + "\r\n", 431, "headers_too_large"),
    ],
)
def test_what_the_door_refuses_is_answered_and_recorded(
    rig: Rig, head: str, status: int, reason: str
) -> None:
    answer = rig.raw(f"POST /v1/track?writeKey=k HTTP/1.1\r\nHost: x\r\n{head}".encode())
    assert answer.status == status
    assert answer.getheader("Content-Type") == "application/json"
    [refusal] = rig.refusals
    assert (refusal.status, refusal.reason, refusal.path) == (status, reason, "/v1/track")


def test_an_unreadable_request_line_is_refused_and_recorded(rig: Rig) -> None:
    assert rig.raw(b"POST /v1/track HTTP/1.1 extra\r\n\r\n").status == 400
    long_line = b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"
    assert rig.raw(long_line).status == 414
    assert [r.reason for r in rig.refusals] == ["malformed_request", "uri_too_long"]
    assert rig.refusals[1].path is None  # the parser never read a target out of it


def test_expect_100_continue_is_answered_once_the_door_lets_it_in(rig: Rig) -> None:
    with socket.create_connection((HOST, rig.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"{}")
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert event_of(answer)["body"] == "{}"


def test_pages_by_prefix_then_routes_then_404(rig: Rig) -> None:
    def page(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        return 200, {"Content-Type": "text/plain"}, f"{method} {path} {len(body)}".encode()

    rig.pages.update({"/": page, "/_sink/": page})  # mounted after start, as the stack does
    connection = rig.connection()
    for method, path, expected in [
        ("GET", "/", b"GET / 0"),
        ("DELETE", "/_sink/a?x=1", b"DELETE /_sink/a?x=1 0"),
    ]:
        connection.request(method, path)
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (200, expected)
    connection.request("GET", "/nowhere")
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (404, b'{"message": "Not Found"}')
    connection.request("HEAD", "/")
    answer = connection.getresponse()
    assert answer.getheader("Content-Length") == str(len(b"HEAD / 0"))
    assert answer.read() == b""


def test_a_failing_function_gets_500(rig: Rig) -> None:
    connection = rig.connection()
    connection.request("POST", "/v1/fail", body=b"{}")
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (500, b'{"message": "Internal Server Error"}')


def test_stop_closes_kept_alive_connections_and_frees_the_port(rig: Rig) -> None:
    connection = rig.connection()
    connection.request("GET", "/i")
    connection.getresponse().read()
    rig.gateway.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.request("GET", "/i")
        connection.getresponse()
    again = Gateway([], {})
    assert again.start(HOST, rig.port) == rig.port
    again.stop()


def test_a_body_cut_short_is_recorded(rig: Rig) -> None:
    with socket.create_connection((HOST, rig.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)  # the client goes away mid-body
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 400
    assert [r.reason for r in rig.refusals] == ["incomplete_body"]
