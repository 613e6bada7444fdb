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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from functions.shared.activations import Activation, activation_json
from functions.shared.config import load_config
from functions.shared.dal import clients
from functions.shared.dal.deliveries_store import DeliveriesStore
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.destinations import local_secret_value
from functions.webhook import handler
from infra.dlq import list_dead_letters, replay
from infra.local.aws import table_definition
from infra.local.gateway import Gateway
from infra.local.invoke import LocalFunction
from infra.local.pollers import sqs_lambda_event
from infra.local.sinks import PREFIX, Fault, Sinks
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import HOST, REGION, free_port
from tests.integration.stream_rig import CONFIG, use_function_environment

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
    monkeypatch.setenv("BEACON_LOCAL_GATEWAY", f"http://{HOST}:{port}")
    clients.client.cache_clear()
    handler.webhook_step.cache_clear()
    try:
        yield Rig(names, sinks, f"http://{HOST}:{port}")
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
    started = time.time()  # the sinks note arrivals in wall-clock time
    rig.activate()
    rig.pump(until=lambda: rig.log().get("healthy") is not None, timeout_s=10)
    healthy = rig.sinks.received("healthy")
    assert healthy and healthy[0].at - started < 1.5  # not behind slow's 1 s timeout
    assert rig.log()["slow"].attempts[0].status is None  # slow timed out on its own


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
