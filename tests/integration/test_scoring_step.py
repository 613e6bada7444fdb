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
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from infra.local.invoke import LocalFunction
from infra.local.pollers import kinesis_lambda_event
from infra.topology import TOPOLOGY
from tests.integration.aws_helpers import REGION, read_stream
from tests.integration.segments_rig import SegmentsRig, identify, segments_rig, track
from tests.integration.stream_rig import (
    fail_calls,
    hook_client,
    throttle_puts,
    throttle_reads,
    use_function_environment,
)
from tests.integration.test_identity_step import sequences

DAY = 24.0


@pytest.fixture
def rigs(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SegmentsRig, Any]]:
    with segments_rig(monkeypatch) as (rig, _step):
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName=rig.names.queue("activations"))["QueueUrl"]
        use_function_environment(monkeypatch, "scoring", rig.names)
        with rig.running(scoring_handler.scoring_step) as step:
            step.clock = lambda: rig.clock[0]
            # Retries without their backoff sleeps; SQS calls counted and faulted too.
            step.profiles.table.sleep = lambda _s: None  # type: ignore[attr-defined]
            step.activations.sleep = lambda _s: None  # type: ignore[attr-defined]
            hook_client("sqs", rig.faults, rig.calls)
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
    out: list[dict[str, Any]] = []
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
    # Exposed to churn_winback by the scoring step, with its covariate: what they had
    # spent before (lifetime_value, 80 + 60), frozen at the exposure.
    (exposure,) = at_risk.state.exposures.values()
    assert exposure.covariates == {"order_30d": 14_000}
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


def test_models_status_reads_the_days_drift_histograms(rigs) -> None:
    from cli.model_status import models_status
    from functions.shared.config import load_config
    from functions.shared.dal.counters import DailyCounters
    from functions.shared.dal.dynamo import DynamoTable
    from tests.integration.stream_rig import CONFIG

    rig, _ = rigs
    rig.deliver_ok(rig.records([*lapsed("lapsed"), *active("loyal")]))
    assert score(rig, changes_event(rig)) == []

    counters = DailyCounters(DynamoTable(rig.names.table("counters"), rig.raw_dynamodb))
    day = rig.clock[0].date().isoformat()
    status = {
        s["model"]: s for s in models_status(load_config(CONFIG), CONFIG.parent, counters, day)
    }
    assert set(status) == {"churn", "purchase", "personas"}
    churn = status["churn"]
    assert churn["rows_scored"] == 2 and len(churn["version"]) == 16
    assert set(churn["psi"]) >= {"recency_days", "orders_365d"}
    assert all(value >= 0 for value in churn["psi"].values())
    # The persona mix is tracked like a feature, next to the features behind it.
    personas = status["personas"]
    assert personas["rows_scored"] == 2 and set(personas["psi"]) >= {"persona", "orders_365d"}


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


def test_a_change_read_before_its_profile_write_landed_still_activates(rigs) -> None:
    """The segments step puts its change record before it writes the profile; a
    scoring read in between finds no profile (or an older one). The record is read
    again, not dropped with its activations."""
    from tests.integration.stream_rig import on_calls

    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(lapsed("lapsed")))
    rig.faults["BatchGetItem"] = on_calls(
        1, lambda request: {"Responses": {t: [] for t in request["RequestItems"]}}
    )
    rig.calls.clear()

    assert score(rig, changes_event(rig)) == []

    assert rig.calls["BatchGetItem"] == 2  # the profile was read again
    kinds = {(a["type"], a.get("segment_id")) for a in activations(sqs, queue)}
    assert ("segment.entered", "churn_risk") in kinds
    assert ("segment.entered", "stage_retention") in kinds  # forwarded from segments


def test_an_old_change_of_a_profile_that_is_gone_is_not_retried(rigs) -> None:
    from datetime import timedelta

    from tests.integration.stream_rig import on_calls

    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(lapsed("lapsed")))
    event = changes_event(rig)
    rig.clock[0] += timedelta(hours=1)
    rig.faults["BatchGetItem"] = on_calls(
        9, lambda request: {"Responses": {t: [] for t in request["RequestItems"]}}
    )
    rig.calls.clear()

    assert score(rig, event) == []

    assert rig.calls["BatchGetItem"] == 1
    assert activations(sqs, queue) == []


# --- fault drills: nothing lost, nothing written or announced twice ---------------------


