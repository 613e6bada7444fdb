"""The webhook step: deliver each activation to each destination, each on its own schedule.

Messages on the `activations` queue are of two kinds:
  * an activation (from the scoring step): fanned out here into one delivery
    task per destination that takes it; destinations that do not (type,
    segment, consent, holdout) get a `skipped` / `held_out` log record;
  * a delivery task: one activation for one destination, in a `round` (0, then
    one more per replay from the dead-letter queue), due at `not_before`.

Per batch, due tasks are grouped by destination and the destinations are
served side by side (one thread each), so a slow or failing destination never
holds up another; a per-destination circuit breaker stops calling one that is
down and lets a probe through after a cool-down. After an attempt:
  delivered      the log says so; a later copy of the task is a duplicate;
  retry          a new task, hidden until the next attempt is due (the schedule
                 with jitter, or the destination's Retry-After if longer);
  failed / last  to the dead-letter queue with the attempt history;
  410 Gone       the destination is disabled (kept in the deliveries table) and
                 the task goes to the dead-letter queue.
A task whose message cannot be sent on stays failed: SQS delivers it again.
The attempt number comes from the delivery log, not SQS's receive count, so
waiting for an open circuit or a long delay never uses up attempts.

An activation or task of an erased profile (an `erased` marker in its log
partition, read with the log) is neither delivered nor logged: the message is
done, counted as `erased`. A log written while the erasure ran is taken back.
"""

from __future__ import annotations

import contextvars
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from functions.shared.activations import Activation
from functions.shared.deliveries import Attempt, DeliveryRecord
from functions.shared.destinations import AnyDestination
from functions.shared.failed_events import FailedEvent
from functions.shared.ports import DeliveriesPort, FailedRecordsPort, QueuePort
from functions.shared.stream_batch import StreamItem, malformed_record
from functions.webhook.circuit import CircuitBreakers
from functions.webhook.delivery import DeliveryResult
from functions.webhook.outcomes import Outcome, decide
from functions.webhook.presets import destination_accepts

STEP = "webhook"
LOGGED_SKIPS = frozenset({"held_out", "consent_missing", "no_identifier", "disabled"})


class DeliveryTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    destination: str
    round: int = 0
    not_before: AwareDatetime | None = None
    activation: Activation

    @property
    def message_id(self) -> str:
        return f"{self.activation.id}.{self.destination}.{self.round}"


class DeadLetter(BaseModel):
    """What the dead-letter queue holds: the task, why it stopped, and its history."""

    model_config = ConfigDict(frozen=True)

    task: DeliveryTask
    reason: str
    attempts: list[Attempt]
    dead_lettered_at: AwareDatetime


@dataclass(frozen=True)
class Message:
    """An SQS message as the logic sees it."""

    message_id: str
    body: str
    receipt_handle: str = ""


class Deliver(Protocol):
    def __call__(
        self, destination: AnyDestination, activations: Sequence[Activation], secret: str
    ) -> list[DeliveryResult]: ...


@dataclass
class WebhookOutcome:
    failed: set[str] = field(default_factory=set)  # SQS message ids to deliver again
    outcomes: Counter[str] = field(default_factory=Counter)  # "destination:outcome" -> n
    malformed: int = 0
    waiting: int = 0  # tasks received before they were due
    erased: int = 0  # tasks and skips of erased profiles: not delivered, not logged


@dataclass
class _Task:
    task: DeliveryTask
    source: str  # the SQS message it came from
    record: DeliveryRecord


