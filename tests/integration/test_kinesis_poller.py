"""KinesisShardPoller on a real moto server, held to Lambda's documented semantics.

Lambda's Kinesis event-source mapping, as documented
(https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html,
.../services-kinesis-batchfailurereporting.html):

* a batch holds at most BatchSize records;
* with ReportBatchItemFailures, the function names the failed records; Lambda
  retries from the lowest failed sequence number and never redelivers what
  came before it; an unknown, empty or null itemIdentifier fails the whole batch;
* a function error is retried until the records exceed the maximum age or the
  retry quota is reached (MaximumRetryAttempts retries after the first try);
  BisectBatchOnFunctionError splits a failed batch in two, and "splitting
  batches doesn't consume the retry quota";
* what is discarded goes to the on-failure destination; an S3 destination
  keeps the invocation record with the whole payload;
* records of one shard (so of one partition key) are processed in order.
"""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.aws import LocalAws
from infra.local.doorbell import Doorbell
from infra.local.invoke import LocalFunction
from infra.local.pollers import KinesisShardPoller
from infra.topology import Function, KinesisSource
from tests.integration.aws_helpers import create_bucket, create_stream, read_shard, unique_names

SPEC = Function("test", step="test", purpose="integration-test consumer", timeout_s=5)
POISON = b"poison"

Event = dict[str, Any]
Behaviour = Callable[[int, list[Event]], Any]


def data(record: Event) -> bytes:
    return base64.b64decode(record["kinesis"]["data"])


def seq(record: Event) -> str:
    return str(record["kinesis"]["sequenceNumber"])


def failure_for(*records: Event) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": seq(r)} for r in records]}


class Boom(RuntimeError):
    pass


@dataclass
class Consumer:
    """A test handler: records every batch it is given and answers per `behaviour`.

    `acked` holds the records the handler reports as processed: all of them on
    success, those before the first reported failure on a partial response,
    none when it raises.
    """

    behaviour: Behaviour = lambda _n, _records: None
    batches: list[list[Event]] = field(default_factory=list)
    acked: list[Event] = field(default_factory=list)

    def __call__(self, event: Event, context: Any) -> Any:
        records = event["Records"]
        invocation = len(self.batches)
        self.batches.append(records)
        answer = self.behaviour(invocation, records)
        failures = (answer or {}).get("batchItemFailures") if isinstance(answer, dict) else None
        if failures:
            positions = {seq(r): i for i, r in enumerate(records)}
            ids = [f.get("itemIdentifier") for f in failures]
            first = 0 if any(i not in positions for i in ids) else min(positions[i] for i in ids)
            self.acked.extend(records[:first])
        else:
            self.acked.extend(records)
        return answer

    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]


