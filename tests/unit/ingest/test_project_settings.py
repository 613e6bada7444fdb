"""The settings analytics.js fetches at load point it back at Beacon."""

from __future__ import annotations

import pytest

from functions.ingest.project_settings import project_settings, served_host, served_protocol


def test_segment_io_is_beacon_and_nothing_else_is_loaded() -> None:
    settings = project_settings("k", "beacon.example.com", "https")
    segment = settings["integrations"]["Segment.io"]
    assert segment["apiHost"] == "beacon.example.com/v1" and segment["protocol"] == "https"
    assert segment["apiKey"] == "k"
    assert list(settings["integrations"]) == ["Segment.io"]
    assert settings["metrics"]["sampleRate"] == 0  # no telemetry to Segment
    assert settings["remotePlugins"] == []


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8080", True),
        ("api.example.com", True),
        ("[::1]:8080", True),
        ("evil.example/path", False),
        ("a b", False),
        (None, False),
        ("x" * 300, False),
    ],
)
def test_only_a_host_is_taken_from_the_host_header(host: str | None, ok: bool) -> None:
    assert (served_host(host) is not None) is ok


def test_plain_http_only_when_the_gateway_says_so() -> None:
    assert served_protocol(None) == "https"
    assert served_protocol("http") == "http"
    assert served_protocol("https") == "https"
