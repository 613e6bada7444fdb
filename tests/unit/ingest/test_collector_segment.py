"""Segment HTTP Tracking API through the collector: answers, stream records, failed events."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from functions.ingest.canonicalize import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from functions.ingest.collector import Collector

from .conftest import MemoryFailedStore, MemoryStream, make_request


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def answer_json(collected) -> dict:
    return json.loads(collected.answer.body)


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        ("track", "track"),
        ("t", "track"),
        ("identify", "identify"),
        ("i", "identify"),
        ("page", "page"),
        ("p", "page"),
        ("screen", "screen"),
        ("s", "screen"),
        ("group", "group"),
        ("g", "group"),
        ("alias", "alias"),
        ("a", "alias"),
    ],
)
def test_every_single_call_and_its_short_form(collector, stream, call, kind):
    body = {"userId": "u1", "event": "Signed Up", "groupId": "g1", "previousId": "a0"}
    result = collector.segment(call, make_request(json.dumps(body), basic("local-write-key")))
    assert result.answer.status == 200, result.answer.body
    assert answer_json(result) == {"success": True}
    [event] = stream.events()
    assert event["type"] == kind
    assert event["source"] == {"name": "web", "protocol": "segment"}


@pytest.mark.parametrize("where", ["basic", "body", "query"])
def test_write_key_from_basic_auth_body_or_query(collector, stream, where):
    body = {"anonymousId": "a1", "event": "X"}
    headers, query = {}, {}
    if where == "basic":
        headers = basic("local-server-write-key")
    elif where == "body":
        body["writeKey"] = "local-server-write-key"
    else:
        query = {"writeKey": "local-server-write-key"}
    result = collector.segment("track", make_request(json.dumps(body), headers, query))
    assert result.answer.status == 200
    [event] = stream.events()
    assert event["source"]["name"] == "server"
    assert "writeKey" not in event


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, {"anonymousId": "a1", "event": "X"}, "missing write key"),
        (basic("nope"), {"anonymousId": "a1", "event": "X"}, "unknown write key"),
        ({}, {"anonymousId": "a1", "event": "X", "writeKey": "nope"}, "unknown write key"),
    ],
)
def test_unknown_or_missing_write_key_is_401_and_a_failed_event(
    collector, stream, failed, headers, body, message
):
    result = collector.segment("track", make_request(json.dumps(body), headers))
    assert result.answer.status == 401
    assert answer_json(result)["error"] == message
    assert stream.records == []
    assert failed.reasons() == ["unauthorized"]
    assert json.loads(failed.failures[0].raw)["event"] == "X"


def test_text_plain_body_as_analytics_js_sends_it(collector, stream):
    body = json.dumps({"writeKey": "local-write-key", "anonymousId": "a1", "name": "Home"})
    result = collector.segment("p", make_request(body, {"Content-Type": "text/plain"}))
    assert result.answer.status == 200
    assert stream.events()[0]["name"] == "Home"


def test_gzip_body(collector, stream):
    body = gzip.compress(
        json.dumps({"batch": [{"type": "track", "userId": "u", "event": "E"}]}).encode()
    )
    headers = {**basic("local-write-key"), "Content-Encoding": "gzip"}
    assert collector.segment("batch", make_request(body, headers)).answer.status == 200
    assert stream.events()[0]["event"] == "E"


def test_batch_context_and_integrations_merge_into_items_item_wins(collector, stream):
    body = {
        "writeKey": "local-write-key",
        "context": {"library": {"name": "analytics-node", "version": "2"}, "locale": "en-GB"},
        "integrations": {"All": False, "Braze": True},
        "batch": [
            {"type": "track", "userId": "u", "event": "A"},
            {
                "type": "track",
                "userId": "u",
                "event": "B",
                "context": {"library": {"version": "3"}},
                "integrations": {"Braze": False},
            },
        ],
    }
    assert collector.segment("batch", make_request(json.dumps(body))).answer.status == 200
    first, second = stream.events()
    assert first["context"]["library"] == {"name": "analytics-node", "version": "2"}
    assert first["context"]["locale"] == "en-GB"
    assert first["integrations"] == {"All": False, "Braze": True}
    assert second["context"]["library"] == {"name": "analytics-node", "version": "3"}
    assert second["integrations"] == {"All": False, "Braze": False}


def test_one_bad_event_never_costs_its_neighbours(collector, stream, failed):
    body = {
        "writeKey": "local-write-key",
        "batch": [
            {"type": "track", "userId": "u", "event": "Good 1", "messageId": "m1"},
            {"type": "track", "userId": "u", "messageId": "m2"},  # no event name
            {"type": "bogus", "userId": "u", "messageId": "m3"},
            "not an object",
            {"type": "track", "userId": "u", "event": "Good 2", "messageId": "m5"},
        ],
    }
    result = collector.segment("batch", make_request(json.dumps(body)))
    assert result.answer.status == 200
    answer = answer_json(result)
    assert answer["accepted"] == 2
    assert [(r["index"], r.get("field")) for r in answer["rejected"]] == [
        (1, "event"),
        (2, "type"),
        (3, "batch[3]"),
    ]
    assert answer["rejected"][0]["messageId"] == "m2"
    assert [e["messageId"] for e in stream.events()] == ["m1", "m5"]
    assert failed.reasons() == ["invalid_event"] * 3
    assert all(f.request_id == "req-1" and f.path == "/v1/track" for f in failed.failures)


def test_all_rejected_is_400_listing_each(collector, stream, failed):
    body = {"writeKey": "local-write-key", "batch": [{"type": "track"}, {"type": "identify"}]}
    result = collector.segment("batch", make_request(json.dumps(body)))
    assert result.answer.status == 400
    answer = answer_json(result)
    assert answer["success"] is False
    assert [r["message"] for r in answer["rejected"]] == [
        "userId or anonymousId is required",
        "userId or anonymousId is required",
    ]
    assert stream.records == []
    assert len(failed.failures) == 2


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b""],
)
def test_malformed_body_is_400_and_kept_whole(collector, failed, body):
    result = collector.segment("track", make_request(body, basic("local-write-key")))
    assert result.answer.status == 400
    assert answer_json(result)["reason"] == "malformed_body"
    assert failed.reasons() == ["malformed_body"]


def test_batch_that_is_not_a_list_is_rejected_naming_the_field(collector, failed):
    body = {"writeKey": "local-write-key", "batch": {"type": "track"}}
    result = collector.segment("batch", make_request(json.dumps(body)))
    assert result.answer.status == 400
    assert answer_json(result)["rejected"][0]["field"] == "batch"


def test_oversize_single_event_is_413(collector, stream, failed):
    body = {
        "writeKey": "local-write-key",
        "userId": "u",
        "event": "E",
        "properties": {"blob": "x" * MAX_EVENT_BYTES},
    }
    result = collector.segment("track", make_request(json.dumps(body)))
    assert result.answer.status == 413
    assert stream.records == []
    assert failed.reasons() == ["event_too_large"]


def test_oversize_event_inside_a_batch_is_rejected_alone(collector, stream):
    body = {
        "writeKey": "local-write-key",
        "batch": [
            {
                "type": "track",
                "userId": "u",
                "event": "Big",
                "properties": {"b": "x" * MAX_EVENT_BYTES},
            },
            {"type": "track", "userId": "u", "event": "Small"},
        ],
    }
    result = collector.segment("batch", make_request(json.dumps(body)))
    assert result.answer.status == 200
    assert answer_json(result)["rejected"][0]["reason"] == "event_too_large"
    assert [e["event"] for e in stream.events()] == ["Small"]


def test_oversize_batch_is_413_also_when_gzipped(collector, failed):
    events = [
        {"type": "track", "userId": "u", "event": "E", "properties": {"p": "y" * 1000}}
        for _ in range(600)
    ]
    raw = json.dumps({"writeKey": "local-write-key", "batch": events}).encode()
    assert len(raw) > MAX_BATCH_BYTES
    for body, headers in ((raw, {}), (gzip.compress(raw), {"Content-Encoding": "gzip"})):
        assert collector.segment("batch", make_request(body, headers)).answer.status == 413
    assert failed.reasons() == ["payload_too_large", "payload_too_large"]
    # Neither is kept whole (no valid key was known before the size refusal): a
    # redacted prefix, the gzipped one inflated only that far, with the length and
    # SHA-256 of what was sent.
    plain, gzipped = failed.failures
    for kept in (plain, gzipped):
        assert kept.raw.startswith('{"writeKey": "[write key removed]", "batch": [')
        assert len(kept.raw.encode()) <= 1024 + 64  # the prefix, plus what redaction adds
    assert gzipped.raw_bytes == len(gzip.compress(raw)) and plain.raw_bytes == len(raw)


def test_corrupt_gzip_is_400(collector, failed):
    headers = {**basic("local-write-key"), "Content-Encoding": "gzip"}
    assert collector.segment("track", make_request(b"not gzip", headers)).answer.status == 400
    assert failed.reasons() == ["malformed_body"]


def test_clock_skew_rule(collector, stream):
    # The client's clock is 1 h fast: it says sentAt 01:00:10, event at 01:00:05.
    body = {
        "writeKey": "local-write-key",
        "sentAt": "2026-01-01T01:00:10Z",
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-01-01T01:00:05Z"},
        ],
    }
    collector.segment("batch", make_request(json.dumps(body)))
    [event] = stream.events()
    assert event["receivedAt"] == "2026-01-01T00:00:10Z"
    assert event["timestamp"] == "2026-01-01T00:00:05Z"
    assert event["originalTimestamp"] == "2026-01-01T01:00:05Z"


def test_bad_timestamp_names_the_field(collector, failed):
    body = {"writeKey": "local-write-key", "userId": "u", "event": "E", "timestamp": "yesterday"}
    result = collector.segment("track", make_request(json.dumps(body)))
    assert result.answer.status == 400
    assert answer_json(result)["rejected"][0]["field"] == "timestamp"


def test_message_id_is_kept_or_derived_stably(collector, stream):
    kept = {"writeKey": "local-write-key", "userId": "u", "event": "E", "messageId": "client-1"}
    derived = {
        "writeKey": "local-write-key",
        "userId": "u",
        "event": "E",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    collector.segment("track", make_request(json.dumps(kept)))
    collector.segment("track", make_request(json.dumps(derived)))
    collector.segment(
        "track", make_request(json.dumps({**derived, "sentAt": "2026-01-01T00:00:09Z"}))
    )
    ids = [e["messageId"] for e in stream.events()]
    assert ids[0] == "client-1"
    assert ids[1] == ids[2]  # a client's retry deduplicates downstream


def test_partition_key_is_anonymous_id_else_user_id(collector, stream):
    body = {
        "writeKey": "local-write-key",
        "batch": [
            {"type": "track", "anonymousId": "anon", "userId": "u", "event": "E"},
            {"type": "track", "userId": "u", "event": "E"},
        ],
    }
    collector.segment("batch", make_request(json.dumps(body)))
    assert [r.partition_key for r in stream.records] == ["anon", "u"]


def test_raw_ip_never_reaches_the_stream_or_failed_events(collector, stream, failed):
    body = {
        "writeKey": "local-write-key",
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "context": {"ip": "198.51.100.23"}},
            {"type": "track", "userId": "u", "event": "E"},
            {"type": "track", "context": {"ip": "198.51.100.23"}},  # rejected: no id
        ],
    }
    collector.segment("batch", make_request(json.dumps(body), source_ip="203.0.113.77"))
    first, second = stream.events()
    assert first["context"]["ip"] == "198.51.100.0"
    assert second["context"]["ip"] == "203.0.113.0"
    everything = json.dumps(stream.events()) + "".join(f.raw for f in failed.failures)
    assert "198.51.100.23" not in everything
    assert "203.0.113.77" not in everything


def test_kinesis_refusal_is_503_and_refused_events_are_kept(config, failed):
    stream = MemoryStream(refuse={1})
    collector = Collector(config, {"k": "web"}.get, stream, failed, lambda ip: None)
    body = {
        "writeKey": "k",
        "batch": [
            {"type": "track", "userId": "u", "event": "A"},
            {"type": "track", "userId": "u", "event": "B"},
        ],
    }
    result = collector.segment("batch", make_request(json.dumps(body)))
    assert result.answer.status == 503
    assert result.answer.headers["Retry-After"]
    assert [e["event"] for e in stream.events()] == ["A"]
    [kept] = failed.failures
    assert kept.reason == "stream_unavailable"
    assert kept.retryable is True
    assert json.loads(kept.raw)["event"] == "B"


def test_failed_store_down_is_503_so_the_client_retries(config, stream):
    broken = MemoryFailedStore(broken=True)
    collector = Collector(config, {"k": "web"}.get, stream, broken, lambda ip: None)
    body = {"writeKey": "k", "batch": [{"type": "track", "userId": "u"}]}
    result = collector.segment("batch", make_request(json.dumps(body)))
    assert result.answer.status == 503
    assert result.unstored == 1
    result = collector.segment("track", make_request(b"{bad"))
    assert result.answer.status == 503


def test_lone_surrogate_is_rejected_not_crashing(collector, stream, failed):
    body = (
        '{"writeKey": "local-write-key", "userId": "u", "event": "E",'
        ' "properties": {"x": "\\ud800"}}'
    )
    result = collector.segment("track", make_request(body))
    assert result.answer.status == 400
    assert stream.records == []
    assert failed.reasons() == ["invalid_event"]
    failed.failures[0].raw.encode("utf-8")  # storable


def test_numeric_user_id_becomes_a_string(collector, stream):
    body = {"writeKey": "local-write-key", "userId": 12345, "event": "E"}
    collector.segment("track", make_request(json.dumps(body)))
    assert stream.events()[0]["userId"] == "12345"


def test_user_agent_from_header_unless_the_event_has_one(collector, stream):
    body = {
        "writeKey": "local-write-key",
        "batch": [
            {"type": "track", "userId": "u", "event": "A"},
            {"type": "track", "userId": "u", "event": "B", "context": {"userAgent": "okhttp/4"}},
        ],
    }
    collector.segment("batch", make_request(json.dumps(body)))
    assert [e["context"]["userAgent"] for e in stream.events()] == [
        "Mozilla/5.0 (test)",
        "okhttp/4",
    ]


def test_consent_api_becomes_a_consent_event(collector, stream):
    body = {
        "writeKey": "local-write-key",
        "userId": "u1",
        "source": "onetrust",
        "categoryPreferences": {"C0004": False, "personalization": True},
    }
    result = collector.consent(make_request(json.dumps(body), path="/v1/consent"))
    assert result.answer.status == 200
    [event] = stream.events()
    assert event["event"] == "Segment Consent Preference Updated"
    assert event["context"]["consent"]["categoryPreferences"] == {
        "C0004": False,
        "personalization": True,
    }
    assert event["properties"] == {"source": "onetrust"}


@pytest.mark.parametrize("prefs", [None, {}, {"a": "yes"}, ["a"]])
def test_consent_api_rejects_bad_preferences_naming_the_field(collector, failed, prefs):
    body = {"writeKey": "local-write-key", "userId": "u1", "categoryPreferences": prefs}
    result = collector.consent(make_request(json.dumps(body), path="/v1/consent"))
    assert result.answer.status == 400
    assert answer_json(result)["rejected"][0]["field"] == "categoryPreferences"


def test_consent_api_needs_a_write_key(collector):
    body = {"userId": "u1", "categoryPreferences": {"analytics": True}}
    assert collector.consent(make_request(json.dumps(body))).answer.status == 401
