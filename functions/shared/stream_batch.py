"""In-order processing of one Kinesis batch, for steps whose effects must not be applied twice.

Lambda resumes a Kinesis batch from the first record reported as failed. If a
step kept processing past a failure, the records after it would be applied
now and again on the retry. So the first failure halts the batch: every later
record is reported failed too, and only the prefix before it is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from pydantic import ValidationError

from functions.shared.failed_events import FailedEvent
from functions.shared.observability import logger, metrics
from functions.shared.ports import CountersPort, FailedRecordsPort

Outcome = TypeVar("Outcome", covariant=True)
Read = TypeVar("Read")


@dataclass(frozen=True)
class StreamItem:
    """A Kinesis record as the steps' logic sees it."""

    sequence: str
    partition_key: str
    data: bytes
    shard: str = ""


class Halted(RuntimeError):
    """An earlier record of this batch failed; this one waits for the retry, in order."""


class OrderedBatch:
    """Tracks which prefix of a batch succeeded."""

    def __init__(self, items: list[StreamItem]) -> None:
        self.items = items
        self.position = {item.sequence: index for index, item in enumerate(items)}
        self.cut: int | None = None  # index of the first record that did not succeed

    def check(self, sequence: str) -> int:
        """The record's index; raises Halted once the batch has been cut before it."""
        index = self.position[sequence]
        if self.cut is not None and index >= self.cut:
            raise Halted(f"record {sequence} waits: an earlier record of the batch failed")
        return index

    def fail_from(self, index: int) -> None:
        self.cut = index if self.cut is None else min(self.cut, index)

    def committed(self, index: int) -> bool:
        return self.cut is None or index < self.cut

    def failures(self) -> list[dict[str, str]]:
        """The partial batch response: every record from the cut on."""
        if self.cut is None:
            return []
        return [{"itemIdentifier": item.sequence} for item in self.items[self.cut :]]

    @property
    def batch_id(self) -> str:
        """Stable across a retry of the same records (used to make counters idempotent)."""
        if not self.items:
            return "empty"
        first, last = self.items[0], self.items[-1]
        return f"{first.shard}#{first.sequence}#{last.sequence}"


MALFORMED = "malformed_record"


def malformed_record(step: str, item: StreamItem, why: str) -> FailedEvent:
    """A stream record a step cannot read, kept whole in failed events with the reason."""
    return FailedEvent(
        failed_at=datetime.now(UTC),
        step=step,
        reason=MALFORMED,
        message=why,
        raw=item.data.decode("utf-8", "backslashreplace"),
        request_id=item.sequence,
    )


@dataclass(kw_only=True)
class StreamStep:
    """What every step fed by a Kinesis stream holds besides its own ports: where the
    records it cannot use go, its per-day counters, and its clock (tests set it)."""

    failed_events: FailedRecordsPort
    counters: CountersPort
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def readable_records(
    step: str,
    items: Sequence[StreamItem],
    parse: Callable[[bytes], Read],
    failed_events: FailedRecordsPort,
) -> tuple[list[tuple[StreamItem, Read]], int]:
    """Each item `parse` can read, with what it read; the others go to failed events
    (one write for them all). Returns the read items and how many were malformed."""
    read: list[tuple[StreamItem, Read]] = []
    malformed: list[FailedEvent] = []
    for item in items:
        try:
            read.append((item, parse(item.data)))
        except ValidationError as err:
            malformed.append(malformed_record(step, item, str(err)))
    if malformed:
        failed_events.put_each(malformed)
    return read, len(malformed)


def stream_items(event: dict[str, Any]) -> list[StreamItem]:
    """The records of a Lambda Kinesis event, decoded."""
    items = []
    for raw in event.get("Records", []):
        record = KinesisStreamRecord(raw)
        items.append(
            StreamItem(
                sequence=record.kinesis.sequence_number,
                partition_key=record.kinesis.partition_key,
                data=record.kinesis.data_as_bytes(),
                shard=record.event_id.split(":", 1)[0],
            )
        )
    return items