def one_batch(rig: SegmentsRig) -> dict[str, Any]:
    """Every change record as one shard's batch, numbered in order: moto numbers each
    shard from 1, and a partial batch response names records by sequence number."""
    event = changes_event(rig)
    for n, record in enumerate(event["Records"], start=1):
        record["kinesis"]["sequenceNumber"] = str(49_900_000_000_000_000_000_000 + n)
    return event


def versions(rig: SegmentsRig, *profiles: str) -> dict[str, int]:
    return {p: int(rig.item(p)["version"]) for p in profiles}


def stream_order(event: dict[str, Any]) -> list[str]:
    """The profiles of a batch's change records, in the order they come (and are written)."""
    return [r["kinesis"]["partitionKey"] for r in event["Records"]]


def records_of(event: dict[str, Any], *profiles: str) -> list[str]:
    """The sequence numbers of these profiles' change records."""
    return [
        r["kinesis"]["sequenceNumber"]
        for r in event["Records"]
        if r["kinesis"]["partitionKey"] in profiles
    ]


def resumed(event: dict[str, Any], failed: list[str]) -> dict[str, Any]:
    """What Lambda delivers next: the batch from its first reported failure on."""
    first = min(sequences(event).index(s) for s in failed)
    return dict(event, Records=event["Records"][first:])


