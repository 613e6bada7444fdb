"""The canonical event model and Segment's clock-skew rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from functions.shared.events import CanonicalEvent, corrected_timestamp, derived_message_id

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(**fields):
    base = {
        "messageId": "m",
        "type": "track",
        "event": "E",
        "userId": "u",
        "source": {"name": "web", "protocol": "segment"},
        "timestamp": NOW,
        "receivedAt": NOW,
    }
    return CanonicalEvent.model_validate({**base, **fields})


def test_round_trip_is_camel_case_and_lossless():
    original = event(
        properties={"a": [1, {"b": None}]},
        context={"page": {"url": "u"}, "custom": 1},
        channel="server",
    )
    again = CanonicalEvent.model_validate_json(original.to_json())
    assert again == original
    assert '"messageId":"m"' in original.to_json()
    assert again.model_extra == {"channel": "server"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"userId": None}, "userId or anonymousId is required"),
        ({"event": None}, "event is required for a track call"),
        ({"type": "alias"}, "previousId and userId are required"),
        ({"type": "group"}, "groupId is required"),
        ({"type": "purchase"}, "type"),
        ({"userId": True}, "must be a string"),
        ({"messageId": ""}, "message_id"),
    ],
)
def test_rules_per_type(fields, message):
    with pytest.raises(ValidationError) as err:
        event(**fields)
    assert message in str(err.value).replace("messageId", "message_id") or message in str(err.value)


def test_blank_ids_count_as_missing():
    assert event(anonymousId="  ").anonymous_id is None


def test_timestamps_are_utc():
    local = datetime(2026, 1, 1, 2, tzinfo=__import__("datetime").timezone(timedelta(hours=2)))
    assert event(timestamp=local).timestamp == NOW


def test_clock_skew_rule():
    received = NOW
    sent = NOW + timedelta(hours=1, seconds=10)
    original = NOW + timedelta(hours=1, seconds=5)
    assert corrected_timestamp(received, sent, original) == NOW - timedelta(seconds=5)
    assert corrected_timestamp(received, None, original) == original
    assert corrected_timestamp(received, sent, None) == received


def test_derived_message_id_ignores_sent_at_and_write_key():
    a = derived_message_id("web", {"event": "E", "sentAt": "1", "writeKey": "k"})
    b = derived_message_id("web", {"event": "E", "sentAt": "2"})
    assert a == b
    assert a != derived_message_id("server", {"event": "E"})
