"""A circuit breaker per destination: stop calling one that keeps failing.

closed ──(N consecutive failures)──▶ open ──(cool-down elapsed)──▶ half-open
half-open lets one probe through: success closes the circuit, failure opens it
again for another cool-down. While open, the handler should put the activation
back with `retry_in()` as its delay, without counting an attempt: the
destination was not tried.

Only failures that say the destination is unwell count (`retry` verdicts:
5xx, 408, 429, timeouts, network errors); a 4xx about one payload does not.
State lives in the Lambda container, so each concurrent container has its own
breaker; `snapshot`/`restore` let the caller keep it elsewhere if it wants.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

from functions.webhook.outcomes import Outcome

State = Literal["closed", "open", "half_open"]
FAILURE_THRESHOLD = 5
COOL_DOWN_S = 30.0


@dataclass(frozen=True)
class BreakerSnapshot:
    state: State
    consecutive_failures: int
    opened_at: float | None


class BreakerSettings(TypedDict, total=False):
    """`CircuitBreaker`'s settings, as `CircuitBreakers` hands them to each breaker."""

    failure_threshold: int
    cool_down_s: float
    clock: Callable[[], float]


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        cool_down_s: float = COOL_DOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cool_down_s <= 0:
            raise ValueError("failure_threshold >= 1 and cool_down_s > 0 are required")
        self.failure_threshold = failure_threshold
        self.cool_down_s = cool_down_s
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None

    @property
    def state(self) -> State:
        if self._state == "open" and self.retry_in() == 0:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        """May a request go out now? In half-open, True once until the probe's result."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_pending():
            self._state = "half_open"
            self._probe_at = self._clock()
            return True
        return False

    def _probe_pending(self) -> bool:
        # A probe whose result never came (the container died) stops blocking
        # after one more cool-down.
        return self._probe_at is not None and self._clock() - self._probe_at < self.cool_down_s

    def retry_in(self) -> float:
        """Seconds until `allow` can say yes (0 when closed or a probe is due)."""
        if self._state == "half_open" and self._probe_at is not None:
            return max(0.0, self._probe_at + self.cool_down_s - self._clock())
        if self._state != "open" or self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cool_down_s - self._clock())

    def record_success(self) -> None:
        self._state = "closed"
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._state = "open"
            self._opened_at = self._clock()
            self._probe_at = None

    def record(self, outcome: Outcome) -> None:
        """Count an attempt's outcome: delivered closes, retry-worthy failures count."""
        if outcome.verdict == "delivered":
            self.record_success()
        elif outcome.verdict == "retry":
            self.record_failure()
        else:
            # A terminal 4xx is about the payload, not the destination's health: it answered.
            self.record_success()

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(self._state, self._failures, self._opened_at)

    def restore(self, snapshot: BreakerSnapshot) -> None:
        self._state = snapshot.state
        self._failures = snapshot.consecutive_failures
        self._opened_at = snapshot.opened_at
        self._probe_at = None


class CircuitBreakers:
    """One breaker per destination name, created on first use."""

    def __init__(self, **settings: Unpack[BreakerSettings]) -> None:
        self._settings = settings  # each breaker's
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, destination: str) -> CircuitBreaker:
        breaker = self._breakers.get(destination)
        if breaker is None:
            breaker = CircuitBreaker(**self._settings)
            self._breakers[destination] = breaker
        return breaker