def all_failed(items: list[StreamItem]) -> dict[str, Any]:
    """A partial batch response failing every record (Lambda retries them all)."""
    return {"batchItemFailures": [{"itemIdentifier": i.sequence} for i in items]}


class OrderedStep(Protocol[Outcome]):
    """One opened batch of a stream step: records judged in order, effects committed once."""

    def decide(self, sequence: str) -> None: ...
    def commit(self, reported: list[str]) -> tuple[list[dict[str, str]], Outcome]: ...


def run_ordered_batch(
    event: dict[str, Any],
    context: Any,
    processor: BatchProcessor,
    open_batch: Callable[[list[StreamItem]], OrderedStep[Outcome]],
    retry_on: tuple[type[Exception], ...],
) -> tuple[dict[str, Any], Outcome | None]:
    """The handler loop every ordered stream step shares.

    Opens the batch (batched reads), lets Powertools' BatchProcessor run the
    record handler over the records in order, and commits. A storage fault in
    `retry_on` (throttling, a lost race) is reported, not raised: every record
    goes back in `batchItemFailures`, so Lambda retries them without bisecting a
    healthy batch. Returns the partial batch response and the step's outcome
    (None when the batch was handed back).
    """
    items = stream_items(event)
    try:
        batch = open_batch(items)
        response = process_partial_response(
            event=event,
            record_handler=lambda record: batch.decide(record.kinesis.sequence_number),
            processor=processor,
            context=context,
        )
        reported = [str(f["itemIdentifier"]) for f in response.get("batchItemFailures", [])]
        failures, outcome = batch.commit(reported)
    except retry_on as err:
        logger.warning("the batch is handed back for a retry", extra={"error": str(err)})
        metrics.add_metric(name="BatchRetried", unit=MetricUnit.Count, value=1)
        return all_failed(items), None
    return {"batchItemFailures": failures}, outcome


class RetryRecord(RuntimeError):
    """This record's effect was not committed; Lambda delivers it again."""


class WholeBatchOutcome(Protocol):
    @property
    def failed(self) -> set[str]:
        """Sequence numbers of the records whose effects were not committed."""
        ...


Whole = TypeVar("Whole", bound=WholeBatchOutcome)


def run_whole_batch(
    event: dict[str, Any],
    context: Any,
    processor: BatchProcessor,
    update: Callable[[list[StreamItem], str], Whole],
    retry_on: tuple[type[Exception], ...],
) -> tuple[dict[str, Any], Whole | None]:
    """The handler loop of steps whose effects are idempotent per record (profiles keep
    watermarks), so a batch need not halt at its first failure.

    `update` handles the batch; Powertools' BatchProcessor then reports exactly the
    records its outcome's `failed` names. A storage fault in `retry_on` while reading
    hands every record back. Returns the response and the outcome (None if handed back).
    """
    items = stream_items(event)
    try:
        outcome = update(items, OrderedBatch(items).batch_id)
    except retry_on as err:
        logger.warning("the batch is handed back for a retry", extra={"error": str(err)})
        metrics.add_metric(name="BatchRetried", unit=MetricUnit.Count, value=1)
        return all_failed(items), None
    every = [i.sequence for i in items]
    return report_failed(event, context, processor, every, outcome.failed), outcome


def report_failed(
    event: dict[str, Any],
    context: Any,
    processor: BatchProcessor,
    every: list[str],
    failed: set[str],
) -> dict[str, Any]:
    """The partial batch response naming exactly `failed` among `every` record id
    (Kinesis sequence numbers or SQS message ids), through Powertools' BatchProcessor."""
    if every and failed >= set(every):
        # Powertools raises when every record failed.
        return {"batchItemFailures": [{"itemIdentifier": i} for i in every]}

    def check(record: Any) -> None:
        record_id = (
            record.kinesis.sequence_number
            if isinstance(record, KinesisStreamRecord)
            else record.message_id
        )
        if record_id in failed:
            raise RetryRecord(f"record {record_id} must be retried")

    response = process_partial_response(
        event=event, record_handler=check, processor=processor, context=context
    )
    return dict(response)
