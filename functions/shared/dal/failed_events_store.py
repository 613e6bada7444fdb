"""The failed-events store: JSON lines on S3, one object per step, day, reason and request."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from functions.shared.dal.s3_bucket import S3Bucket
from functions.shared.failed_events import FailedEvent, object_key, record_key


class S3FailedEventStore(S3Bucket):
    def put(self, failures: Sequence[FailedEvent], request_id: str) -> None:
        """Write every failure; raises if S3 does, so the caller answers 5xx."""
        groups: dict[tuple[str, str, str], list[FailedEvent]] = defaultdict(list)
        for failure in failures:
            groups[(failure.step, failure.day(), failure.reason)].append(failure)
        for (step, day, reason), items in groups.items():
            body = "".join(item.model_dump_json(exclude_none=True) + "\n" for item in items)
            self.s3.put_object(
                Bucket=self.bucket,
                Key=object_key(step, day, reason, items[0].failed_at, request_id),
                Body=body.encode("utf-8"),
                ContentType="application/x-ndjson",
            )

    def put_each(self, failures: Sequence[FailedEvent]) -> None:
        """One object per failure, keyed by its record: a redelivered batch overwrites.

        Failures of stream records are rare (a step writing what the next cannot
        read), so a PUT each costs little and keeps every record once."""
        for failure in failures:
            if not failure.request_id:
                raise ValueError(f"{failure.step}: a record's failure needs its request_id")
            self.s3.put_object(
                Bucket=self.bucket,
                Key=record_key(failure),
                Body=(failure.model_dump_json(exclude_none=True) + "\n").encode("utf-8"),
                ContentType="application/x-ndjson",
            )
