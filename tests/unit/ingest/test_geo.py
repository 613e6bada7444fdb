"""Geolocation from the client's IP, on MaxMind's own test databases.

The databases are MaxMind's published test data (github.com/maxmind/MaxMind-DB,
test-data/, MIT or Apache-2.0): real MaxMind-format files with known answers.
"""

from __future__ import annotations

import base64
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.ingest.collector import Collector
from functions.ingest.geo import GeoDatabaseError, GeoLocator
from functions.shared.config import load_config
from functions.shared.enrichment_config import Enrichment
from functions.shared.privacy import anonymize_ip

from .conftest import make_request

FIXTURES = Path(__file__).parents[2] / "fixtures" / "geoip"
CITY = FIXTURES / "GeoIP2-City-Test.mmdb"
COUNTRY = FIXTURES / "GeoLite2-Country-Test.mmdb"


@pytest.fixture(scope="module")
def city() -> GeoLocator:
    return GeoLocator(CITY)


def test_a_city_database_answers_city_level_and_no_finer(city: GeoLocator) -> None:
    assert city.locate("81.2.69.142") == {
        "country": "GB",
        "continent": "EU",
        "region": "ENG",
        "region_name": "England",
        "city": "London",
        "timezone": "Europe/London",
        "latitude": 51.5,  # 51.5142 in the database: rounded to about 11 km
        "longitude": -0.1,
    }
    # The database knows this one's postal code (98354) and accuracy radius: not kept.
    milton = city.locate("216.160.83.56")
    assert milton is not None
    assert (milton["country"], milton["region"], milton["city"]) == ("US", "WA", "Milton")
    assert "postal_code" not in milton and "accuracy_radius" not in milton


def test_ipv6_and_a_place_known_only_by_country(city: GeoLocator) -> None:
    assert city.locate("2001:218::1") == {
        "country": "JP",
        "continent": "AS",
        "timezone": "Asia/Tokyo",
        "latitude": 35.7,
        "longitude": 139.8,
    }


def test_a_country_database_answers_the_country() -> None:
    assert GeoLocator(COUNTRY).locate("81.2.69.142") == {"country": "GB", "continent": "EU"}


@pytest.mark.parametrize(
    "ip", [None, "", "10.0.0.1", "127.0.0.1", "192.168.1.20", "::1", "1.1.1.1", "not an ip"]
)
def test_no_place_for_private_unknown_or_malformed_addresses(city: GeoLocator, ip: str) -> None:
    assert city.locate(ip) is None


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "GeoLite2-City.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(GeoDatabaseError, match=r"GeoLite2-City\.mmdb"):
        GeoLocator(bad)
    with pytest.raises(GeoDatabaseError, match=r"missing\.mmdb"):
        GeoLocator(tmp_path / "missing.mmdb")


@given(st.one_of(st.ip_addresses().map(str), st.text(max_size=60)))
def test_any_address_or_text_gets_a_bounded_answer_or_none(ip: str) -> None:
    located = GeoLocator(CITY).locate(ip)
    assert located is None or (
        set(located)
        <= {"country", "continent", "region", "region_name", "city", "timezone", "latitude"}
        | {"longitude"}
        and all(not isinstance(v, str) or len(v) <= 100 for v in located.values())
    )


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_ingest_places_the_event_from_the_raw_ip_and_keeps_only_the_truncated_one(
    stream: Any, failed: Any
) -> None:
    config = load_config("beacon.yaml")
    # The database path is relative to the configuration file's folder.
    enrichment = Enrichment(geoip_database="GeoIP2-City-Test.mmdb")
    configured = config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"enrichment": enrichment})}
    )
    collector = Collector(
        config=configured,
        source_for_write_key={"local-write-key": "web"}.get,
        events=stream,
        failed_events=failed,
        anonymize_ip=partial(anonymize_ip, handling="truncate"),
        config_dir=FIXTURES,
    )
    visit = {"anonymousId": "a1", "name": "Home", "context": {"page": {"url": "https://x.test/"}}}
    batch = {
        "batch": [
            {**visit, "type": "page"},  # from the request's address
            # A server sending on a visitor's behalf: the visitor's address is placed.
            {**visit, "type": "page", "context": {"ip": "89.160.20.112"}},
            {**visit, "type": "page", "context": {"ip": "10.1.2.3"}},  # private: no place
        ]
    }
    answer = collector.segment(
        "batch",
        make_request(json.dumps(batch), _basic("local-write-key"), source_ip="81.2.69.142"),
    )
    assert answer.answer.status == 200
    london, linkoping, private = stream.events()
    assert london["context"]["enrichment"]["geo"]["city"] == "London"
    assert linkoping["context"]["enrichment"]["geo"]["city"] == "Linköping"
    assert "geo" not in private["context"].get("enrichment", {})
    assert [e["context"]["ip"] for e in (london, linkoping)] == ["81.2.69.0", "89.160.20.0"]
    written = json.dumps(stream.events())
    assert "81.2.69.142" not in written and "89.160.20.112" not in written


def test_a_configured_database_that_is_missing_fails_at_start(stream: Any, failed: Any) -> None:
    config = load_config("beacon.yaml")
    enrichment = Enrichment(geoip_database="GeoLite2-City.mmdb")
    configured = config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"enrichment": enrichment})}
    )
    with pytest.raises(GeoDatabaseError, match=r"GeoLite2-City\.mmdb"):
        Collector(configured, {}.get, stream, failed, lambda ip: None, config_dir=FIXTURES)


@pytest.mark.parametrize("path", ["/etc/GeoLite2-City.mmdb", "../GeoLite2-City.mmdb", "a/../../x"])
def test_the_database_path_stays_under_the_configuration(path: str) -> None:
    with pytest.raises(ValueError, match=r"relative to beacon\.yaml"):
        Enrichment(geoip_database=path)
