"""The per-destination circuit breaker."""

from __future__ import annotations

import pytest

from functions.webhook.circuit import CircuitBreaker, CircuitBreakers
from functions.webhook.outcomes import Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(cb: CircuitBreaker) -> str:
    # A call, not the property: mypy would keep the first comparison's narrowing.
    return cb.state


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cool_down_s=30, clock=clock)


def test_opens_after_consecutive_failures_only():
    clock = Clock()
    cb = breaker(clock)
    for _ in range(2):
        cb.record_failure()
    cb.record_success()  # resets the count
    cb.record_failure()
    cb.record_failure()
    assert state(cb) == "closed" and cb.allow()
    cb.record_failure()
    assert state(cb) == "open"
    assert not cb.allow()
    assert cb.retry_in() == 30


def test_half_open_lets_one_probe_through():
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.now += 29.5
    assert not cb.allow() and cb.retry_in() == pytest.approx(0.5)
    clock.now += 0.5
    assert state(cb) == "half_open"
    assert cb.allow()  # the probe
    assert not cb.allow()  # nobody else until it reports
    assert cb.retry_in() == 30  # so callers do not spin on a pending probe
    cb.record_success()
    assert state(cb) == "closed" and cb.allow()


def test_a_failed_probe_opens_again():
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.now += 30
    assert cb.allow()
    cb.record_failure()
    assert state(cb) == "open" and cb.retry_in() == 30


def test_a_lost_probe_stops_blocking_after_a_cool_down():
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    clock.now += 30
    assert cb.allow()
    clock.now += 29
    assert not cb.allow()
    clock.now += 1
    assert cb.allow()


def test_outcomes_feed_the_breaker():
    clock = Clock()
    cb = breaker(clock)
    for _ in range(5):
        cb.record(Outcome("failed", "HTTP 400"))  # the payload's fault, not the destination's
    assert state(cb) == "closed"
    for _ in range(3):
        cb.record(Outcome("retry", "HTTP 503"))
    assert state(cb) == "open"
    clock.now += 30
    assert cb.allow()
    cb.record(Outcome("delivered", "HTTP 200"))
    assert state(cb) == "closed"


def test_snapshot_and_restore():
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.record_failure()
    copy = breaker(clock)
    copy.restore(cb.snapshot())
    assert state(copy) == "open" and copy.retry_in() == 30


def test_one_breaker_per_destination():
    breakers = CircuitBreakers(failure_threshold=1, clock=Clock())
    breakers["a"].record_failure()
    assert state(breakers["a"]) == "open"
    assert state(breakers["b"]) == "closed"
    assert breakers["a"] is breakers["a"]
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
