"""One S3 bucket, with the function's cached client unless a test gives its own."""

from __future__ import annotations

from typing import Any

from functions.shared.dal.clients import client


class S3Bucket:
    def __init__(self, bucket: str, s3: Any | None = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        return self._s3 or client("s3")