def announced(sent: list[dict[str, Any]]) -> dict[tuple[str, str, str], set[str]]:
    """(profile, type, segment or threshold) -> the activation ids it was sent under."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for a in sent:
        key = (a["profile_id"], a["type"], a.get("segment_id") or a["threshold"])
        out.setdefault(key, set()).add(a["id"])
    return out


def writes(rig: SegmentsRig) -> int:
    return rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"]


def test_throttled_profile_reads_hand_the_batch_back_and_the_retry_scores_once(rigs) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records([*lapsed("a"), *lapsed("b")]))
    event = one_batch(rig)
    rig.faults["BatchGetItem"] = throttle_reads(10)
    rig.kinesis_calls.clear()

    assert score(rig, event) == sequences(event)  # every record handed back
    assert activations(sqs, queue) == [] and versions(rig, "a", "b") == {"a": 1, "b": 1}
    rig.faults.clear()
    rig.calls.clear()

    assert score(rig, event) == []
    assert versions(rig, "a", "b") == {"a": 2, "b": 2} and writes(rig) == 2
    sent = activations(sqs, queue)
    assert len(sent) == len(announced(sent)) == 8  # four per profile, each once
    assert rig.kinesis_calls.total() == 0  # scoring writes nothing to Kinesis


def test_throttled_profile_writes_fail_only_their_records_and_the_retry_writes_once(
    rigs,
) -> None:
    """Activations go out before the write: the retry re-sends the throttled profiles'
    under the same ids (the webhook step deduplicates), and crosses nothing new."""
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records([*lapsed("a"), *active("b"), *lapsed("c")]))
    event = one_batch(rig)
    # The first lapsed profile's write (a transaction) and b's (an update) are throttled.
    throttled, written = [p for p in stream_order(event) if p != "b"]
    rig.faults["TransactWriteItems"] = throttle_puts(1)
    rig.faults["UpdateItem"] = throttle_puts(1)
    rig.calls.clear()

    failed = score(rig, event)
    assert sorted(failed) == sorted(records_of(event, throttled, "b"))
    assert versions(rig, throttled, "b", written) == {throttled: 1, "b": 1, written: 2}
    first = activations(sqs, queue)
    rig.faults.clear()

    assert score(rig, resumed(event, failed)) == []
    assert versions(rig, "a", "b", "c") == {"a": 2, "b": 2, "c": 2}
    assert writes(rig) == 3 + 2  # three tried, two of them again
    again = activations(sqs, queue)
    assert {a["id"] for a in again} <= {a["id"] for a in first}
    assert all(len(ids) == 1 for ids in announced(first + again).values())
    assert {a["profile_id"] for a in again if a["type"] == "score.crossed"} == {throttled}


def test_a_crash_midway_through_the_writes_writes_each_profile_once(rigs) -> None:
    """Lambda retries the whole batch: the profile written before the crash is not
    written or crossed again, the others are announced again under the same ids."""
    from functions.scoring.step import drift_counter
    from functions.shared.dal.counters import DailyCounters
    from functions.shared.dal.dynamo import DynamoTable

    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records([*lapsed("a"), *lapsed("b"), *lapsed("c")]))
    event = one_batch(rig)
    written, *rest = stream_order(event)  # the first write goes through, the second crashes
    rig.faults["TransactWriteItems"] = fail_calls(10, "InternalServerError", after=1)
    rig.calls.clear()

    with pytest.raises(Exception, match="InternalServerError"):
        score(rig, event)
    assert versions(rig, written, *rest) == {written: 2} | dict.fromkeys(rest, 1)
    first = activations(sqs, queue)
    rig.faults.clear()

    assert score(rig, event) == []
    assert versions(rig, "a", "b", "c") == {"a": 2, "b": 2, "c": 2}
    assert writes(rig) == 2 + 2  # one, the crash, then the other two
    again = activations(sqs, queue)
    assert {a["id"] for a in again} <= {a["id"] for a in first}
    assert all(len(ids) == 1 for ids in announced(first + again).values())
    assert {a["profile_id"] for a in again if a["type"] == "score.crossed"} == set(rest)
    # The batch's drift histograms are counted once, not once per attempt.
    counters = DailyCounters(DynamoTable(rig.names.table("counters"), rig.raw_dynamodb))
    churn = scoring_handler.scoring_step().primaries[0].manifest
    day = rig.clock[0].date().isoformat()
    assert counters.day_totals(drift_counter(churn), day)["rows"] == 3


def test_refused_activation_sends_fail_their_profile_and_the_retry_announces_once(
    rigs,
) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records([*lapsed("a"), *lapsed("b"), *lapsed("c")]))
    event = one_batch(rig)  # 12 activations, four per profile, sent ten at a time
    *sent_whole, last = stream_order(event)
    # SQS takes the first ten and refuses the last two (the last profile's) every time.
    rig.faults["sqs:SendMessageBatch"] = fail_calls(4, after=1)

    assert score(rig, event) == records_of(event, last)
    assert versions(rig, *sent_whole, last) == dict.fromkeys(sent_whole, 2) | {last: 1}
    first = activations(sqs, queue)
    assert len(first) == 10
    rig.faults.clear()

    assert score(rig, resumed(event, records_of(event, last))) == []
    assert versions(rig, "a", "b", "c") == {"a": 2, "b": 2, "c": 2}
    sent = first + activations(sqs, queue)
    assert len(announced(sent)) == 12  # every activation reached the queue
    assert all(len(ids) == 1 for ids in announced(sent).values())  # under one id each


def test_a_malformed_change_record_does_not_hold_up_its_neighbours(rigs) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(lapsed("a")))
    stream = rig.names.stream("profile-changes")
    rig.kinesis.put_record(StreamName=stream, Data=b"[]", PartitionKey="x")
    rig.deliver_ok(rig.records(lapsed("b")))

    assert score(rig, one_batch(rig)) == []
    assert versions(rig, "a", "b") == {"a": 2, "b": 2}
    assert len(announced(activations(sqs, queue))) == 8
    keys = [
        o["Key"]
        for o in rig.s3.list_objects_v2(Bucket=rig.names.bucket("failed-events"))["Contents"]
    ]
    assert len(keys) == 1 and "reason=malformed_record" in keys[0]


# --- erasure (issue 13, the erasure window) --------------------------------------------


def erase(rig: SegmentsRig, profile: str) -> int:
    table = DynamoTable(rig.names.table("profiles"), rig.raw_dynamodb)
    return ProfilesStore(table).erase([profile], rig.clock[0])


MARKER = {"pk", "sk", "version", "erased_at", "expires_at"}


def test_changes_of_an_erased_profile_are_not_scored_and_activate_nothing(rigs) -> None:
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records([*lapsed("lapsed"), *active("loyal")]))
    assert erase(rig, "lapsed") == 1

    assert score(rig, changes_event(rig)) == []

    assert set(rig.item("lapsed")) == MARKER  # no scores written onto the marker
    assert {a["profile_id"] for a in activations(sqs, queue)} == {"loyal"}


def test_an_erasure_between_the_read_and_the_write_is_not_written_over(rigs) -> None:
    """Fault drill: the erasure lands after scoring read the profile and sent its
    activations (the webhook step's marker stops those), before its write. The write,
    conditional on the version read, fails; the profile is read again and skipped."""
    rig, (sqs, queue) = rigs
    rig.deliver_ok(rig.records(lapsed("lapsed")))
    landed: list[int] = []

    def erasure_lands(_request: dict[str, Any]) -> None:
        if not landed:
            landed.append(erase(rig, "lapsed"))

    rig.faults["TransactWriteItems"] = rig.faults["UpdateItem"] = erasure_lands
    assert score(rig, changes_event(rig)) == []

    assert landed == [1]
    assert set(rig.item("lapsed")) == MARKER
    sent = activations(sqs, queue)
    assert len(sent) == len({a["id"] for a in sent})  # the redone round sent none again
