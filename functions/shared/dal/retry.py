"""Exponential backoff with full jitter, for the storage adapters' batch calls.

DynamoDB's batch calls, Kinesis PutRecords and SQS SendMessageBatch take part
of a request and may refuse the rest (throttling), or refuse it whole. An
adapter sends what is left again after a random pause of up to
`base_delay_s * 2**attempt` (AWS's "full jitter"), at most `max_attempts` calls
in all; what is still left after the last goes back to its caller, which must
not acknowledge it. The one loop for `dynamo.py`, `kinesis.py` and `sqs.py`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sized
from typing import TypedDict, TypeVar

Pending = TypeVar("Pending", bound=Sized)
BASE_DELAY_S = 0.05


class RetryOptions(TypedDict, total=False):
    """What an adapter's constructor passes on to `Retrying` (all optional)."""

    max_attempts: int
    base_delay_s: float
    sleep: Callable[[float], None]


class Retrying:
    """An adapter that sends what a call left over again, with backoff.

    `max_attempts`, `base_delay_s` and `sleep` stay plain attributes: tests make
    `sleep` instant and read `max_attempts`."""

    def __init__(
        self,
        *,
        max_attempts: int = 4,
        base_delay_s: float = BASE_DELAY_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.sleep = sleep

    def retry_pending(
        self, pending: Pending, attempt: Callable[[Pending, int], Pending]
    ) -> Pending:
        """Call `attempt(pending, n)` until nothing is pending or `max_attempts` calls were
        made, pausing before every call but the first; return what is still pending.

        `attempt` makes one call and returns what it left over: all of `pending` when
        the call was refused whole in a way worth retrying (it raises otherwise)."""
        for n in range(self.max_attempts):
            if not len(pending):
                break
            if n:
                self.sleep(random.uniform(0, self.base_delay_s * 2**n))  # noqa: S311
            pending = attempt(pending, n)
        return pending
