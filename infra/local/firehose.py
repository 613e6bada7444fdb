"""The archive's delivery stream, played locally the way Kinesis Data Firehose plays it.

Deployed, a Firehose delivery stream reads the `resolved` stream and writes
Parquet to the archive bucket (infra/constructs/archive.py). Locally one
reader per shard does the same with the same rules (`functions/shared/archive.py`:
rows, partitions, file names; `archive_parquet.py`: the bytes): it buffers
records until the buffer is big or old enough (the wiring table's
`local_buffer_*`), writes one Parquet object per table and day, and only then
records the last sequence number it wrote (in moto, as the pollers do:
`checkpoints.py`). Killed at any point, it starts again after that position:
what was buffered is read again from the stream (nothing lost), and a file
written but not yet checkpointed is written again under the same name
(replaced, not doubled). A failed write is retried with backoff; the position
never moves past what is not in S3.

It also drops the rows of people erased since (the erasure requests in the
bucket), so an event on its way when an erasure ran does not land after its
rewrite.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.api import handler as api_handler
from functions.shared.archive import (
    ArchiveBuffer,
    BufferRule,
    StreamPosition,
    archive_row,
    by_partition,
    keep,
    object_key,
)
from functions.shared.archive_parquet import encode
from functions.shared.dal.archive_store import ArchivedHistory, ArchiveStore
from functions.shared.observability import logger
from functions.shared.ports import EventArchive
from functions.shared.resolved import parse_record
from infra.local.aws import LocalAws
from infra.local.checkpoints import Checkpoints
from infra.local.doorbell import Doorbell
from infra.local.pollers import _Waiting
from infra.topology import DeliveryStream


@dataclass
class DeliveryStats:
    batches: int = 0  # buffers written out
    records: int = 0  # stream records read and written (or skipped as unreadable)
    rows: int = 0  # rows written
    unreadable: int = 0
    dropped_erased: int = 0
    write_retries: int = 0


class LocalDeliveryStream:
    """One shard's reader and writer. `batches` and `caught_up_since` let the local
    stack's drain check wait for it as it waits for the pollers."""

    RETRY_FIRST_S = 0.2
    RETRY_LONGEST_S = 5.0

    def __init__(
        self,
        aws: LocalAws,
        delivery: DeliveryStream,
        stream_name: str,
        shard_id: str,
        store: ArchiveStore,
        checkpoints: Checkpoints | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.delivery = delivery
        self.stream_name = stream_name
        self.shard_id = shard_id
        self.store = store
        self.checkpoints = checkpoints
        self.waiting = _Waiting(doorbell or Doorbell(), stream_name)
        self.rule = BufferRule(
            max_bytes=delivery.local_buffer_bytes, max_age_s=delivery.local_buffer_s
        )
        self.buffer = ArchiveBuffer(self.rule)
        self.stats = DeliveryStats()
        self.empty_read_started = 0.0
        self._kinesis = aws.client("kinesis")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the poller interface the local stack uses ---------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"firehose-{self.delivery.name}-{self.shard_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops without writing the buffer: what it held is read again at the next start."""
        self._stop.set()
        self.waiting.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def caught_up_since(self, moment: float) -> bool:
        """A read after `moment` found the shard empty and nothing waits in the buffer."""
        return self.empty_read_started > moment and self.buffer.first_sequence is None

    # --- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._deliver_until_stopped()
            except Exception as err:  # moto unreachable, an expired iterator: start over
                if self._stop.is_set():
                    return
                logger.warning("archive reader failed", extra={"error": repr(err)})
                # What was buffered is not checkpointed: read it again from the stream.
                self.buffer = ArchiveBuffer(self.rule)
                time.sleep(self.RETRY_FIRST_S)

    def _deliver_until_stopped(self) -> None:
        iterator = self._resume()
        while not self._stop.is_set():
            started = time.monotonic()
            rung = self.waiting.rung()
            answer = self._kinesis.get_records(ShardIterator=iterator, Limit=1000)
            iterator = answer["NextShardIterator"]
            records = answer["Records"]
            now = time.monotonic()
            for record in records:
                self._add(record, now)
                if self.buffer.full():
                    self.flush()
            if self.buffer.due(time.monotonic()):
                self.flush()
            if records:
                continue
            if self.buffer.first_sequence is None:
                self.empty_read_started = started
                self.waiting.idle(rung)
            else:
                # Wait for more records or for the buffer's age, whichever comes first.
                assert self.buffer.opened_at is not None
                left = self.buffer.opened_at + self.rule.max_age_s - time.monotonic()
                self.waiting.doorbell.wait(self.waiting.name, rung, max(min(left, 1.0), 0.01))

    def _resume(self) -> str:
        done = self.checkpoints.load().done_through if self.checkpoints else None
        at = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": done}
            if done
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        return str(
            self._kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=self.shard_id, **at
            )["ShardIterator"]
        )

    def _add(self, record: dict[str, Any], now: float) -> None:
        data: bytes = record["Data"]
        try:
            position = StreamPosition(self.shard_id, record["SequenceNumber"])
            row = archive_row(parse_record(data), position)
        except ValueError:
            # The segments step sends an unreadable record to failed events; the
            # archive has no row to make of it, but moves past it.
            self.stats.unreadable += 1
            row = None
        self.buffer.add(record["SequenceNumber"], len(data), row, now)

    def flush(self) -> None:
        """Write the buffer (retrying until it is in S3), then checkpoint past it."""
        buffer = self.buffer
        if buffer.first_sequence is None:
            return
        assert buffer.last_sequence is not None
        delay = self.RETRY_FIRST_S
        while True:
            try:
                written, dropped = self._write(buffer)
                break
            except Exception as err:  # S3 refused or was unreachable: nothing moves
                if self._stop.is_set():
                    return  # the buffer is read again at the next start
                self.stats.write_retries += 1
                logger.warning("archive write failed", extra={"error": repr(err)})
                time.sleep(delay)
                delay = min(delay * 2, self.RETRY_LONGEST_S)
        if self.checkpoints:
            self.checkpoints.done(buffer.last_sequence)
        self.stats.batches += 1
        self.stats.records += buffer.records
        self.stats.rows += written
        self.stats.dropped_erased += dropped
        self.buffer = ArchiveBuffer(self.rule)

    def _write(self, buffer: ArchiveBuffer) -> tuple[int, int]:
        """One object per table and day: (rows written, rows dropped as erased)."""
        assert buffer.first_sequence is not None
        erasures = self.store.erasure_requests()
        written = dropped = 0
        for (table, day), rows in by_partition(buffer.rows).items():
            kept = [row for row in rows if keep(table, row, erasures)]
            dropped += len(rows) - len(kept)
            if not kept:
                continue
            self.store.put(
                object_key(table, day, self.shard_id, buffer.first_sequence), encode(table, kept)
            )
            written += len(kept)
        return written, dropped


def _local_history(bucket: str) -> EventArchive:
    return ArchivedHistory(ArchiveStore(bucket))


def read_archive_files() -> Callable[[], None]:
    """Hand this process's read API the archive's files (pyarrow, here in the local
    stack's environment) instead of Athena, which moto cannot run: export reads
    them, erasure rewrites them at once (and leaves its request for the job).
    Returns what puts the deployed path back."""
    previous = api_handler.archive_history
    api_handler.archive_history = _local_history
    api_handler.archive_data.cache_clear()
    api_handler.people.cache_clear()

    def restore() -> None:
        api_handler.archive_history = previous
        api_handler.archive_data.cache_clear()
        api_handler.people.cache_clear()

    return restore
