"""What an HTTP answer means for a delivery, and when to try again.

| answer                                  | verdict                                     |
|-----------------------------------------|---------------------------------------------|
| 2xx                                     | `delivered`                                 |
| 408, 429, 5xx, timeout, network, DNS    | `retry`                                     |
| 410 Gone                                | `disable`: terminal, and stop sending there |
| 3xx (redirects are not followed)        | `failed`: terminal, to the dead-letter queue |
| any other 4xx, a refused (SSRF) address | `failed`                                    |

A `retry` waits for the destination's schedule (with jitter), or longer when
the answer's `Retry-After` asks for it; after the schedule's last delay the
activation is dead-lettered.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from functions.shared.destinations import MAX_RETRY_DELAY_S
from functions.webhook.sender import HttpResult

Verdict = Literal["delivered", "retry", "failed", "disable"]
JITTER = 0.2  # ±20 %: spreads the retries of many activations failed by one outage
RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str  # short and free of personal data: it goes into the delivery log
    status: int | None = None
    retry_after_s: float | None = None  # what the destination asked for, if anything


def classify(result: HttpResult, now: datetime | None = None) -> Outcome:
    status = result.status
    if status is None:
        kind = result.error_kind or "network"
        verdict: Verdict = "failed" if kind == "blocked" else "retry"
        return Outcome(verdict, f"{kind}: {result.error or 'no answer'}")
    if 200 <= status < 300:
        return Outcome("delivered", f"HTTP {status}", status)
    if 300 <= status < 400:
        location = result.headers.get("location", "no Location")
        return Outcome("failed", f"HTTP {status} redirect not followed ({location})", status)
    if status == 410:
        return Outcome("disable", "HTTP 410 Gone: the destination asked to stop", status)
    if status in RETRYABLE_4XX or status >= 500:
        retry_after = parse_retry_after(result.headers.get("retry-after"), now)
        return Outcome("retry", f"HTTP {status}", status, retry_after)
    if 400 <= status < 500:
        return Outcome("failed", f"HTTP {status}", status)
    return Outcome("retry", f"unexpected HTTP {status}", status)  # 1xx as a final answer


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from `Retry-After` (delay-seconds or an HTTP-date); None if absent or invalid."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP-dates are GMT
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def next_attempt_delay(
    attempt: int,
    schedule: Sequence[float],
    rng: random.Random,
    retry_after_s: float | None = None,
    *,
    jitter: float = JITTER,
) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based); None: dead-letter.

    The schedule's delay for this attempt, moved by up to ±`jitter`, or the
    destination's Retry-After if that is longer; never above SQS's 12 h.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    if attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    delay = base * (1 + rng.uniform(-jitter, jitter))
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return min(delay, float(MAX_RETRY_DELAY_S))


@dataclass(frozen=True)
class Decision:
    """What the handler does with the activation after one attempt."""

    action: Literal["done", "retry", "dead_letter", "disable"]
    delay_s: float | None = None  # for retry: how long to hide the message
    reason: str = ""


def decide(
    outcome: Outcome, attempt: int, schedule: Sequence[float], rng: random.Random
) -> Decision:
    """The next step after attempt number `attempt` (1-based) ended with `outcome`."""
    if outcome.verdict == "delivered":
        return Decision("done", reason=outcome.reason)
    if outcome.verdict == "disable":
        return Decision("disable", reason=outcome.reason)
    if outcome.verdict == "failed":
        return Decision("dead_letter", reason=outcome.reason)
    delay = next_attempt_delay(attempt, schedule, rng, outcome.retry_after_s)
    if delay is None:
        return Decision("dead_letter", reason=f"{outcome.reason}; gave up after {attempt} attempts")
    return Decision("retry", delay, outcome.reason)
