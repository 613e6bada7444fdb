"""Writing records to a Kinesis stream: batched PutRecords with partial-failure retries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.dal.clients import client
from functions.shared.dal.retry import Retrying, RetryOptions
from functions.shared.observability import logger
from functions.shared.streams import StreamRecord

# PutRecords limits: 500 records and 5 MiB per call.
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024


class KinesisWriter(Retrying):
    """PutRecords in as few calls as the limits allow; retry only what Kinesis refused.

    Throttled or failed entries are retried with exponential backoff and full
    jitter (`retry.py`); what still fails after `max_attempts` is returned to the
    caller, which must not acknowledge it.
    """

    def __init__(
        self, stream_name: str, kinesis: Any | None = None, **retry: Unpack[RetryOptions]
    ) -> None:
        super().__init__(**retry)
        self.stream_name = stream_name
        self._kinesis = kinesis
        self.calls = 0  # PutRecords calls made, for benchmarks

    @property
    def kinesis(self) -> Any:
        return self._kinesis or client("kinesis")

    def put(self, records: Sequence[StreamRecord]) -> list[int]:
        """Write `records`; return the positions of those that could not be written."""
        failed: list[int] = []
        for chunk in _chunks(records):
            failed.extend(self._put_chunk(records, chunk))
        return failed

    def _put_chunk(self, records: Sequence[StreamRecord], chunk: list[int]) -> list[int]:
        def put(pending: list[int], attempt: int) -> list[int]:
            entries = [
                {"Data": records[i].data, "PartitionKey": records[i].partition_key} for i in pending
            ]
            self.calls += 1
            try:
                answer = self.kinesis.put_records(StreamName=self.stream_name, Records=entries)
            except (ClientError, BotoCoreError) as err:
                logger.warning("PutRecords failed", extra={"error": str(err), "attempt": attempt})
                return pending
            if not answer.get("FailedRecordCount"):
                return []
            failed = [
                index
                for index, result in zip(pending, answer["Records"], strict=True)
                if result.get("ErrorCode")
            ]
            logger.warning(
                "PutRecords partially failed",
                extra={"failed": len(failed), "attempt": attempt},
            )
            return failed

        return self.retry_pending(chunk, put)


def _chunks(records: Sequence[StreamRecord]) -> list[list[int]]:
    chunks: list[list[int]] = [[]]
    size = 0
    for index, record in enumerate(records):
        record_size = len(record.data) + len(record.partition_key.encode())
        if chunks[-1] and (
            len(chunks[-1]) >= MAX_RECORDS_PER_CALL or size + record_size > MAX_BYTES_PER_CALL
        ):
            chunks.append([])
            size = 0
        chunks[-1].append(index)
        size += record_size
    return [chunk for chunk in chunks if chunk]
