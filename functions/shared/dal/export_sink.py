"""The exports' S3 sink: Parquet parts and audience files under a bucket's prefix
(functions/exports/parquet.py `Sink`); keys are relative to `root`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functions.shared.dal.s3_bucket import S3Bucket

MAX_DELETE = 1000  # DeleteObjects takes at most this many keys


class S3Sink(S3Bucket):
    def __init__(self, bucket: str, root: str = "", s3: Any | None = None) -> None:
        super().__init__(bucket, s3)
        self.root = root

    def put(self, key: str, body: bytes) -> None:
        content = "text/csv" if key.endswith(".csv") else "application/vnd.apache.parquet"
        self.s3.put_object(
            Bucket=self.bucket, Key=f"{self.root}{key}", Body=body, ContentType=content
        )

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.root}{prefix}"
        )
        for page in pages:
            found += [str(o["Key"]).removeprefix(self.root) for o in page.get("Contents", [])]
        return sorted(found)

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), MAX_DELETE):
            chunk = keys[start : start + MAX_DELETE]
            self.s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": f"{self.root}{k}"} for k in chunk], "Quiet": True},
            )
