"""S3FailedEventStore against moto: one JSON-lines object per step, day and reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.failed_events import FailedEvent
from infra.topology import ResourceNames
from tests.integration.aws_helpers import create_bucket

DAY_1 = datetime(2026, 11, 22, 20, 45, 3, 123456, tzinfo=UTC)
DAY_2 = datetime(2026, 11, 23, 0, 0, 1, tzinfo=UTC)
KEY = re.compile(
    r"^(?P<step>[a-z]+)/dt=(?P<day>\d{4}-\d{2}-\d{2})/reason=(?P<reason>[a-z_]+)/"
    r"\d{2}-\d{2}-\d{2}\.\d{6}-(?P<request>[\w-]+)\.jsonl$"
)


@pytest.fixture
def bucket(s3: Any) -> str:
    return create_bucket(s3, ResourceNames())


def failure(at: datetime, reason: str, raw: str, index: int | None = None) -> FailedEvent:
    return FailedEvent(
        failed_at=at,
        step="ingest",
        reason=reason,
        message=f"{reason} at index {index}",
        raw=raw,
        field="event" if reason == "invalid_event" else None,
        index=index,
        protocol="segment",
        request_id="req-1",
        path="/v1/batch",
    )


def stored_objects(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"]) for item in listing}


def test_failures_are_grouped_per_step_day_and_reason(s3: Any, bucket: str) -> None:
    failures = [
        failure(DAY_1, "invalid_event", '{"type":"track"}', index=0),
        failure(DAY_1, "event_too_large", "x" * 100, index=1),
        failure(DAY_1, "invalid_event", '{"type":"nope"}', index=2),
        failure(DAY_2, "invalid_event", "café ☕ — ünïcödé", index=3),
        failure(DAY_1, "invalid_event", "base64:AAEC/w==", index=4),
    ]

    S3FailedEventStore(bucket, s3=s3).put(failures, request_id="req-1")

    objects = stored_objects(s3, bucket)
    groups: dict[tuple[str, str, str], list[FailedEvent]] = {}
    for key, obj in objects.items():
        match = KEY.match(key)
        assert match, key
        assert match["request"] == "req-1"
        assert obj["ContentType"] == "application/x-ndjson"
        lines = obj["Body"].read().decode("utf-8").splitlines()
        groups[(match["step"], match["day"], match["reason"])] = [
            FailedEvent.model_validate_json(line) for line in lines
        ]
    assert groups == {
        ("ingest", "2026-11-22", "invalid_event"): [failures[0], failures[2], failures[4]],
        ("ingest", "2026-11-22", "event_too_large"): [failures[1]],
        ("ingest", "2026-11-23", "invalid_event"): [failures[3]],
    }


def test_object_key_names_the_time_of_the_first_failure(s3: Any, bucket: str) -> None:
    S3FailedEventStore(bucket, s3=s3).put(
        [failure(DAY_1, "unauthorized", "k=bad")], request_id="abc-123"
    )

    assert list(stored_objects(s3, bucket)) == [
        "ingest/dt=2026-11-22/reason=unauthorized/20-45-03.123456-abc-123.jsonl"
    ]


def test_steps_are_kept_apart(s3: Any, bucket: str) -> None:
    ingest = failure(DAY_1, "invalid_event", "a")
    consent = ingest.model_copy(update={"step": "consent"})

    S3FailedEventStore(bucket, s3=s3).put([ingest, consent], request_id="req-1")

    prefixes = sorted(key.split("/", 1)[0] for key in stored_objects(s3, bucket))
    assert prefixes == ["consent", "ingest"]


def test_nothing_to_store_writes_nothing(s3: Any, bucket: str) -> None:
    S3FailedEventStore(bucket, s3=s3).put([], request_id="req-1")

    assert stored_objects(s3, bucket) == {}


def test_s3_errors_propagate(s3: Any, bucket: str) -> None:
    store = S3FailedEventStore("it-no-such-bucket", s3=s3)

    with pytest.raises(ClientError) as raised:
        store.put([failure(DAY_1, "invalid_event", "a")], request_id="req-1")

    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_redelivered_records_failure_is_kept_once(s3: Any, bucket: str) -> None:
    """A stream step's batch comes again after a crash: its malformed record must not
    be counted twice, and a different batch boundary must not matter."""
    store = S3FailedEventStore(bucket, s3=s3)
    first = FailedEvent(
        failed_at=DAY_1,
        step="segments",
        reason="malformed_record",
        message="not JSON",
        raw="{oops",
        request_id="49660000000000000000000000000000000000000000000000000001",
    )
    other = first.model_copy(update={"request_id": "4966-2", "raw": "[]"})
    store.put_each([first])
    store.put_each([first.model_copy(update={"failed_at": DAY_1.replace(minute=50)}), other])
    keys = sorted(stored_objects(s3, bucket))
    assert keys == [
        "segments/dt=2026-11-22/reason=malformed_record/record-4966-2.jsonl",
        "segments/dt=2026-11-22/reason=malformed_record/record-"
        "49660000000000000000000000000000000000000000000000000001.jsonl",
    ]
