"""Erasure on the local stack over real HTTP: it holds, and it closes its window.

Issue 13, finding 7. (a) After `DELETE /v1/profiles/...` the same browser keeps
browsing with the consent stamp analytics.js puts on every event: the person
stays erased. (b) The erasure runs in the middle of a burst of the person's
events: once the pipeline has drained, erasing again finds nothing to delete.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from cli.observe import observe
from infra.local.checkpoints import table_name
from infra.topology import TOPOLOGY, ResourceNames

from .conftest import RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, consent_counts, eventually

pytestmark = pytest.mark.e2e
NAMES = ResourceNames()
STAMP = {"consent": {"categoryPreferences": {"personalization": True, "analytics": True}}}


def send(stack: RunningStack, path: str, body: dict[str, Any]) -> None:
    stamped = {**body, "context": STAMP, "timestamp": datetime.now(UTC).isoformat()}
    status, answer = call(stack, "POST", path, stamped, basic_auth("local-write-key"))
    assert status == 200, answer


def browse(stack: RunningStack, anon: str, user: str, email: str) -> None:
    """What analytics.js sends on a visit: a page view, a product view, an identify."""
    send(stack, "/v1/page", {"anonymousId": anon, "userId": user, "name": "Home"})
    send(stack, "/v1/track", {"anonymousId": anon, "userId": user, "event": "Product Viewed"})
    send(stack, "/v1/identify", {"anonymousId": anon, "userId": user, "traits": {"email": email}})


def stream_ends(stack: RunningStack) -> dict[str, str]:
    """Each Kinesis mapping (`function/stream/shard`) -> the last sequence number in it."""
    kinesis = stack.client("kinesis")
    ends = {}
    for function in TOPOLOGY.functions:
        for source in function.kinesis_sources:
            stream = NAMES.stream(source.stream)
            for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
                last = shard["SequenceNumberRange"].get("EndingSequenceNumber")
                iterator = kinesis.get_shard_iterator(
                    StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
                if records:
                    last = records[-1]["SequenceNumber"]
                if last:
                    ends[f"{function.name}/{stream}/{shard['ShardId']}"] = last
    return ends


def drained(stack: RunningStack) -> bool:
    """Every event-source mapping has done the last record of its shard (and has no batch
    in flight), and the activations queue is empty: nothing is left to arrive anywhere."""
    positions = {
        item["mapping"]["S"]: item
        for item in stack.client("dynamodb").scan(TableName=table_name(NAMES))["Items"]
    }
    for mapping, last in stream_ends(stack).items():
        position = positions.get(mapping, {})
        if "pending" in position or position.get("done_through", {}).get("S") != last:
            return False
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName=NAMES.queue("activations"))["QueueUrl"]
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return all(
        int(counts[k]) == 0
        for k in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} after {timeout_s:.0f} s"
        time.sleep(0.5)


def settle(stack: RunningStack, timeout_s: float = 60) -> None:
    """Until the pipeline has drained (twice in a row, a second apart: a poller between
    its read and its checkpoint would otherwise look done)."""

    def twice() -> bool:
        if not drained(stack):
            return False
        time.sleep(1)
        return drained(stack)

    until(twice, timeout_s, "the pipeline had not drained")


def test_the_next_page_views_with_the_same_consent_stamp_do_not_bring_the_person_back(
    stack: RunningStack,
) -> None:
    anon, user = f"a-{uuid.uuid4()}", f"u-{uuid.uuid4()}"
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    browse(stack, anon, user, email)
    assert eventually(
        lambda: call(stack, "GET", f"/v1/profiles/email:{email}", headers=ADMIN)[0] == 200,
        timeout_s=30,
    )
    status, erased = call(stack, "DELETE", f"/v1/profiles/email:{email}", headers=ADMIN)
    assert status == 200 and erased["records_deleted"]["identity"] > 0
    dropped_before = consent_counts(stack)["erased"]

    browse(stack, anon, user, email)  # the same browser, the same stamp as before

    settle(stack)
    assert consent_counts(stack)["erased"] - dropped_before == 3
    for ref in (f"email:{email}", f"user_id:{user}", f"anonymous_id:{anon}"):
        status, answer = call(stack, "GET", f"/v1/profiles/{ref}", headers=ADMIN)
        assert status == 404, answer


def test_an_erasure_in_the_middle_of_a_burst_leaves_nothing_to_find(stack: RunningStack) -> None:
    user, email = f"u-{uuid.uuid4()}", f"{uuid.uuid4().hex[:8]}@example.org"
    devices = [f"a-{uuid.uuid4()}" for _ in range(4)]

    def events_of(anon: str) -> list[dict[str, Any]]:
        """Ten events of one device: it logs in, then browses (analytics.js's stamp on each)."""
        login = {"type": "identify", "userId": user, "traits": {"email": email}}
        views = [{"type": "track", "userId": user, "event": f"Viewed {n}"} for n in range(9)]
        return [
            {**e, "anonymousId": anon, "context": STAMP, "messageId": str(uuid.uuid4())}
            for e in (login, *views)
        ]

    def burst() -> None:
        for anon in devices:  # 40 events, device after device
            body = {"batch": events_of(anon)}
            status, _ = call(stack, "POST", "/v1/batch", body, basic_auth("local-write-key"))
            assert status == 200
            time.sleep(0.3)

    sending = threading.Thread(target=burst)
    sending.start()
    # Erase as soon as the person has a profile: the rest of the burst is on its way,
    # some of it past consent already, some past identity.
    until(
        lambda: call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN)[0] == 200,
        30,
        "the burst never made a profile",
    )
    status, first = call(stack, "DELETE", f"/v1/profiles/user_id:{user}", headers=ADMIN)
    assert status == 200, first
    sending.join()

    settle(stack)
    status, again = call(stack, "DELETE", f"/v1/profiles/user_id:{user}", headers=ADMIN)
    assert status == 200
    assert again["records_deleted"] == {
        "consent": 0,
        "identity": 0,
        "profile": 0,
        "deliveries": 0,
        "archive": 0,  # the writer dropped the person's events still on their way
    }
    for ref in (f"user_id:{user}", f"email:{email}", *(f"anonymous_id:{d}" for d in devices)):
        assert call(stack, "GET", f"/v1/profiles/{ref}", headers=ADMIN)[0] == 404
    # Every event of the run is accounted for: what the erasure caught in flight counts
    # as dropped, and what the erased profiles had applied left with them, counted.
    assert observe(stack, NAMES).pipeline_problems() == []
