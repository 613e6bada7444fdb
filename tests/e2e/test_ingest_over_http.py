"""Real clients' requests over real HTTP into the local stack, read back from moto."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from .conftest import RunningStack, basic_auth, start_beacon

pytestmark = pytest.mark.e2e


def http(
    stack: RunningStack,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        stack.url + path, data=body, headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def records_for(stack: RunningStack, marker: str) -> list[dict]:
    return [r for r in stack.stream_records() if marker in json.dumps(r)]


def test_segment_batch_with_basic_auth(stack):
    marker = str(uuid.uuid4())
    body = {
        "batch": [
            {"type": "identify", "userId": marker, "traits": {"email": "a@example.org"}},
            {
                "type": "track",
                "userId": marker,
                "event": "Order Completed",
                "properties": {"total": 42},
            },
        ],
        "context": {"library": {"name": "analytics-node"}},
    }
    status, _, answer = http(
        stack,
        "POST",
        "/v1/batch",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **basic_auth("local-write-key")},
    )
    assert (status, json.loads(answer)) == (200, {"success": True})
    records = records_for(stack, marker)
    assert [r["type"] for r in records] == ["identify", "track"]
    assert all(r["key"] == marker for r in records)
    assert records[1]["context"]["library"] == {"name": "analytics-node"}
    assert records[1]["context"]["ip"] == "127.0.0.0"  # truncated, never raw


def test_text_plain_and_gzip_bodies(stack):
    marker = str(uuid.uuid4())
    plain = json.dumps({"writeKey": "local-write-key", "anonymousId": marker, "name": "Home"})
    assert http(stack, "POST", "/v1/p", plain.encode(), {"Content-Type": "text/plain"})[0] == 200
    zipped = gzip.compress(json.dumps({"anonymousId": marker, "event": "Zipped"}).encode())
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        **basic_auth("local-server-write-key"),
    }
    assert http(stack, "POST", "/v1/t", zipped, headers)[0] == 200
    records = records_for(stack, marker)
    assert sorted((r["type"], r["source"]["name"]) for r in records) == [
        ("page", "web"),
        ("track", "server"),
    ]


def test_snowplow_pixel_answers_a_gif_and_lands_in_the_stream(stack):
    duid = str(uuid.uuid4())
    query = urllib.parse.urlencode(
        {
            "e": "pv",
            "duid": duid,
            "aid": "shop-web",
            "tv": "js-3.24.0",
            "url": "https://shop.example.com/p/1",
            "page": "Tent",
        }
    )
    status, headers, body = http(stack, "GET", "/i?" + query)
    assert status == 200
    assert body.startswith(b"GIF89a")
    assert headers["Content-Type"] == "image/gif"
    assert "no-store" in headers["Cache-Control"]
    [record] = records_for(stack, duid)
    assert (record["type"], record["name"], record["anonymousId"]) == ("page", "Tent", duid)


def test_snowplow_tp2_post(stack):
    duid = str(uuid.uuid4())
    body = {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [
            {"e": "se", "se_ca": "cart", "se_ac": "add", "duid": duid, "aid": "shop-web"},
            {"e": "tr", "tr_id": "o-1", "tr_tt": "99.5", "duid": duid, "aid": "shop-web"},
        ],
    }
    status, _, answer = http(
        stack,
        "POST",
        "/com.snowplowanalytics.snowplow/tp2",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200 and json.loads(answer)["accepted"] == 2
    events = {r["event"]: r for r in records_for(stack, duid)}
    assert events["add"]["properties"]["category"] == "cart"
    assert events["Order Completed"]["properties"]["total"] == 99.5


def test_garbage_pixel_is_still_a_gif_and_a_failed_event(stack):
    marker = uuid.uuid4().hex
    status, _, body = http(stack, "GET", f"/i?e=zz&junk={marker}")
    assert status == 200 and body.startswith(b"GIF89a")
    [failure] = [f for f in stack.failed_events() if marker in f["raw"]]
    assert failure["key"].startswith("ingest/dt=")
    assert failure["reason"] in {"invalid_event", "unknown_app_id"}


def test_unhappy_paths(stack):
    marker = str(uuid.uuid4())
    json_type = {"Content-Type": "application/json"}
    assert (
        http(stack, "POST", "/v1/track", b"{oops", {**json_type, **basic_auth("local-write-key")})[
            0
        ]
        == 400
    )
    assert (
        http(
            stack,
            "POST",
            "/v1/track",
            json.dumps({"userId": marker, "event": "E"}).encode(),
            {**json_type, **basic_auth("wrong")},
        )[0]
        == 401
    )
    assert http(stack, "POST", "/v1/nope", b"{}", json_type)[0] == 404
    assert http(stack, "GET", "/v2/anything")[0] == 404
    big = {
        "writeKey": "local-write-key",
        "userId": marker,
        "event": "E",
        "properties": {"b": "x" * 40_000},
    }
    assert http(stack, "POST", "/v1/track", json.dumps(big).encode(), json_type)[0] == 413
    reasons = {f["reason"] for f in stack.failed_events()}
    assert {"malformed_body", "unauthorized", "event_too_large"} <= reasons
    assert records_for(stack, marker) == []


def test_cors_preflight_for_configured_origins_only(stack):
    headers = {
        "Origin": "https://shop.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    status, answer, _ = http(stack, "OPTIONS", "/v1/batch", None, headers)
    assert status == 204
    assert answer["Access-Control-Allow-Origin"] == "https://shop.example.com"
    status, answer, _ = http(
        stack, "OPTIONS", "/v1/batch", None, {**headers, "Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in answer


def test_demo_exits_zero_with_a_ledger_that_adds_up():
    process, _, _ = start_beacon("demo", "--exit", "--customers", "8")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "ledger" in output and "OK: every event" in output
