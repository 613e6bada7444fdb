"""The scoring Lambda on moto after the segments Lambda: real handlers, real ONNX models.

The segments handler builds profiles from `resolved` records and announces them
on `profile-changes`; those records, read back from the stream, are what the
scoring handler gets. Activations are read back from the SQS queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.scoring import handler as scoring_handler
from infra.local.invoke import LocalFunction
from infra.local.pollers import kinesis_lambda_event
from infra.topology import TOPOLOGY
from tests.integration.aws_helpers import REGION, read_stream
from tests.integration.segments_rig import SegmentsRig, identify, segments_rig, track
from tests.integration.stream_rig import use_function_environment

DAY = 24.0


@pytest.fixture
def rigs(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SegmentsRig, Any]]:
    with segments_rig(monkeypatch) as (rig, _step):
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName=rig.names.queue("activations"))["QueueUrl"]
        use_function_environment(monkeypatch, "scoring", rig.names)
        with rig.running(scoring_handler.scoring_step) as step:
            step.clock = lambda: rig.clock[0]
            yield rig, (sqs, queue)


def lapsed(profile: str) -> list[Any]:
    return [
        identify(profile, -201 * DAY, email=f"{profile}@example.org"),
        track(profile, -200 * DAY, "Order Completed", {"total": 80.0}),
        track(profile, -150 * DAY, "Order Completed", {"total": 60.0}),
        track(profile, -100 * DAY),
    ]


def active(profile: str) -> list[Any]:
    return [
        identify(profile, -21 * DAY, email=f"{profile}@example.org"),
        track(profile, -20 * DAY, "Order Completed", {"total": 80.0}),
        track(profile, -2 * DAY, "Order Completed", {"total": 60.0}),
        track(profile, -1 * DAY),
    ]


def changes_event(rig: SegmentsRig, skip: int = 0) -> dict[str, Any]:
    stream = rig.names.stream("profile-changes")
    records = [r for shard in read_stream(rig.kinesis, stream).values() for r in shard][skip:]
    arn = f"arn:aws:kinesis:{REGION}:000000000000:stream/{stream}"
    return kinesis_lambda_event(records, "shardId-000000000000", arn, REGION)


def score(rig: SegmentsRig, event: dict[str, Any]) -> list[str]:
    answer = LocalFunction(TOPOLOGY.function("scoring")).invoke(event)
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]]


def activations(sqs: Any, queue: str) -> list[dict[str, Any]]:
    out = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        if not answer.get("Messages"):
            return out
        out += [json.loads(m["Body"]) for m in answer["Messages"]]


def test_an_at_risk_customer_scores_high_enters_churn_risk_and_is_activated(rigs) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records([*lapsed("lapsed"), *active("loyal")]))
    rig.calls.clear()

    assert score(rig, changes_event(rig)) == []

    at_risk, loyal = rig.profile("lapsed"), rig.profile("loyal")
    assert at_risk is not None and loyal is not None
    churn = at_risk.scores["churn"]
    assert churn["probability"] >= 0.7 and churn["thresholds_reached"] == ["high", "medium"]
    assert len(churn["model_version"]) == 16
    assert loyal.scores["churn"]["probability"] < 0.4
    assert "churn_risk" in at_risk.state.memberships
    assert "churn_risk" not in loyal.state.memberships
    # One write per profile, one read for the batch.
    assert rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"] == 2
    assert rig.calls["BatchGetItem"] == 1

    sent = activations(sqs, queue)
    kinds = {(a["profile_id"], a["type"], a.get("segment_id") or a.get("threshold")) for a in sent}
    assert ("lapsed", "segment.entered", "churn_risk") in kinds
    assert ("lapsed", "score.crossed", "high") in kinds
    assert ("lapsed", "segment.entered", "stage_retention") in kinds  # forwarded from segments
    entered = next(a for a in sent if a.get("segment_id") == "churn_risk")
    assert entered["email"] == "lapsed@example.org" and entered["user_id"] == "user-lapsed"
    assert len({a["id"] for a in sent}) == len(sent)


def test_a_replayed_batch_writes_nothing_and_crosses_nothing_again(rigs) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(lapsed("lapsed")))
    event = changes_event(rig)
    assert score(rig, event) == []
    first = activations(sqs, queue)
    rig.calls.clear()

    assert score(rig, event) == []

    assert rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"] == 0
    again = activations(sqs, queue)
    # Only the segments step's committed changes are forwarded again, with the same ids.
    assert {a["id"] for a in again} <= {a["id"] for a in first}
    assert all(a["type"] != "score.crossed" for a in again)


def test_a_malformed_change_record_goes_to_failed_events(rigs) -> None:
    rig, _ = rigs
    stream = rig.names.stream("profile-changes")
    rig.kinesis.put_record(StreamName=stream, Data=b"{oops", PartitionKey="x")
    assert score(rig, changes_event(rig)) == []
    keys = [
        o["Key"]
        for o in rig.s3.list_objects_v2(Bucket=rig.names.bucket("failed-events"))["Contents"]
    ]
    assert any("malformed_record" in k for k in keys)


def test_models_status_reads_the_days_drift_histograms(rigs) -> None:
    from functions.shared.config import load_config
    from functions.shared.dal.counters import DailyCounters
    from functions.shared.dal.dynamo import DynamoTable
    from infra.model_status import models_status
    from tests.integration.stream_rig import CONFIG

    rig, _ = rigs
    rig.deliver_ok(rig.records([*lapsed("lapsed"), *active("loyal")]))
    assert score(rig, changes_event(rig)) == []

    counters = DailyCounters(DynamoTable(rig.names.table("counters"), rig.raw_dynamodb))
    day = rig.clock[0].date().isoformat()
    status = {
        s["model"]: s for s in models_status(load_config(CONFIG), CONFIG.parent, counters, day)
    }
    assert set(status) == {"churn", "purchase"}
    churn = status["churn"]
    assert churn["rows_scored"] == 2 and len(churn["version"]) == 16
    assert set(churn["psi"]) >= {"recency_days", "orders_365d"}
    assert all(value >= 0 for value in churn["psi"].values())


def test_a_lost_race_is_redone_and_announces_each_activation_once(rigs) -> None:
    from tests.integration.stream_rig import on_calls
    from tests.integration.test_segments_step import CONFLICT

    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(lapsed("lapsed")))
    rig.faults["TransactWriteItems"] = on_calls(1, lambda _r: CONFLICT)

    assert score(rig, changes_event(rig)) == []  # redone within the invocation

    sent = activations(sqs, queue)
    crossings = [(a["type"], a.get("segment_id") or a.get("threshold")) for a in sent]
    # Sent before each write attempt, with the same ids both times: one per change.
    assert len({a["id"] for a in sent}) == len(set(crossings))
    assert "churn_risk" in rig.profile("lapsed").state.memberships
