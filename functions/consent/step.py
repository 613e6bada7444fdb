"""The consent step for one Kinesis batch: load, decide in order, commit once.

Reads: one BatchGetItem for the consent state of every identifier in the
batch, and one Query for the erasures made since it was opened. Writes: one
PutRecords for the permitted events, BatchWriteItem for the identifiers whose
consent changed and their audit entries, and one counter item for the whole
batch. Nothing is written per event.

An erasure that runs while a batch is being judged may find its suppression
written over by the batch's save (which read the states before it). The batch
checks, after saving, for erasures of the keys it wrote, and puts their
suppressions back and takes its audit entries back: the erasure holds, and
asked again it finds nothing. The events the batch forwarded were received
before the erasure, so the identity step drops them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from functions.consent.decisions import BOT, ConsentBook
from functions.shared.config import Consent
from functions.shared.events import CanonicalEvent
from functions.shared.failed_events import FailedEvent
from functions.shared.ports import ConsentStatePort, StreamPort
from functions.shared.stream_batch import (
    MALFORMED,
    OrderedBatch,
    StreamItem,
    StreamStep,
    malformed_record,
)
from functions.shared.streams import StreamRecord
from functions.shared.visits import is_bot_visit, visit_context

COUNTER = "consent"  # per-day counter: forwarded, and drops by reason
FORWARDED = "forwarded"
CLOCK_SKEW = timedelta(minutes=1)  # between this function's clock and the API's


@dataclass(kw_only=True)
class ConsentStep(StreamStep):
    policy: Consent
    salt: bytes
    states: ConsentStatePort
    consented: StreamPort
    # Sources whose bot traffic goes on (Enrichment.exclude_bots false); the rest is
    # dropped here, before it can change a consent state, and counted as `bot`.
    keep_bots_from: frozenset[str] = frozenset()

    def open_batch(self, items: list[StreamItem]) -> ConsentBatch:
        return ConsentBatch(self, items)


@dataclass
class BatchOutcome:
    forwarded: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    malformed: int = 0


class ConsentBatch:
    def __init__(self, step: ConsentStep, items: list[StreamItem]) -> None:
        self.step = step
        self.order = OrderedBatch(items)
        self.opened_at = step.clock()  # before the states are read
        self.events: dict[int, CanonicalEvent | str] = {}  # index -> event, or why unreadable
        for index, item in enumerate(items):
            try:
                self.events[index] = CanonicalEvent.model_validate_json(item.data)
            except ValidationError as err:
                self.events[index] = f"not a canonical event: {err.errors()[0]['msg']}"
        keys = ConsentBook({}, step.policy, step.salt)
        wanted = [
            k for e in self.events.values() if not isinstance(e, str) for k in keys.keys_for(e)
        ]
        # Throttling here propagates: every record fails and Lambda retries the batch.
        self.book = ConsentBook(step.states.load(wanted), step.policy, step.salt)
        self.forward: list[tuple[int, StreamRecord]] = []
        self.verdicts: dict[int, str] = {}  # index -> FORWARDED or a drop reason
        self.failures: list[tuple[int, FailedEvent]] = []

    def decide(self, sequence: str) -> None:
        """Record handler: judge one record, in stream order; effects are buffered."""
        index = self.order.check(sequence)
        try:
            event = self.events[index]
            item = self.order.items[index]
            if isinstance(event, str):
                self.failures.append((index, malformed_record("consent", item, event)))
                self.verdicts[index] = MALFORMED
                return
            if is_bot(event) and event.source.name not in self.step.keep_bots_from:
                self.verdicts[index] = BOT
                return
            verdict = self.book.apply(event)
            if verdict.allowed:
                stamped = event.model_copy(update={"consent": verdict.stamp})
                self.forward.append(
                    (index, StreamRecord(item.partition_key, stamped.to_json().encode()))
                )
                self.verdicts[index] = FORWARDED
            else:
                assert verdict.reason is not None
                self.verdicts[index] = verdict.reason
        except Exception:
            self.order.fail_from(index)
            raise

    def commit(self, reported: list[str]) -> tuple[list[dict[str, str]], BatchOutcome]:
        """Write the batch's effects; return the partial batch response and the tally.

        `reported`: sequence numbers the record handler failed (BatchProcessor's answer).
        """
        for sequence in reported:
            self.order.fail_from(self.order.position[sequence])
        to_forward = [(i, r) for i, r in self.forward if self.order.committed(i)]
        refused = self.step.consented.put([r for _, r in to_forward]) if to_forward else []
        if refused:
            self.order.fail_from(to_forward[min(refused)][0])
        # State may reflect records past the cut: re-applying them on the retry
        # resolves to the same decisions, so that is harmless.
        self.step.states.save(list(self.book.states.values()), self.book.audit)
        self._hold_erasures()
        failures = [f for i, f in self.failures if self.order.committed(i)]
        if failures:
            self.step.failed_events.put_each(failures)
        outcome = BatchOutcome()
        for index, verdict in self.verdicts.items():
            if not self.order.committed(index):
                continue
            if verdict == FORWARDED:
                outcome.forwarded += 1
            elif verdict == MALFORMED:
                outcome.malformed += 1
            else:
                outcome.dropped[verdict] += 1
        counts = Counter({FORWARDED: outcome.forwarded, MALFORMED: outcome.malformed})
        counts.update(outcome.dropped)
        day = datetime.now(UTC).date().isoformat()
        self.step.counters.record_batch(COUNTER, day, self.order.batch_id, counts)
        return self.order.failures(), outcome

    def _hold_erasures(self) -> None:
        """Put back what an erasure made since this batch read its states had written,
        if the save just made wrote over it (see the module docstring)."""
        written = {s.key: s for s in self.book.states.values() if s.changed}
        written |= {e.key: self.book.states[e.key] for e in self.book.audit}
        if not written:
            return
        recent = self.step.states.erasures_since(self.opened_at - CLOCK_SKEW)
        # Erasures this batch did not know of when it read the state (one it knew of,
        # and lifted with a fresh opt-in, has the same `erased_at`).
        overrun = {
            key: at
            for key, at in recent.erased_at.items()
            if (state := written.get(key)) is not None
            and (state.erased_at is None or at > state.erased_at)
        }
        if overrun:
            audit = [e for e in self.book.audit if e.key in overrun]
            self.step.states.restore_suppressions(overrun, audit)


def is_bot(event: CanonicalEvent) -> bool:
    """Whether the event is a bot's visit (functions/shared/visits.py)."""
    return is_bot_visit(visit_context(event))
