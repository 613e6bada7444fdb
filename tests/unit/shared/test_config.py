"""beacon.yaml validation: errors name the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.shared.config import ConfigError, load_config, parse_config

VALID = """\
version: 1
sources:
  - name: web
    write_key_secret: beacon/web
    allowed_origins: [https://shop.example.com]
    snowplow_app_ids: [shop]
  - name: server
    write_key_secret: beacon/server
    local_write_key: other-key
"""


def test_the_shipped_config_is_valid():
    config = load_config(Path("beacon.yaml"))
    assert [s.name for s in config.sources] == ["web", "server"]


def test_valid_config_and_lookups():
    config = parse_config(VALID)
    assert config.allowed_origins == ("https://shop.example.com",)
    assert config.source_for_app_id("shop").name == "web"
    assert config.source_for_app_id("other") is None
    assert config.ingest.ip_handling == "truncate"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID.replace("name: server", "name: Server!"), "line 7: sources[1].name"),
        (
            VALID.replace("[https://shop.example.com]", "[shop.example.com]"),
            "line 5: sources[0].allowed_origins",
        ),
        (VALID + "ingest:\n  ip_handling: nope\n", "line 11: ingest.ip_handling"),
        (
            VALID + "ingest:\n  ip_handling: hash\n",
            "line 10: ingest: ip_handling 'hash' needs ip_hash_salt_secret",
        ),
        (VALID + "surprise: 1\n", "line 10: surprise: Extra inputs are not permitted"),
        (
            VALID.replace("    write_key_secret: beacon/server\n", ""),
            "line 7: sources[1].write_key_secret",
        ),
        (VALID.replace("other-key", "local-write-key"), "duplicate local_write_key"),
        ("version: 1\nsources: []\n", "line 2: sources"),
        ("sources:\n  - name: web\n   bad: indent\n", "not valid YAML"),
        ("- just a list\n", "line 1: the file must be a mapping"),
    ],
)
def test_invalid_config_names_line_and_field(text, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(text, "beacon.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("invalid Beacon configuration beacon.yaml")
