"""The delivery log: one record per activation x destination, with every attempt.

Written by the webhook step, shown by the read API (`GET /v1/profiles/{ref}/deliveries`,
`beacon deliveries`), erased with the person. Keyed by profile, so a person's
deliveries are one partition: one Query to show, one to erase. An erasure leaves an
`erased` marker in that partition: the webhook step reads it with the log, in the
same BatchGetItem, and neither delivers nor logs anything for an erased profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter

Outcome = Literal[
    "pending",  # attempted, a retry is scheduled
    "delivered",
    "held_out",  # the profile is in the segment's control group: nothing sent, on purpose
    "skipped",  # the destination does not take it (type, segment, consent, identifier)
    "dead_lettered",  # failed for good, or after the last retry: in the dead-letter queue
    "disabled",  # the destination is disabled (410 Gone, or enabled: false)
]
TERMINAL: frozenset[str] = frozenset({"delivered", "held_out", "skipped", "dead_lettered"})


@dataclass
class Attempt:
    at: datetime
    round: int  # 0, then one more per replay from the dead-letter queue
    status: int | None
    latency_ms: float
    reason: str


@dataclass
class DeliveryRecord:
    profile_id: str
    activation_id: str
    destination: str
    activation_type: str
    outcome: Outcome
    reason: str
    updated_at: datetime
    subject: str | None = None  # the segment id or model name
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def round(self) -> int:
        return max((a.round for a in self.attempts), default=0)

    def attempts_in(self, round_: int) -> int:
        return sum(1 for a in self.attempts if a.round == round_)

    def settled(self, round_: int) -> bool:
        """Nothing is left to do in this round: a message for it again is a duplicate."""
        return self.outcome in TERMINAL and self.round >= round_


ATTEMPTS: TypeAdapter[list[Attempt]] = TypeAdapter(list[Attempt])


@dataclass(frozen=True)
class LoadedLog:
    """What the webhook step reads before delivering: the records it asked for, keyed
    (activation, destination), and which of the batch's profiles were erased."""

    records: dict[tuple[str, str], DeliveryRecord] = field(default_factory=dict)
    erased: frozenset[str] = frozenset()


def record_view(record: DeliveryRecord) -> dict[str, Any]:
    """JSON-ready, for the read API."""
    return {
        "activation_id": record.activation_id,
        "destination": record.destination,
        "type": record.activation_type,
        "subject": record.subject,
        "outcome": record.outcome,
        "reason": record.reason,
        "updated_at": record.updated_at.isoformat(),
        "attempts": ATTEMPTS.dump_python(record.attempts, mode="json"),
    }
