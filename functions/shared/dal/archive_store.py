"""The event archive's bucket: Parquet objects per table and day, erasure requests.

The store moves bytes; `archive.py` decides names and rows, `archive_parquet.py`
encodes them (imported only by the methods that need it, so a function that
only records erasure requests does not load pyarrow).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

from functions.shared.archive import (
    ERASURES,
    EVENTS,
    MERGES,
    ErasureRequest,
    Row,
    merged_into,
    table_prefix,
)
from functions.shared.dal.s3_bucket import S3Bucket


class ArchiveStore(S3Bucket):
    # --- objects ------------------------------------------------------------

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet"
        )

    def get(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def listed(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """(key, last modified) of every object under `prefix`."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"]), item["LastModified"]

    def keys(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self.listed(prefix))

    def files(self, table: str, since: datetime | None = None) -> list[str]:
        """The table's Parquet files (written at or after `since`, if given)."""
        return [
            key
            for key, modified in self.listed(table_prefix(table))
            if key.endswith(".parquet") and (since is None or modified >= since)
        ]

    def rows(self, table: str) -> Iterator[Row]:
        from functions.shared.archive_parquet import rows_of

        for key in self.files(table):
            yield from rows_of(self.get(key))

    # --- erasure ------------------------------------------------------------

    def erasure_requests(self) -> list[ErasureRequest]:
        return [
            ErasureRequest.from_json(self.get(key))
            for key in self.keys(f"{ERASURES}/")
            if key.endswith(".json")
        ]

    def request_erasure(self, request: ErasureRequest) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{ERASURES}/{request.request_id}.json",
            Body=request.to_json().encode("utf-8"),
            ContentType="application/json",
        )

    def erase(self, request: ErasureRequest, since: datetime | None = None) -> int:
        """Rewrite every file holding a row of the request (row-level delete by
        rewrite): the rows removed. A file left with no row is written empty rather
        than deleted (the grant stays put and read; the writer's name stays taken)."""
        from functions.shared.archive_parquet import rewrite

        removed = 0
        for table in (EVENTS, MERGES):
            for key in self.files(table, since):
                body, gone = rewrite(table, self.get(key), [request])
                if body is None:
                    continue
                self.put(key, body)
                removed += gone
        return removed


def erase_pending(store: ArchiveStore, now: datetime) -> int:
    """The erasure job: for each request in force, rewrite the files that hold its
    rows: all of them the first time, then those written since its last pass
    began (rows that landed after the erasure: Firehose does not read the
    requests). Returns the rows removed. The requests expire by lifecycle."""
    removed = 0
    for request in store.erasure_requests():
        # A minute's margin: S3's LastModified and this clock may disagree a little.
        since = request.checked_at - timedelta(minutes=1) if request.checked_at else None
        removed += store.erase(request, since)
        store.request_erasure(replace(request, checked_at=now))
    return removed


class ArchivedHistory:
    """A person's archived events: what the read API's export lists and its
    erasure removes (`functions/api/archive_data.py`)."""

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store

    def profile_ids(self, profile_ids: set[str]) -> set[str]:
        """The ids and every id merged into them: a loser's rows belong to the survivor."""
        return merged_into(profile_ids, self.store.rows(MERGES))

    def events_of(self, profile_ids: set[str]) -> list[Row]:
        ids = self.profile_ids(profile_ids)
        return [row for row in self.store.rows(EVENTS) if row["profile_id"] in ids]

    def erase(self, request: ErasureRequest) -> int:
        """Record the request first (the writer drops the person's rows still on
        their way), then rewrite the files already written."""
        self.store.request_erasure(request)
        return self.store.erase(request)