@dataclass
class WebhookStep:
    destinations: Sequence[AnyDestination]
    deliver: Deliver
    secret: Callable[[str], str]  # secret name -> value
    log: DeliveriesPort
    queue: QueuePort  # the activations queue: fan-out and retries
    dead_letters: QueuePort
    failed_events: FailedRecordsPort
    # What `secret` raises when the store fails: that destination waits, the others go on.
    secret_failures: tuple[type[Exception], ...] = ()
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    sleep: Callable[[float], None] = time.sleep

    @property
    def by_name(self) -> dict[str, AnyDestination]:
        return {d.name: d for d in self.destinations}

    def handle(self, messages: Sequence[Message]) -> WebhookOutcome:
        now = self.clock()
        outcome = WebhookOutcome()
        tasks: list[tuple[DeliveryTask, str]] = []
        logged: list[DeliveryRecord] = []
        malformed: list[FailedEvent] = []
        for message in messages:
            parsed = _parse(message.body)
            if isinstance(parsed, str):
                raw = StreamItem(message.message_id, "", message.body.encode())
                malformed.append(malformed_record(STEP, raw, parsed))
            elif isinstance(parsed, Activation):
                fanned, skipped = self._fan_out(parsed, now)
                tasks += [(t, message.message_id) for t in fanned]
                logged += skipped
            elif parsed.not_before is not None and parsed.not_before > now:
                # Hidden again until due: SQS delays are at most 15 minutes.
                wait = parsed.not_before - now
                self.queue.hide(message.receipt_handle, int(wait.total_seconds()) + 1)
                outcome.failed.add(message.message_id)
                outcome.waiting += 1
            else:
                tasks.append((parsed, message.message_id))
        if malformed:
            self.failed_events.put_each(malformed)
            outcome.malformed = len(malformed)

        log = self.log.load(
            [(t.activation.profile_id, t.activation.id, t.destination) for t, _ in tasks],
            sorted({t.activation.profile_id for t, _ in tasks} | {r.profile_id for r in logged}),
        )
        outcome.erased = sum(1 for t, _ in tasks if t.activation.profile_id in log.erased)
        outcome.erased += sum(1 for r in logged if r.profile_id in log.erased)
        tasks = [(t, source) for t, source in tasks if t.activation.profile_id not in log.erased]
        logged = [r for r in logged if r.profile_id not in log.erased]
        records = log.records
        due: list[_Task] = []
        taken: set[tuple[str, str]] = set()
        for t, source in tasks:
            key = (t.activation.id, t.destination)
            # The same activation twice in one batch (a producer's re-send): once is enough,
            # and a batch write may not name one delivery record twice.
            if key in taken or _settled(records, t):
                continue
            taken.add(key)
            due.append(_Task(t, source, records.get(key) or _new_record(t, now)))
        disabled = self.log.disabled(sorted({t.task.destination for t in due}))
        by_destination: dict[str, list[_Task]] = {}
        for item in due:
            by_destination.setdefault(item.task.destination, []).append(item)

        sends: list[tuple[DeliveryTask, str, int]] = []  # task, source message, delay
        letters: list[tuple[DeadLetter, str]] = []
        with ThreadPoolExecutor(max_workers=max(len(by_destination), 1)) as pool:
            # Each task runs in the invocation's context (the local stack binds the
            # function's boto3 session there; a pool thread starts with an empty one).
            attempts = {
                name: pool.submit(
                    contextvars.copy_context().run, self._attempt, name, items, disabled.get(name)
                )
                for name, items in by_destination.items()
            }
            for name, future in attempts.items():
                results = future.result()
                for item in by_destination[name]:
                    self._settle(item, results.get(item.task.activation.id), now, sends, letters)
                    outcome.outcomes[f"{name}:{item.record.outcome}"] += 1
        for record in logged:
            outcome.outcomes[f"{record.destination}:{record.outcome}"] += 1

        unsent = set(
            self.queue.send(
                [(t.message_id, t.model_dump_json().encode()) for t, _, _ in sends],
                {t.message_id: delay for t, _, delay in sends},
            )
        )
        unsent |= set(
            self.dead_letters.send(
                [(d.task.message_id, d.model_dump_json().encode()) for d, _ in letters]
            )
        )
        outcome.failed |= {src for t, src, _ in sends if t.message_id in unsent}
        outcome.failed |= {src for d, src in letters if d.task.message_id in unsent}
        for item in due:
            if item.task.message_id in unsent:
                # Its retry or dead letter is not queued: the source message comes again,
                # and the log must not call the task settled (a dead letter would be lost).
                item.record.outcome = "pending"
        written = [*logged, *(item.record for item in due)]
        self.log.save(written)
        # An erasure that ran meanwhile deleted the log before this write: take it back,
        # or the erasure asked again would find records about the person.
        late = self.log.erased(sorted({r.profile_id for r in written})) if written else set()
        if late:
            self.log.forget([r for r in written if r.profile_id in late])
        return outcome

    # --- fan-out ----------------------------------------------------------------------

    def _fan_out(
        self, activation: Activation, now: datetime
    ) -> tuple[list[DeliveryTask], list[DeliveryRecord]]:
        tasks, skipped = [], []
        for destination in self.destinations:
            reason = destination_accepts(destination, activation)
            if reason is None:
                tasks.append(DeliveryTask(destination=destination.name, activation=activation))
            elif reason.split(":")[0] in LOGGED_SKIPS:
                # Logged: a person someone expected to reach was not. A destination that
                # does not subscribe to this type or segment is simply not involved.
                task = DeliveryTask(destination=destination.name, activation=activation)
                record = _new_record(task, now)
                record.outcome = "held_out" if reason == "held_out" else "skipped"
                record.reason = reason
                skipped.append(record)
        return tasks, skipped

    # --- one destination's attempts ---------------------------------------------------

    def _attempt(
        self, name: str, items: list[_Task], disabled_because: str | None
    ) -> dict[str, tuple[Outcome, DeliveryResult | None]]:
        """Activation id -> what its attempt gave (none attempted when the circuit is open
        or the destination is disabled: the outcome says why)."""
        destination = self.by_name.get(name)
        if destination is None or not destination.enabled or disabled_because:
            why = disabled_because or "destination not in the configuration or not enabled"
            return {i.task.activation.id: (Outcome("disable", why), None) for i in items}
        breaker = self.breakers[name]
        if not breaker.allow():
            wait = Outcome("retry", "circuit open: the destination failed repeatedly")
            return {i.task.activation.id: (wait, None) for i in items}
        activations = [i.task.activation for i in items]
        try:
            secret = self.secret(destination.secret.secret_name)
        except self.secret_failures as err:
            # Not the destination's fault and no attempt made: its tasks wait one retry
            # interval, using no attempt, while the other destinations deliver.
            wait_s = destination.retry[0] if destination.retry else 60.0
            unavailable = Outcome(
                "retry", f"secret unavailable: {type(err).__name__}", None, wait_s
            )
            return {i.task.activation.id: (unavailable, None) for i in items}
        if destination.rate_limit_per_s is None:
            results = self.deliver(destination, activations, secret)
        else:
            # Paced within this function instance: one activation per 1/rate seconds.
            results = []
            for n, activation in enumerate(activations):
                if n:
                    self.sleep(1 / destination.rate_limit_per_s)
                results += self.deliver(destination, [activation], secret)
        answered: dict[str, tuple[Outcome, DeliveryResult | None]] = {}
        for result in results:
            breaker.record(result.outcome)
            for activation_id in result.activation_ids:
                answered[activation_id] = (result.outcome, result)
        return answered

    def _settle(
        self,
        item: _Task,
        answer: tuple[Outcome, DeliveryResult | None] | None,
        now: datetime,
        sends: list[tuple[DeliveryTask, str, int]],
        letters: list[tuple[DeadLetter, str]],
    ) -> None:
        task, record = item.task, item.record
        result_outcome, result = answer or (Outcome("retry", "no answer for this activation"), None)
        if result is None and result_outcome.verdict == "retry":
            # Not attempted (circuit open, secret unavailable): wait, no attempt used.
            wait = max(
                self.breakers[task.destination].retry_in(), result_outcome.retry_after_s or 0
            )
            delay = int(wait) + 1
            sends.append((_later(task, now, delay), item.source, delay))
            record.outcome, record.reason, record.updated_at = "pending", result_outcome.reason, now
            return
        if result is not None:
            record.attempts.append(
                Attempt(
                    at=now,
                    round=task.round,
                    status=result.result.status,
                    latency_ms=round(result.result.latency_ms, 1),
                    reason=result_outcome.reason,
                )
            )
        destination = self.by_name.get(task.destination)
        schedule = destination.retry if destination is not None else ()
        decision = decide(
            result_outcome, max(record.attempts_in(task.round), 1), schedule, self.rng
        )
        record.reason, record.updated_at = decision.reason or result_outcome.reason, now
        if decision.action == "done":
            record.outcome = "delivered"
        elif decision.action == "retry":
            delay = int(decision.delay_s or 0)
            sends.append((_later(task, now, delay), item.source, delay))
            record.outcome = "pending"
        else:
            if decision.action == "disable" and result is not None:
                self.log.disable(task.destination, result_outcome.reason, now)
            record.outcome = "disabled" if decision.action == "disable" else "dead_lettered"
            letter = DeadLetter(
                task=task, reason=record.reason, attempts=record.attempts, dead_lettered_at=now
            )
            letters.append((letter, item.source))


def _later(task: DeliveryTask, now: datetime, delay_s: int) -> DeliveryTask:
    return task.model_copy(update={"not_before": now + timedelta(seconds=delay_s)})


def _settled(records: Mapping[tuple[str, str], DeliveryRecord], task: DeliveryTask) -> bool:
    record = records.get((task.activation.id, task.destination))
    return record is not None and record.settled(task.round)


def _new_record(task: DeliveryTask, now: datetime) -> DeliveryRecord:
    activation = task.activation
    return DeliveryRecord(
        profile_id=activation.profile_id,
        activation_id=activation.id,
        destination=task.destination,
        activation_type=activation.type,
        subject=activation.segment_id or activation.model,
        outcome="pending",
        reason="",
        updated_at=now,
    )


def _parse(body: str) -> Activation | DeliveryTask | str:
    """The message (a task carries its activation under `activation`), or why not."""
    try:
        data: Any = json.loads(body)
        if isinstance(data, dict) and "activation" in data:
            return DeliveryTask.model_validate(data)
        return Activation.model_validate(data)
    except (ValueError, ValidationError) as err:
        return str(err)
