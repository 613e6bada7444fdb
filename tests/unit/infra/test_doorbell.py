"""The local pollers' doorbell: a write wakes the poller of that stream or queue only."""

from __future__ import annotations

import threading
import time

from infra.local.doorbell import Doorbell, resource_name


def test_names_come_from_names_arns_and_queue_urls() -> None:
    assert resource_name("beacon-events") == "beacon-events"
    assert resource_name("arn:aws:kinesis:us-east-1:000000000000:stream/beacon-events") == (
        "beacon-events"
    )
    assert resource_name("http://127.0.0.1:4566/000000000000/beacon-activations") == (
        "beacon-activations"
    )


def test_a_ring_before_the_wait_is_not_missed() -> None:
    bell = Doorbell()
    seen = bell.rung("events")
    bell.ring("events")  # between the empty read and the wait
    started = time.monotonic()
    assert bell.wait("events", seen, timeout_s=5)
    assert time.monotonic() - started < 1


def test_another_stream_does_not_wake_the_waiter() -> None:
    bell = Doorbell()
    seen = bell.rung("events")
    bell.ring("consented")
    assert not bell.wait("events", seen, timeout_s=0.05)


def test_a_ring_wakes_a_waiting_poller_and_ring_all_wakes_everyone() -> None:
    bell = Doorbell()
    woke: list[str] = []

    def poller(name: str) -> None:
        if bell.wait(name, bell.rung(name), timeout_s=5):
            woke.append(name)

    threads = [threading.Thread(target=poller, args=(n,)) for n in ("events", "resolved")]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    bell.ring("events")
    threads[0].join(timeout=5)
    assert woke == ["events"]
    bell.ring_all()
    threads[1].join(timeout=5)
    assert woke == ["events", "resolved"]


def test_a_sessions_clients_ring_when_they_write_a_stream() -> None:
    import boto3
    from botocore.stub import Stubber

    bell = Doorbell()
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    bell.listen_to_session(session)  # before the client exists, as the local stack does
    kinesis = session.client("kinesis", endpoint_url="http://127.0.0.1:9")
    seen = bell.rung("beacon-events")
    with Stubber(kinesis) as stub:
        stub.add_response("put_records", {"Records": [{"SequenceNumber": "1", "ShardId": "s"}]})
        kinesis.put_records(
            StreamName="beacon-events", Records=[{"Data": b"x", "PartitionKey": "p"}]
        )
    assert bell.rung("beacon-events") == seen + 1
    assert bell.rung("beacon-consented") == 0