@dataclass
class Harness:
    """One wiring-table stream and on-failure bucket with test-unique names."""

    aws: LocalAws
    stream: str
    bucket: str
    kinesis: Any
    s3: Any
    doorbell: Doorbell = field(default_factory=Doorbell)

    def __post_init__(self) -> None:
        self.doorbell.listen_to(self.kinesis)  # as the handlers' clients do in the local stack

    def put(self, items: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        """PutRecords (moto answers in order); returns each record's SequenceNumber/ShardId."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), 500):
            entries = [{"PartitionKey": k, "Data": d} for k, d in items[start : start + 500]]
            answer = self.kinesis.put_records(StreamName=self.stream, Records=entries)
            assert answer["FailedRecordCount"] == 0
            results.extend(answer["Records"])
        return results

    def put_one_key(self, payloads: list[bytes], key: str = "person-1") -> str:
        """Put records under one partition key; returns the shard that holds them."""
        shards = {r["ShardId"] for r in self.put([(key, p) for p in payloads])}
        assert len(shards) == 1
        return shards.pop()

    def records(self, shard_id: str) -> list[dict[str, Any]]:
        return read_shard(self.kinesis, self.stream, shard_id)

    def poller(
        self, consumer: Consumer, source: KinesisSource, shard_id: str
    ) -> KinesisShardPoller:
        return KinesisShardPoller(
            self.aws,
            LocalFunction(SPEC, handler=consumer),
            source,
            self.stream,
            shard_id,
            self.bucket,
            doorbell=self.doorbell,
        )

    def on_failure(self) -> list[dict[str, Any]]:
        """The on-failure records, oldest first."""
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="aws/lambda/")
        items = sorted(listing.get("Contents", []), key=lambda o: (o["LastModified"], o["Key"]))
        return [
            json.loads(self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read())
            for o in items
        ]


@pytest.fixture(scope="module")
def clients(local_aws: LocalAws) -> tuple[Any, Any]:
    """boto3 clients are slow to build: one pair for the whole module."""
    return local_aws.client("kinesis"), local_aws.client("s3")


@pytest.fixture
def harness(local_aws: LocalAws, clients: tuple[Any, Any]) -> Harness:
    names = unique_names()
    kinesis, s3 = clients
    return Harness(
        aws=local_aws,
        stream=create_stream(kinesis, names),
        bucket=create_bucket(s3, names),
        kinesis=kinesis,
        s3=s3,
    )


def source(**settings: Any) -> KinesisSource:
    """The wiring table's event source, with a zero batching window unless told."""
    settings.setdefault("max_batching_window_s", 0)
    return KinesisSource(stream="events", **settings)


@pytest.fixture
def running() -> Iterator[list[KinesisShardPoller]]:
    """Pollers started by a test; always stopped."""
    pollers: list[KinesisShardPoller] = []
    yield pollers
    for poller in pollers:
        poller.stop()


def run_until_idle(pollers: list[KinesisShardPoller], timeout_s: float = 4.0) -> None:
    started = time.monotonic()
    for poller in pollers:
        poller.start()
    deadline = started + timeout_s
    while not all(p.caught_up_since(started) for p in pollers):
        assert time.monotonic() < deadline, "poller did not drain its shard"
        time.sleep(0.02)
    for poller in pollers:
        poller.stop()


def payloads(count: int, prefix: str = "r") -> list[bytes]:
    return [f"{prefix}-{i:04d}".encode() for i in range(count)]


# --- batch size --------------------------------------------------------------


def test_batch_size_is_honoured(harness: Harness, running: list[KinesisShardPoller]) -> None:
    sent = payloads(250)
    shard = harness.put_one_key(sent)
    consumer = Consumer()
    running.append(harness.poller(consumer, source(batch_size=100), shard))

    run_until_idle(running)

    assert consumer.sizes() == [100, 100, 50]
    assert [data(r) for r in consumer.acked] == sent
    assert harness.on_failure() == []


# --- partial batch responses -------------------------------------------------


def test_partial_batch_response_resumes_at_the_first_reported_record(harness: Harness) -> None:
    sent = payloads(10)
    shard = harness.put_one_key(sent)
    records = harness.records(shard)
    consumer = Consumer(lambda n, rs: failure_for(rs[2]) if n == 0 else None)
    poller = harness.poller(consumer, source(), shard)

    poller.deliver(records)

    assert consumer.sizes() == [10, 8]
    retried = consumer.batches[1]
    assert seq(retried[0]) == records[2]["SequenceNumber"]
    assert [data(r) for r in retried] == sent[2:]  # nothing before it again
    assert [data(r) for r in consumer.acked] == sent
    assert harness.on_failure() == []


def test_partial_batch_response_resumes_at_the_lowest_of_several(harness: Harness) -> None:
    sent = payloads(10)
    shard = harness.put_one_key(sent)
    records = harness.records(shard)
    consumer = Consumer(lambda n, rs: failure_for(rs[7], rs[4]) if n == 0 else None)

    harness.poller(consumer, source(), shard).deliver(records)

    assert [[data(r) for r in batch] for batch in consumer.batches] == [sent, sent[4:]]


@pytest.mark.parametrize("identifier", ["49999999999999999999999999999999", "", None])
def test_unknown_item_identifier_retries_the_whole_batch(
    harness: Harness, identifier: str | None
) -> None:
    sent = payloads(6)
    shard = harness.put_one_key(sent)
    records = harness.records(shard)
    consumer = Consumer(
        lambda n, _rs: {"batchItemFailures": [{"itemIdentifier": identifier}]} if n == 0 else None
    )

    harness.poller(consumer, source(), shard).deliver(records)

    assert [[data(r) for r in batch] for batch in consumer.batches] == [sent, sent]
    assert harness.on_failure() == []


def test_item_failures_are_ignored_unless_reporting_is_on(harness: Harness) -> None:
    sent = payloads(4)
    shard = harness.put_one_key(sent)
    consumer = Consumer(lambda n, rs: failure_for(rs[1]) if n == 0 else None)
    poller = harness.poller(consumer, source(report_batch_item_failures=False), shard)

    poller.deliver(harness.records(shard))

    assert consumer.sizes() == [4]  # the answer is not read: the batch succeeded


def test_partial_failures_are_bounded_by_the_retry_quota(harness: Harness) -> None:
    sent = payloads(6)
    sent[2] = POISON
    shard = harness.put_one_key(sent)
    records = harness.records(shard)

    def reject_poison(_n: int, rs: list[Event]) -> Any:
        return failure_for(*[r for r in rs if data(r) == POISON])

    consumer = Consumer(reject_poison)
    poller = harness.poller(consumer, source(max_retry_attempts=2), shard)

    poller.deliver(records)

    assert [[data(r) for r in b] for b in consumer.batches] == [sent, sent[2:], sent[2:]]
    assert [data(r) for r in consumer.acked] == sent[:2]
    [failed] = harness.on_failure()
    assert failed["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = failed["KinesisBatchInfo"]
    assert info["batchSize"] == 4
    assert info["startSequenceNumber"] == records[2]["SequenceNumber"]
    assert info["endSequenceNumber"] == records[5]["SequenceNumber"]


# --- function errors ----------------------------------------------------------


def raise_on_poison(_n: int, records: list[Event]) -> None:
    if any(data(r) == POISON for r in records):
        raise Boom("poison record in batch")


@pytest.mark.parametrize("batch", [8, 100])
def test_bisect_isolates_the_poison_record(harness: Harness, batch: int) -> None:
    # The default wiring-table batch is 100: bisecting 100 -> 50 -> 25 -> 13 -> 7
    # -> 4 -> 2 -> 1 takes seven splits, more than max_retry_attempts=3. As
    # splitting doesn't consume the retry quota, the poison still ends alone.
    sent = payloads(batch)
    poison_at = batch * 3 // 8
    sent[poison_at] = POISON
    shard = harness.put_one_key(sent)
    records = harness.records(shard)
    consumer = Consumer(raise_on_poison)
    poller = harness.poller(
        consumer, source(batch_size=batch, bisect_on_error=True, max_retry_attempts=3), shard
    )

    poller.deliver(records)

    good = [p for p in sent if p != POISON]
    assert [data(r) for r in consumer.acked] == good  # each once, in order
    [failed] = harness.on_failure()
    assert failed["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failed["responseContext"]["functionError"] == "Unhandled"
    info = failed["KinesisBatchInfo"]
    assert info["batchSize"] == 1
    assert info["shardId"] == shard
    assert info["startSequenceNumber"] == records[poison_at]["SequenceNumber"]
    assert info["endSequenceNumber"] == records[poison_at]["SequenceNumber"]
    payload = json.loads(failed["payload"])
    assert [r["kinesis"]["data"] for r in payload["Records"]] == [base64.b64encode(POISON).decode()]
    assert (
        payload["Records"][0]["kinesis"]["sequenceNumber"] == records[poison_at]["SequenceNumber"]
    )
    assert poller.stats.records_to_on_failure == 1


def test_without_bisect_retries_are_bounded_then_the_shard_moves_on(
    harness: Harness, running: list[KinesisShardPoller]
) -> None:
    sent = payloads(10)
    sent[2] = POISON
    shard = harness.put_one_key(sent)
    records = harness.records(shard)
    consumer = Consumer(raise_on_poison)
    settings = source(batch_size=5, bisect_on_error=False, max_retry_attempts=2)
    running.append(harness.poller(consumer, settings, shard))

    run_until_idle(running)

    # The first try plus max_retry_attempts retries of the same whole batch ...
    assert [[data(r) for r in b] for b in consumer.batches[:3]] == [sent[:5]] * 3
    # ... then the whole batch goes to S3 and the next batch is processed.
    assert [[data(r) for r in b] for b in consumer.batches[3:]] == [sent[5:]]
    assert [data(r) for r in consumer.acked] == sent[5:]
    [failed] = harness.on_failure()
    assert failed["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failed["requestContext"]["approximateInvokeCount"] == 3
    assert failed["KinesisBatchInfo"]["batchSize"] == 5
    assert failed["KinesisBatchInfo"]["startSequenceNumber"] == records[0]["SequenceNumber"]
    assert failed["KinesisBatchInfo"]["endSequenceNumber"] == records[4]["SequenceNumber"]
    payload = json.loads(failed["payload"])
    assert [base64.b64decode(r["kinesis"]["data"]) for r in payload["Records"]] == sent[:5]


def test_zero_retry_attempts_means_one_try(harness: Harness) -> None:
    sent = [POISON, b"fine"]
    shard = harness.put_one_key(sent)
    consumer = Consumer(raise_on_poison)
    poller = harness.poller(consumer, source(bisect_on_error=False, max_retry_attempts=0), shard)

    poller.deliver(harness.records(shard))

    assert consumer.sizes() == [2]
    [failed] = harness.on_failure()
    assert failed["KinesisBatchInfo"]["batchSize"] == 2


# --- maximum record age -------------------------------------------------------


def aged(records: list[dict[str, Any]], age: timedelta) -> list[dict[str, Any]]:
    arrived = datetime.now(UTC) - age
    return [{**r, "ApproximateArrivalTimestamp": arrived} for r in records]


def test_records_older_than_max_age_go_to_s3_unprocessed(harness: Harness) -> None:
    sent = payloads(8)
    shard = harness.put_one_key(sent)
    records = harness.records(shard)
    # Kinesis hands records out oldest first: the first three have aged out.
    delivered = aged(records[:3], timedelta(seconds=120)) + records[3:]
    consumer = Consumer()
    poller = harness.poller(consumer, source(max_record_age_s=60), shard)

    poller.deliver(delivered)

    assert [data(r) for r in consumer.acked] == sent[3:]
    assert all(data(r) not in sent[:3] for batch in consumer.batches for r in batch)
    [failed] = harness.on_failure()
    assert failed["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failed["KinesisBatchInfo"]["batchSize"] == 3
    payload = json.loads(failed["payload"])
    assert [base64.b64decode(r["kinesis"]["data"]) for r in payload["Records"]] == sent[:3]


def test_max_record_age_on_a_real_stream(
    harness: Harness, running: list[KinesisShardPoller]
) -> None:
    sent = payloads(4)
    shard = harness.put_one_key(sent)
    consumer = Consumer()
    running.append(harness.poller(consumer, source(max_record_age_s=1), shard))
    time.sleep(1.1)  # the records age past the limit before the mapping reads them

    run_until_idle(running)

    assert consumer.batches == []
    [failed] = harness.on_failure()
    assert failed["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failed["KinesisBatchInfo"]["batchSize"] == 4


def test_records_that_age_out_while_being_retried_stop_being_retried(harness: Harness) -> None:
    # "Lambda retries until the records expire, exceed the maximum age, or reach
    # the configured retry quota": max age ends retries too, not only the first try.
    sent = payloads(3)
    shard = harness.put_one_key(sent)

    def slow_failure(n: int, _records: list[Event]) -> None:
        if n < 3:  # bounded: a mapping that keeps retrying stops failing after 3 tries
            time.sleep(0.5)
            raise Boom("slow failure")

    consumer = Consumer(slow_failure)
    poller = harness.poller(
        consumer,
        source(max_record_age_s=1, bisect_on_error=False, max_retry_attempts=100),
        shard,
    )
    records = aged(harness.records(shard), timedelta(seconds=0.6))

    poller.deliver(records)

    # First try at age ~0.6 s fails at ~1.1 s: past the maximum age, no retry.
    assert consumer.sizes() == [3]
    [failed] = harness.on_failure()
    assert failed["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failed["KinesisBatchInfo"]["batchSize"] == 3


# --- order --------------------------------------------------------------------


def test_each_partition_key_is_processed_in_order_across_retries(
    harness: Harness, running: list[KinesisShardPoller]
) -> None:
    keys = [f"person-{k}" for k in range(6)]
    items = [(keys[i % len(keys)], f"{keys[i % len(keys)]}:{i:04d}".encode()) for i in range(180)]
    written = harness.put(items)
    shards = sorted({r["ShardId"] for r in written})

    def flaky(n: int, records: list[Event]) -> Any:
        # Deterministic trouble: every 4th invocation raises, every 4th
        # reports the middle record as failed; the others succeed.
        if n % 4 == 1:
            raise Boom("transient")
        if n % 4 == 3 and len(records) > 1:
            return failure_for(records[len(records) // 2])
        return None

    consumer = Consumer(flaky)
    function = LocalFunction(SPEC, handler=consumer)  # one function, many shards
    settings = source(batch_size=10, bisect_on_error=True, max_retry_attempts=10)
    for shard in shards:
        running.append(
            KinesisShardPoller(
                harness.aws,
                function,
                settings,
                harness.stream,
                shard,
                harness.bucket,
                doorbell=harness.doorbell,
            )
        )

    run_until_idle(running)

    assert harness.on_failure() == []
    expected: dict[str, list[bytes]] = defaultdict(list)
    for key, payload in items:
        expected[key].append(payload)
    processed: dict[str, list[bytes]] = defaultdict(list)
    for record in consumer.acked:
        processed[record["kinesis"]["partitionKey"]].append(data(record))
    assert processed == expected  # every record once, in order, per key
    for batch in consumer.batches:  # and every batch is in sequence order, per key
        per_key: dict[str, list[int]] = defaultdict(list)
        for record in batch:
            per_key[record["kinesis"]["partitionKey"]].append(int(seq(record)))
        assert all(s == sorted(s) for s in per_key.values())
    assert any(len(b) > 1 for b in consumer.batches)
    assert len(consumer.batches) > 180 // 10  # there were retries
