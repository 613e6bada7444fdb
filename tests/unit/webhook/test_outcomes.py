"""Status classification, Retry-After and the retry schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from functions.shared.destinations import DEFAULT_RETRY_SCHEDULE
from functions.webhook.outcomes import (
    Outcome,
    classify,
    decide,
    next_attempt_delay,
    parse_retry_after,
)
from functions.webhook.sender import HttpResult

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def answer(status: int, **headers: str) -> HttpResult:
    return HttpResult(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def failure(kind: str, error: str) -> HttpResult:
    return HttpResult(None, error=error, error_kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (answer(200), "delivered"),
        (answer(201), "delivered"),
        (answer(204), "delivered"),
        (answer(301, location="https://elsewhere.example.com"), "failed"),
        (answer(400), "failed"),
        (answer(401), "failed"),
        (answer(404), "failed"),
        (answer(408), "retry"),
        (answer(409), "failed"),
        (answer(410), "disable"),
        (answer(413), "failed"),
        (answer(429), "retry"),
        (answer(500), "retry"),
        (answer(502), "retry"),
        (answer(503), "retry"),
        (failure("timeout", "timed out (response) after 10 s"), "retry"),
        (failure("connection_refused", "connection refused: [Errno 111]"), "retry"),
        (failure("dns", "cannot resolve hooks.example.com"), "retry"),
        (failure("tls", "TLS: certificate verify failed"), "retry"),
        (failure("network", "RemoteDisconnected"), "retry"),
        (failure("blocked", "hooks.example.com resolves to 10.0.0.1: private"), "failed"),
    ],
)
def test_classification_table(result, verdict):
    assert classify(result, NOW).verdict == verdict


def test_reasons_name_what_happened():
    assert classify(answer(301, location="https://new.example.com/x"), NOW).reason == (
        "HTTP 301 redirect not followed (https://new.example.com/x)"
    )
    assert classify(failure("timeout", "timed out"), NOW).reason == "timeout: timed out"
    assert classify(answer(503), NOW).status == 503


def test_retry_after_is_kept_on_retryable_answers():
    assert classify(answer(429, retry_after="2"), NOW).retry_after_s == 2
    assert (
        classify(answer(503, retry_after="Sun, 01 Mar 2026 12:01:00 GMT"), NOW).retry_after_s == 60
    )
    assert classify(answer(400, retry_after="2"), NOW).retry_after_s is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        ("120", 120),
        (" 7 ", 7),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30),
        ("Sunday, 01-Mar-26 12:00:30 GMT", 30),  # RFC 850, still allowed by HTTP
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0),  # in the past: now
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


def test_schedule_without_jitter_is_the_configured_one():
    rng = random.Random(1)
    delays = [
        next_attempt_delay(n, DEFAULT_RETRY_SCHEDULE, rng, jitter=0)
        for n in range(1, len(DEFAULT_RETRY_SCHEDULE) + 2)
    ]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]  # then dead-letter


def test_jitter_stays_within_20_percent_and_is_deterministic():
    for attempt, base in enumerate(DEFAULT_RETRY_SCHEDULE, start=1):
        rng = random.Random(attempt)
        delays = [next_attempt_delay(attempt, DEFAULT_RETRY_SCHEDULE, rng) for _ in range(500)]
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
        assert max(d for d in delays if d) - min(d for d in delays if d) > base * 0.3  # spread
    first = [next_attempt_delay(2, [300], random.Random(7)) for _ in range(3)]
    again = [next_attempt_delay(2, [300], random.Random(7)) for _ in range(3)]
    assert first == again


def test_retry_after_wins_when_longer_and_is_capped():
    rng = random.Random(3)
    assert next_attempt_delay(1, [5], rng, retry_after_s=2) <= 6  # type: ignore[operator]
    assert next_attempt_delay(1, [5], rng, retry_after_s=90) == 90
    assert next_attempt_delay(1, [5], rng, retry_after_s=10**9) == 12 * 3600
    with pytest.raises(ValueError, match="1-based"):
        next_attempt_delay(0, [5], rng)


def test_decide():
    schedule = (5, 300)
    rng = random.Random(0)
    assert decide(Outcome("delivered", "HTTP 200"), 1, schedule, rng).action == "done"
    assert decide(Outcome("disable", "HTTP 410"), 1, schedule, rng).action == "disable"
    assert decide(Outcome("failed", "HTTP 400"), 1, schedule, rng).action == "dead_letter"
    retry = decide(Outcome("retry", "HTTP 503", 503, 30.0), 1, schedule, rng)
    assert retry.action == "retry" and retry.delay_s == 30
    last = decide(Outcome("retry", "HTTP 503"), 3, schedule, rng)
    assert last.action == "dead_letter"
    assert last.reason == "HTTP 503; gave up after 3 attempts"
