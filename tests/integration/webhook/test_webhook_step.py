"""The webhook Lambda on moto, delivering over real HTTP to the local sinks.

SQS, DynamoDB, Secrets Manager and S3 are moto in-process; the destinations are
the local stack's sinks behind a real HTTP server on a free port, which verify
signatures and auth like the real APIs. `pump` plays the SQS event-source
mapping: receive what is visible, invoke the handler, delete what succeeded.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_lambda_powertools.utilities import parameters

from cli.dlq import list_dead_letters, replay
from functions.shared.activations import Activation, activation_json
from functions.shared.config import load_config
from functions.shared.dal import clients
from functions.shared.dal.deliveries_store import DeliveriesStore
from functions.shared.dal.dynamo import DynamoTable, StorageThrottled
from functions.webhook import handler
from infra.local.aws import table_definition
from infra.local.destinations import local_secret_value, sink_routing
from infra.local.gateway import Gateway
from infra.local.invoke import LocalFunction
from infra.local.pollers import sqs_lambda_event
from infra.local.sinks import PREFIX, Fault, Sinks
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import HOST, REGION, free_port
from tests.integration.stream_rig import (
    CONFIG,
    fail_calls,
    hook_client,
    on_calls,
    throttle_reads,
    use_function_environment,
)
from tests.integration.stream_rig import Fault as AwsFault

FAST = [1, 1, 1]  # seconds between attempts: four attempts in all


def destination(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "webhook",
        "url": f"https://hooks.example.com/{name}",
        "secret": {"secret_name": f"beacon/destinations/{name}"},
        "required_consent": ["personalization"],
        "retry": FAST,
        "timeout": {"connect": 1, "total": 1.5},
        **extra,
    }


class Rig:
    def __init__(self, names: ResourceNames, sinks: Sinks, gateway_url: str) -> None:
        self.names = names
        self.sinks = sinks
        self.gateway_url = gateway_url
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.queue = self.sqs.get_queue_url(QueueName=names.queue("activations"))["QueueUrl"]
        self.dlq = self.sqs.get_queue_url(QueueName=names.queue("activations-dlq"))["QueueUrl"]
        self.deliveries = DeliveriesStore(DynamoTable(names.table("deliveries"), self.dynamodb))
        self.arn = f"arn:aws:sqs:{REGION}:000000000000:{names.queue('activations')}"
        # The handler's own clients' calls, keyed "dynamodb:BatchWriteItem", and faults.
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, AwsFault] = {}

    def activate(self, profile: str = "p-1", segment: str = "cart_abandoners") -> Activation:
        activation = Activation(
            id=f"act-{uuid.uuid4().hex[:12]}",
            type="segment.entered",
            profile_id=profile,
            segment_id=segment,
            at=datetime.now(UTC),
            user_id=f"user-{profile}",
            email=f"{profile}@example.org",
            consent={"personalization": True},
        )
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=activation_json(activation).decode())
        return activation

    def pump(self, until: Any = None, timeout_s: float = 15.0) -> None:
        """Deliver visible messages until `until()` holds (or the queue stays empty)."""
        deadline = time.monotonic() + timeout_s
        arn = f"arn:aws:sqs:{REGION}:000000000000:{self.names.queue('activations')}"
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if messages:
                answer = LocalFunction(TOPOLOGY.function("webhook")).invoke(
                    sqs_lambda_event(messages, arn, REGION)
                )
                failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
                for m in messages:
                    if m["MessageId"] not in failed:
                        self.sqs.delete_message(
                            QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"]
                        )
            elif until is None and self._empty():
                return
            if until is not None and until():
                return
            time.sleep(0.1)
        if until is not None:
            raise AssertionError("the condition never held")

    def receive(self, count: int) -> list[dict[str, Any]]:
        """`count` visible messages, as the event-source mapping reads them."""
        messages: list[dict[str, Any]] = []
        while len(messages) < count:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=count - len(messages)
            )
            assert answer.get("Messages"), f"{len(messages)} of {count} messages visible"
            messages += answer["Messages"]
        return messages

    def invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """One invocation with these messages: the ids it reported failed (raises if the
        handler does; then Lambda gives the whole batch back)."""
        event = sqs_lambda_event(messages, self.arn, REGION)
        answer = LocalFunction(TOPOLOGY.function("webhook")).invoke(event)
        return {f["itemIdentifier"] for f in answer["batchItemFailures"]}

    def release(self, messages: list[dict[str, Any]]) -> None:
        """Their visibility timeout runs out: SQS offers them again."""
        for m in messages:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )

    def _empty(self) -> bool:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["All"])
        counts = attributes["Attributes"]
        return all(
            int(counts.get(k, 0)) == 0
            for k in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )

    def log(self, profile: str = "p-1") -> dict[str, Any]:
        return {r.destination: r for r in self.deliveries.for_profiles([profile])}


@pytest.fixture
def rig(mocked_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Rig]:
    config = yaml.safe_load(CONFIG.read_text())
    config["destinations"] = [
        destination("flaky"),
        destination("healthy"),
        destination("gone"),
        destination("slow", timeout={"connect": 1, "total": 1}),
    ]
    config_file = tmp_path / "beacon.yaml"
    config_file.write_text(yaml.safe_dump(config))
    names = ResourceNames()
    use_function_environment(monkeypatch, "webhook", names)
    monkeypatch.setenv("BEACON_CONFIG_FILE", str(config_file))
    parsed = load_config(config_file)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName=names.queue("activations-dlq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName=names.queue("activations"),
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 50})
        },
    )
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        **table_definition(TOPOLOGY.table("deliveries"), names.table("deliveries"))
    )
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=names.bucket("failed-events"))
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for d in parsed.destinations:
        secrets.create_secret(Name=d.secret.secret_name, SecretString=local_secret_value(d))
    sinks = Sinks.for_destinations(parsed.destinations)
    gateway = Gateway([], {PREFIX: sinks.page})
    port = gateway.start(HOST, free_port())
    monkeypatch.setattr(handler, "routing", sink_routing(f"http://{HOST}:{port}"))
    clients.client.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # secrets of earlier tests
    handler.webhook_step.cache_clear()
    rig = Rig(names, sinks, f"http://{HOST}:{port}")
    for service in ("dynamodb", "sqs"):
        hook_client(service, rig.faults, rig.calls)
    step = handler.webhook_step()  # retries of DynamoDB and SQS without backoff sleeps
    step.log.table.sleep = lambda _s: None  # type: ignore[attr-defined]
    step.queue.sleep = step.dead_letters.sleep = lambda _s: None  # type: ignore[attr-defined]
    try:
        yield rig
    finally:
        gateway.stop()
        handler.webhook_step.cache_clear()
        clients.client.cache_clear()


def test_500_three_times_then_success_is_delivered_exactly_once(rig: Rig) -> None:
    rig.sinks.script("flaky", Fault(status=500, times=3))
    activation = rig.activate()

    rig.pump(until=lambda: rig.log().get("flaky") and rig.log()["flaky"].outcome == "delivered")

    received = rig.sinks.received("flaky")
    assert [r.webhook_id for r in received] == [activation.id]  # one delivery, signed, once
    assert rig.sinks.attempts("flaky") == 4
    flaky = rig.log()["flaky"]
    assert [a.status for a in flaky.attempts] == [500, 500, 500, 204]
    # The healthy destination got it at the first attempt, unaffected.
    assert [a.status for a in rig.log()["healthy"].attempts] == [204]


def test_429_with_retry_after_waits_that_long(rig: Rig) -> None:
    rig.sinks.script("flaky", Fault(status=429, headers={"Retry-After": "3"}))
    rig.activate()
    rig.pump(until=lambda: rig.log().get("flaky") and rig.log()["flaky"].outcome == "delivered")
    first, second = rig.log()["flaky"].attempts
    assert first.status == 429 and second.status == 204
    assert (second.at - first.at).total_seconds() >= 3


def test_410_disables_the_destination_and_later_activations_skip_it(rig: Rig) -> None:
    rig.sinks.script("gone", Fault(status=410))
    rig.activate("p-1")
    rig.pump()
    assert rig.log("p-1")["gone"].outcome == "disabled"
    assert rig.deliveries.disabled(["gone"])  # kept until an operator replays
    rig.activate("p-2")
    rig.pump()
    assert rig.log("p-2")["gone"].outcome == "disabled"
    assert rig.sinks.attempts("gone") == 1  # never called again
    assert rig.log("p-2")["healthy"].outcome == "delivered"


def test_a_destination_down_for_good_ends_in_the_dlq_and_replay_delivers(rig: Rig) -> None:
    rig.sinks.script("flaky", Fault(status=503, times=100))
    activation = rig.activate()
    rig.pump(until=lambda: rig.log()["flaky"].outcome == "dead_lettered", timeout_s=20)
    letters = list_dead_letters(rig.sqs, rig.dlq)
    assert [(d["destination"], d["attempts"]) for d in letters] == [("flaky", 4)]

    rig.sinks.reset("flaky")  # it recovers
    assert replay(rig.sqs, rig.dlq, rig.queue, rig.deliveries, "flaky") == 1
    rig.pump(until=lambda: rig.log()["flaky"].outcome == "delivered")
    assert [r.webhook_id for r in rig.sinks.received("flaky")] == [activation.id]
    assert rig.log()["flaky"].round == 1


def test_a_slow_destination_does_not_delay_a_healthy_one(rig: Rig) -> None:
    rig.sinks.script("slow", Fault(status=None, delay_s=3, times=10))
    slow_arrivals: list[float] = []

    def slow_answer(seconds: float) -> None:  # the slow sink holds its answer back
        slow_arrivals.append(time.time())
        time.sleep(seconds)

    rig.sinks._sleep = slow_answer  # the sinks take their wait injected
    rig.activate()
    rig.pump(until=lambda: rig.log().get("slow") is not None, timeout_s=10)
    healthy = rig.sinks.received("healthy")
    assert rig.log()["slow"].attempts[0].status is None  # slow timed out on its own
    # Ordered, not timed (a loaded machine stretches every duration, and a cold
    # start's first secret reads come first): the healthy destination had its
    # delivery before the slow one's request could have timed out (1 s).
    assert healthy and slow_arrivals
    assert healthy[0].at < slow_arrivals[0] + 1.0


def test_held_out_and_missing_consent_send_nothing_and_are_logged(rig: Rig) -> None:
    activation = Activation(
        id="act-held",
        type="segment.entered",
        profile_id="p-9",
        segment_id="churn_risk",
        at=datetime.now(UTC),
        held_out=True,
        consent={"personalization": True},
    )
    rig.sqs.send_message(QueueUrl=rig.queue, MessageBody=activation_json(activation).decode())
    rig.pump()
    assert {r.outcome for r in rig.log("p-9").values()} == {"held_out"}
    assert rig.sinks.received("healthy") == []


# --- fault drills: nothing lost, nothing delivered twice that the receiver can't drop -----

DESTINATIONS = ("flaky", "healthy", "gone", "slow")


def assert_delivered_everywhere_once(rig: Rig, webhook_id: str) -> None:
    """Pump the queue; every destination logged it delivered and received it once."""
    rig.pump()
    assert {d: r.outcome for d, r in rig.log().items()} == dict.fromkeys(DESTINATIONS, "delivered")
    for name in DESTINATIONS:
        assert [r.webhook_id for r in rig.sinks.received(name)] == [webhook_id]


def test_throttled_delivery_log_reads_hand_the_batch_back_before_anything_is_sent(
    rig: Rig,
) -> None:
    rig.faults["dynamodb:BatchGetItem"] = throttle_reads(10)
    activation = rig.activate()
    batch = rig.receive(1)

    with pytest.raises(StorageThrottled):  # Lambda gives the whole batch back
        rig.invoke(batch)
    assert sum(rig.sinks.attempts(d) for d in DESTINATIONS) == 0
    rig.faults.clear()
    rig.release(batch)

    assert_delivered_everywhere_once(rig, activation.id)
    assert all(rig.sinks.attempts(d) == 1 for d in DESTINATIONS)


def test_throttled_delivery_log_writes_resend_under_the_same_webhook_id(rig: Rig) -> None:
    """Delivery is at least once: what was sent but never logged is sent again on the
    retry, with the same webhook-id, and the receiver (the sink) drops the copy."""
    rig.faults["dynamodb:BatchWriteItem"] = fail_calls(10, "ProvisionedThroughputExceededException")
    activation = rig.activate()
    batch = rig.receive(1)

    with pytest.raises(StorageThrottled):
        rig.invoke(batch)
    rig.faults.clear()
    rig.release(batch)

    assert_delivered_everywhere_once(rig, activation.id)
    assert all(rig.sinks.attempts(d) == 2 and rig.sinks.duplicates(d) == 1 for d in DESTINATIONS)


def test_a_crash_midway_through_the_log_writes_resends_only_what_was_not_logged(
    rig: Rig,
) -> None:
    """Seven activations, four destinations: 28 log records, written 25 at a time; the
    second write crashes. The retry skips the 25 logged deliveries and sends the other
    three again under their webhook-id, which the receivers drop."""
    rig.faults["dynamodb:BatchWriteItem"] = fail_calls(10, "InternalServerError", after=1)
    activations = [rig.activate(f"p-{n}") for n in range(7)]
    batch = rig.receive(7)

    with pytest.raises(Exception, match="InternalServerError"):
        rig.invoke(batch)
    rig.faults.clear()
    rig.release(batch)

    rig.pump()
    ids = sorted(a.id for a in activations)
    for name in DESTINATIONS:
        assert sorted(r.webhook_id or "" for r in rig.sinks.received(name)) == ids
    # The records are logged in message order, destinations in configuration order.
    resent = {name: rig.sinks.duplicates(name) for name in DESTINATIONS}
    assert resent == {"flaky": 0, "healthy": 1, "gone": 1, "slow": 1}
    logged = [r for a in activations for r in rig.log(a.profile_id).values()]
    assert len(logged) == 28 and {r.outcome for r in logged} == {"delivered"}


def test_malformed_messages_go_to_failed_events_and_do_not_block_their_neighbours(
    rig: Rig,
) -> None:
    rig.sqs.send_message(QueueUrl=rig.queue, MessageBody="{not json")
    rig.sqs.send_message(QueueUrl=rig.queue, MessageBody='{"type": "segment.entered"}')
    activation = rig.activate()

    rig.pump()
    assert rig._empty()  # the malformed messages were not handed back either
    assert [r.webhook_id for r in rig.sinks.received("healthy")] == [activation.id]
    assert list_dead_letters(rig.sqs, rig.dlq) == []
    s3 = boto3.client("s3", region_name=REGION)
    bucket = rig.names.bucket("failed-events")
    kept = [
        json.loads(line)
        for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
        if "/reason=malformed_record/" in o["Key"]
        for line in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().splitlines()
    ]
    by_raw = {k["raw"]: k["message"] for k in kept}
    assert set(by_raw) == {"{not json", '{"type": "segment.entered"}'}
    assert by_raw["{not json"].startswith("Expecting property name")  # says why
    assert "Field required" in by_raw['{"type": "segment.entered"}']


def test_a_retry_that_cannot_be_queued_leaves_the_message_to_come_again(rig: Rig) -> None:
    rig.sinks.script("flaky", Fault(status=500))
    rig.faults["sqs:SendMessageBatch"] = fail_calls(4)  # every try of the retry's send
    activation = rig.activate()
    batch = rig.receive(1)

    assert rig.invoke(batch) == {batch[0]["MessageId"]}  # not deleted: it comes again
    rig.faults.clear()
    rig.release(batch)

    rig.pump(until=lambda: rig.log()["flaky"].outcome == "delivered")
    assert [r.webhook_id for r in rig.sinks.received("flaky")] == [activation.id]
    assert [a.status for a in rig.log()["flaky"].attempts] == [500, 204]
    assert rig.sinks.attempts("healthy") == 1  # delivered and logged: not sent again


def test_a_dead_letter_that_cannot_be_queued_reaches_the_dlq_on_the_retry(rig: Rig) -> None:
    """The delivery log must not call the task dead-lettered before the dead-letter queue
    took it, or the message that comes again is dropped as settled and lost."""
    rig.sinks.script("flaky", Fault(status=400, times=2))  # failed for good, twice

    def refuse_dead_letters(request: dict[str, Any]) -> dict[str, Any] | None:
        if "activations-dlq" not in request["QueueUrl"]:
            return None
        return {"Error": {"Code": "ThrottlingException", "Message": "slow"}}

    rig.faults["sqs:SendMessageBatch"] = on_calls(4, refuse_dead_letters)
    activation = rig.activate()
    batch = rig.receive(1)

    assert rig.invoke(batch) == {batch[0]["MessageId"]}
    assert list_dead_letters(rig.sqs, rig.dlq) == []
    rig.faults.clear()
    rig.release(batch)

    rig.pump()
    letters = list_dead_letters(rig.sqs, rig.dlq)
    assert [(d["destination"], d["activation_id"], d["attempts"]) for d in letters] == [
        ("flaky", activation.id, 2)
    ]
    assert rig.log()["flaky"].outcome == "dead_lettered"
    assert rig.sinks.attempts("healthy") == 1


def test_an_unreadable_secret_holds_back_only_its_destination(rig: Rig) -> None:
    """Secrets Manager failing for one destination is not that destination's fault and
    no attempt: its delivery waits a retry interval, and the others go out at once."""
    secrets = boto3.client("secretsmanager", region_name=REGION)
    name = "beacon/destinations/flaky"
    value = secrets.get_secret_value(SecretId=name)["SecretString"]
    secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    activation = rig.activate()
    rig.pump(until=lambda: rig.log().get("flaky") is not None)
    assert rig.log()["flaky"].outcome == "pending"
    assert rig.log()["flaky"].reason == "secret unavailable: GetParameterError"
    assert rig.log()["flaky"].attempts == []
    assert all(rig.log()[d].outcome == "delivered" for d in DESTINATIONS if d != "flaky")

    secrets.create_secret(Name=name, SecretString=value)
    rig.pump(until=lambda: rig.log()["flaky"].outcome == "delivered")
    assert [r.webhook_id for r in rig.sinks.received("flaky")] == [activation.id]
    assert len(rig.log()["flaky"].attempts) == 1


# --- erasure (issue 13, the erasure window) --------------------------------------------


def test_activations_of_an_erased_profile_are_neither_delivered_nor_logged(rig: Rig) -> None:
    rig.sinks.script("flaky", Fault(status=500, times=1))
    waiting = rig.activate("p-1")  # flaky's retry of it waits in the queue
    rig.pump(until=lambda: rig.log("p-1").get("flaky") is not None)
    logged = len(rig.log("p-1"))
    assert logged > 0 and rig.deliveries.erase_profiles(["p-1"], datetime.now(UTC)) == logged
    queued = rig.activate("p-1")  # announced before the erasure, still queued
    other = rig.activate("p-2")

    rig.pump()

    delivered = {r.webhook_id for name in ("flaky", "healthy") for r in rig.sinks.received(name)}
    assert queued.id not in delivered and other.id in delivered
    assert waiting.id not in {r.webhook_id for r in rig.sinks.received("flaky")}
    assert rig.log("p-1") == {}  # nothing logged: the erasure asked again finds nothing
    assert rig.deliveries.erase_profiles(["p-1"], datetime.now(UTC)) == 0
    assert rig.calls["dynamodb:BatchGetItem"] > 0 and not list_dead_letters(rig.sqs, rig.dlq)


def test_an_erasure_during_a_delivery_takes_its_log_back(rig: Rig) -> None:
    """Fault drill: the erasure lands while an activation is being delivered, after the
    webhook step read the log (no marker yet) and before it writes the outcome. The
    write would bring back what the erasure deleted; the step finds the marker after
    writing and takes its records back."""
    landed: list[int] = []

    def erasure_lands(_request: dict[str, Any]) -> None:
        if not landed:
            landed.append(rig.deliveries.erase_profiles(["p-1"], datetime.now(UTC)))

    rig.faults["dynamodb:BatchWriteItem"] = erasure_lands
    rig.activate("p-1")
    rig.pump()

    assert landed == [0]
    assert rig.log("p-1") == {}
    assert rig.deliveries.erase_profiles(["p-1"], datetime.now(UTC)) == 0


def test_the_same_activation_twice_in_one_batch_is_delivered_and_logged_once(rig: Rig) -> None:
    # A producer re-sent it (the scoring step redoes a profile whose write lost a race).
    activation = rig.activate()
    rig.sqs.send_message(QueueUrl=rig.queue, MessageBody=activation_json(activation).decode())

    assert rig.invoke(rig.receive(2)) == set()

    assert [r.webhook_id for r in rig.sinks.received("healthy")] == [activation.id]
    assert rig.log()["healthy"].outcome == "delivered"
