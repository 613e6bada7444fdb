from __future__ import annotations

import json

import pytest

from functions.shared.privacy import anonymize_ip, anonymize_nested_ips, redact_raw


@pytest.mark.parametrize(
    ("raw", "handling", "expected"),
    [
        ("203.0.113.77", "truncate", "203.0.113.0"),
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "truncate", "2001:db8:85a3::"),
        ("203.0.113.77", "drop", None),
        ("not an ip", "truncate", None),
        (None, "truncate", None),
    ],
)
def test_anonymize_ip(raw, handling, expected):
    assert anonymize_ip(raw, handling) == expected


def test_hash_is_salted_and_stable():
    a = anonymize_ip("203.0.113.77", "hash", b"salt")
    assert a == anonymize_ip("203.0.113.77", "hash", b"salt")
    assert a != anonymize_ip("203.0.113.77", "hash", b"pepper")
    assert a.startswith("sha256:") and "203" not in a


def test_redact_raw_removes_ips_and_write_keys_from_json_and_query_strings():
    raw = json.dumps(
        {
            "writeKey": "secret-ish",
            "context": {"ip": "198.51.100.1"},
            "batch": [{"context": {"IP": "1.2.3.4"}}],
        }
    )
    redacted = redact_raw(raw)
    assert "198.51" not in redacted and "1.2.3.4" not in redacted
    assert "secret-ish" not in redacted
    assert "1.2.3.4" not in redact_raw("e=pv&ip=1.2.3.4")
    assert "k-1" not in redact_raw("e=pv&writeKey=k-1")
    assert redact_raw("e=pv&duid=x") == "e=pv&duid=x"


@pytest.mark.parametrize(
    "raw",
    [
        '{"context": {"\\u0069p": "203.0.113.77"}}',  # an escaped key, parseable
        '{"context": {"\\u0069p": "203.0.113.77"}, "broken',  # an escaped key, not parseable
        '{"context": {"ip": "2001:db8:85a3:4d2:8a2e:370:7334:9abc"',  # a cut-off prefix
        "\ufffd\ufffdgarbage 203.0.113.77 more",  # text that is neither JSON nor a query
    ],
)
def test_redact_raw_reaches_ips_in_every_form(raw):
    redacted = redact_raw(raw)
    assert "203.0.113.77" not in redacted
    assert "2001:db8:85a3:4d2" not in redacted


def test_nested_ips_are_anonymized_at_any_depth_and_dropped_when_not_an_address():
    traits = {"ip": "203.0.113.77", "home": {"Ip": "198.51.100.9", "city": "Oslo"}, "x": {"ip": 5}}
    out = anonymize_nested_ips(traits, lambda raw: anonymize_ip(raw, "truncate"))
    assert out == {"ip": "203.0.113.0", "home": {"Ip": "198.51.100.0", "city": "Oslo"}, "x": {}}
