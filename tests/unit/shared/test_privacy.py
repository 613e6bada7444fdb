from __future__ import annotations

import json

import pytest

from functions.shared.privacy import anonymize_ip, scrub_ip


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


def test_scrub_ip_from_json_and_query_strings():
    raw = json.dumps({"context": {"ip": "198.51.100.1"}, "batch": [{"context": {"ip": "1.2.3.4"}}]})
    assert "198.51" not in scrub_ip(raw) and "1.2.3.4" not in scrub_ip(raw)
    assert "1.2.3.4" not in scrub_ip("e=pv&ip=1.2.3.4")
    assert scrub_ip("e=pv&duid=x") == "e=pv&duid=x"
    assert scrub_ip("base64:AAAA") == "base64:AAAA"
