"""`Vary: Origin` on the ingest function's answers, through the real handler.

Its CORS headers are granted per request Origin (allowed origins only), so a
cache that ignores Origin would serve one origin's answer to another.
"""

from __future__ import annotations

import json

import pytest

from functions.ingest.handler import vary_on_origin

from .test_ingest_properties import WRITE_KEY, FakeContext, gateway_event, handler_on, harness

ALLOWED = "https://shop.example.com"  # in beacon.yaml's web source


def track() -> bytes:
    event = {"type": "track", "event": "Viewed", "anonymousId": "a-1", "writeKey": WRITE_KEY}
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("POST", "/v1/track", {"content-type": "application/json"}, track()),
        ("OPTIONS", "/v1/track", {"access-control-request-method": "POST"}, b""),
        ("GET", "/i", {}, b""),
    ],
)
@pytest.mark.parametrize("origin", [ALLOWED, "https://evil.example"])
def test_every_answer_varies_on_origin(
    method: str, path: str, headers: dict[str, str], body: bytes, origin: str
) -> None:
    event = gateway_event(
        method, path, body, base64_body=False, headers={**headers, "origin": origin}
    )
    with handler_on(harness()) as handler:
        answer = handler(event, FakeContext())
    granted = answer["headers"].get("Access-Control-Allow-Origin")
    assert granted == (origin if origin == ALLOWED else None)
    assert answer["headers"]["Vary"] == "Origin"


def test_an_existing_vary_is_kept() -> None:
    answer = vary_on_origin({"statusCode": 200, "headers": {"vary": "Accept-Encoding"}})
    assert answer["headers"] == {"vary": "Accept-Encoding, Origin"}
    assert vary_on_origin({"headers": {"Vary": "origin"}})["headers"] == {"Vary": "origin"}
