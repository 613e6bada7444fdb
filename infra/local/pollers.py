"""Kinesis event-source mappings, played locally the way Lambda plays them.

One poller per shard reads records in order and invokes the consuming
function with a real Kinesis event. It honours the wiring table's settings:
batch size, batching window, partial batch responses (retry from the first
failed record), bisect on error, bounded retries, maximum record age, and an
S3 on-failure destination that keeps the whole failed batch, so one bad
record never blocks a shard. Its position is kept in moto (`checkpoints.py`),
so a killed and restarted local stack redoes the batch it was in and goes on.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.shared.observability import logger
from infra.local.aws import LocalAws
from infra.local.checkpoints import Checkpoints, Position
from infra.local.doorbell import Doorbell
from infra.local.invoke import LocalFunction
from infra.topology import KinesisSource, SqsSource

ACCOUNT = "000000000000"


@dataclass
class _Batch:
    records: list[dict[str, Any]]  # GetRecords entries
    attempts: int = 0  # failed invocations so far


@dataclass
class PollerStats:
    batches: int = 0
    records_delivered: int = 0  # records in successful invocations
    records_to_on_failure: int = 0
    retries: int = 0


class _Waiting:
    """How a poller waits between reads: on its doorbell, or a second at most.

    After an empty read it sleeps until its stream or queue is written through a
    client that rings the bell (every function's, in the local stack), or for a
    second (Lambda polls an idle shard about once a second): the slow poll only
    finds what others wrote (another process on `--aws-endpoint`, a test's own
    client). Polling faster after a ring (it backed off from 50 ms) kept moto
    busy answering empty reads, about 160 a second under a trickle of events, and
    made every hop slower. While a batch fills it reads twice: when it starts,
    and when the batching window ends."""

    IDLE_S = 1.0

    def __init__(self, doorbell: Doorbell, name: str) -> None:
        self.doorbell = doorbell
        self.name = name

    def rung(self) -> int:
        return self.doorbell.rung(self.name)

    def idle(self, rung: int) -> None:
        self.doorbell.wait(self.name, rung, self.IDLE_S)

    def until(self, deadline: float) -> None:
        """While a batch fills: sleep out the batching window (one more read then
        takes what came meanwhile), unless the stack is stopping or draining."""
        left = deadline - time.monotonic()
        if left > 0:
            self.doorbell.wait(None, 0, left)

    def wake(self) -> None:
        self.doorbell.ring_all()


class _Poller:
    """A polling thread that invokes one function; stop() ends it, and
    `caught_up_since` tells the local stack when its source has been drained."""

    function: LocalFunction
    waiting: _Waiting
    _stop: threading.Event
    _thread: threading.Thread | None
    empty_read_started: float  # monotonic start of the last read that found nothing

    def _thread_name(self) -> str:
        raise NotImplementedError

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._thread_name(), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.waiting.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def caught_up_since(self, moment: float) -> bool:
        """True if a read that began after `moment` found the source empty."""
        return self.empty_read_started > moment


class KinesisShardPoller(_Poller):
    def __init__(
        self,
        aws: LocalAws,
        function: LocalFunction,
        source: KinesisSource,
        stream_name: str,
        shard_id: str,
        on_failure_bucket: str,
        checkpoints: Checkpoints | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.aws = aws
        self.function = function
        self.source = source
        self.checkpoints = checkpoints  # None: the position lives only in this process
        self.stream_name = stream_name
        self.shard_id = shard_id
        self.on_failure_bucket = on_failure_bucket
        self.waiting = _Waiting(doorbell or Doorbell(), stream_name)
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kinesis = aws.client("kinesis")
        self._s3 = aws.client("s3")
        self._stream_arn = f"arn:aws:kinesis:{aws.region}:{ACCOUNT}:stream/{stream_name}"
        self.empty_read_started = 0.0  # monotonic start of the last read that found nothing

    def _thread_name(self) -> str:
        return f"poll-{self.function.spec.name}-{self.shard_id}"

    def _run(self) -> None:
        iterator = self._resume()
        while not self._stop.is_set():
            started = time.monotonic()
            rung = self.waiting.rung()
            records, iterator = self._fill_batch(iterator)
            if not records:
                self.empty_read_started = started
                self.waiting.idle(rung)
                continue
            self.deliver(records)

    def _resume(self) -> str:
        """An iterator where the last run stopped, after redoing the batch it was in."""
        position = self.checkpoints.load() if self.checkpoints else Position(None, None)
        after = position.done_through
        if position.pending is not None:
            first, last = position.pending
            self.deliver(self._read_range(first, last))
            after = last
        if after is None:
            return self._iterator(self.source.starting_position)
        return self._iterator("AFTER_SEQUENCE_NUMBER", after)

    def _iterator(self, kind: str, sequence: str | None = None) -> str:
        at = {"StartingSequenceNumber": sequence} if sequence else {}
        return str(
            self._kinesis.get_shard_iterator(
                StreamName=self.stream_name,
                ShardId=self.shard_id,
                ShardIteratorType=kind,
                **at,
            )["ShardIterator"]
        )

    def _read_range(self, first: str, last: str) -> list[dict[str, Any]]:
        """The records from `first` to `last` (sequence numbers), in order."""
        iterator = self._iterator("AT_SEQUENCE_NUMBER", first)
        records: list[dict[str, Any]] = []
        while True:
            answer = self._kinesis.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
            iterator = answer["NextShardIterator"]
            for record in answer["Records"]:
                if int(record["SequenceNumber"]) > int(last):
                    return records
                records.append(record)
            if not answer["Records"]:
                return records

    def _fill_batch(self, iterator: str) -> tuple[list[dict[str, Any]], str]:
        """Up to batch_size records, waiting at most the batching window to fill."""
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.source.max_batching_window_s
        while len(records) < self.source.batch_size and not self._stop.is_set():
            answer = self._kinesis.get_records(
                ShardIterator=iterator, Limit=self.source.batch_size - len(records)
            )
            iterator = answer["NextShardIterator"]
            records.extend(answer["Records"])
            if not records or time.monotonic() >= deadline:
                break  # empty, or the window is over: deliver what came
            if time.monotonic() < deadline:
                self.waiting.until(deadline)
        return records, iterator

    # --- delivery semantics ---------------------------------------------------

    def deliver(self, records: list[dict[str, Any]]) -> None:
        """Invoke until every record is processed or sent to the on-failure destination."""
        if not records:
            return
        queue = [_Batch(records)]
        while queue:
            batch = queue.pop(0)
            # Lambda retries "until the records expire, exceed the maximum age, or
            # reach the retry quota": the age is checked before every attempt.
            batch.records = self._drop_expired(batch.records)
            if not batch.records:
                continue
            self.stats.batches += 1
            if self.checkpoints:
                # Batches run in sequence order: all before this one is done, none after.
                first, last = batch.records[0], batch.records[-1]
                self.checkpoints.begin(first["SequenceNumber"], last["SequenceNumber"])
            try:
                answer = self.function.invoke(self._event(batch.records))
            except Exception as err:
                logger.warning(
                    "stream consumer failed",
                    extra={"function": self.function.spec.name, "error": repr(err)},
                )
                queue[:0] = self._after_error(batch, "Unhandled")
                continue
            failed_from = self._first_failure(batch.records, answer)
            if failed_from is None:
                self.stats.records_delivered += len(batch.records)
                continue
            self.stats.records_delivered += failed_from
            rest = _Batch(batch.records[failed_from:], batch.attempts)
            queue[:0] = self._after_error(rest, None)
        if self.checkpoints:
            self.checkpoints.done(records[-1]["SequenceNumber"])

    def _after_error(self, batch: _Batch, function_error: str | None) -> list[_Batch]:
        self.stats.retries += 1
        if function_error and self.source.bisect_on_error and len(batch.records) > 1:
            # "Splitting batches doesn't consume the retry quota" (Lambda docs).
            half = len(batch.records) // 2
            return [
                _Batch(batch.records[:half], batch.attempts),
                _Batch(batch.records[half:], batch.attempts),
            ]
        batch.attempts += 1
        if batch.attempts > self.source.max_retry_attempts:
            self.stats.retries -= 1
            self._send_to_on_failure(batch, function_error)
            return []
        return [batch]

    def _first_failure(self, records: list[dict[str, Any]], answer: Any) -> int | None:
        """Where to resume after a partial batch response (None: all done)."""
        if not self.source.report_batch_item_failures or not isinstance(answer, dict):
            return None
        failures = answer.get("batchItemFailures") or []
        if not failures:
            return None
        positions = {r["SequenceNumber"]: i for i, r in enumerate(records)}
        found = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in positions:
                return 0  # Lambda treats an unknown identifier as a whole-batch failure
            found.append(positions[identifier])
        return min(found)

    def _drop_expired(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        max_age = self.source.max_record_age_s
        if max_age <= 0:
            return records
        now = datetime.now(UTC)
        fresh = [r for r in records if (now - _arrival(r)).total_seconds() <= max_age]
        expired = [r for r in records if r not in fresh]
        if expired:
            self._send_to_on_failure(_Batch(expired), None, condition="RecordAgeExceeded")
        return fresh

    def _send_to_on_failure(
        self,
        batch: _Batch,
        function_error: str | None,
        condition: str = "RetryAttemptsExhausted",
    ) -> None:
        """What Lambda's S3 on-failure destination writes: the invocation record and payload."""
        now = datetime.now(UTC)
        first, last = batch.records[0], batch.records[-1]
        record = {
            "version": "1.0",
            "timestamp": now.isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": (
                    f"arn:aws:lambda:{self.aws.region}:{ACCOUNT}:function:{self.function.spec.name}"
                ),
                "condition": condition,
                "approximateInvokeCount": batch.attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": function_error or "",
            },
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _arrival(first).isoformat(),
                "approximateArrivalOfLastRecord": _arrival(last).isoformat(),
                "batchSize": len(batch.records),
                "streamArn": self._stream_arn,
            },
            "payload": json.dumps(self._event(batch.records)),
        }
        key = (
            f"aws/lambda/{self.function.spec.name}/{self.shard_id}/{now:%Y/%m/%d}/"
            f"{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        )
        self._s3.put_object(
            Bucket=self.on_failure_bucket, Key=key, Body=json.dumps(record).encode()
        )
        self.stats.records_to_on_failure += len(batch.records)
        logger.error(
            "records sent to the on-failure destination",
            extra={
                "function": self.function.spec.name,
                "records": len(batch.records),
                "condition": condition,
            },
        )

    def _event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return kinesis_lambda_event(records, self.shard_id, self._stream_arn, self.aws.region)


def kinesis_lambda_event(
    records: list[dict[str, Any]], shard_id: str, stream_arn: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """What Lambda delivers to a Kinesis consumer for these GetRecords entries."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": _arrival(r).timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/local",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def _arrival(record: dict[str, Any]) -> datetime:
    stamp = record["ApproximateArrivalTimestamp"]
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(stamp), UTC)


class SqsQueuePoller(_Poller):
    """An SQS event-source mapping: receive up to the batch size, invoke, delete what
    succeeded; what the function reports failed (or an error) comes back after the
    visibility timeout, and the queue's redrive policy dead-letters it in the end."""

    def __init__(
        self,
        aws: LocalAws,
        function: LocalFunction,
        source: SqsSource,
        queue_name: str,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.aws = aws
        self.function = function
        self.source = source
        self.queue_name = queue_name
        self.waiting = _Waiting(doorbell or Doorbell(), queue_name)
        self.stats = PollerStats()
        self.empty_read_started = 0.0
        self._sqs = aws.client("sqs")
        self._url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self._arn = f"arn:aws:sqs:{aws.region}:{ACCOUNT}:{queue_name}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _thread_name(self) -> str:
        return f"poll-{self.function.spec.name}-sqs"

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            rung = self.waiting.rung()
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=self.source.batch_size,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                self.empty_read_started = started
                self.waiting.idle(rung)
                continue
            self.deliver(messages)

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        self.stats.batches += 1
        try:
            answer = self.function.invoke(sqs_lambda_event(messages, self._arn, self.aws.region))
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        except Exception as err:
            logger.warning(
                "queue consumer failed",
                extra={"function": self.function.spec.name, "error": repr(err)},
            )
            return  # every message comes back after its visibility timeout
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done[start : start + 10])
                ],
            )


def sqs_lambda_event(
    messages: list[dict[str, Any]], queue_arn: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """What Lambda delivers to an SQS consumer for these ReceiveMessage entries."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }
