"""The model registry on S3 (functions/scoring/registry.py has the logic).

Versions are written once (`If-None-Match: *`: a version is its content hash, so
an existing one is the same bytes). Pointers are replaced with `If-Match` on the
ETag that was read, or created with `If-None-Match: *`: two operators promoting
at once cannot both win; the loser gets `PointerConflict` and retries on the new
pointer."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.shared.dal.s3_bucket import S3Bucket
from functions.shared.model_registry import (
    POINTERS_PREFIX,
    VERSIONS_PREFIX,
    Pointer,
    manifest_key,
    onnx_key,
    parse_pointer,
    pointer_body,
    pointer_key,
    version_prefix,
)


class PointerConflict(Exception):
    """The pointer changed between its read and the conditional write."""


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class ModelRegistryStore(S3Bucket):
    def put_version(self, name: str, version: str, manifest: bytes, onnx: bytes) -> bool:
        """Store a version (ONNX first, the manifest last: a version is complete once
        its manifest exists). False if it was there already."""
        if self.has_version(name, version):
            return False
        self.s3.put_object(Bucket=self.bucket, Key=onnx_key(name, version), Body=onnx)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=manifest_key(name, version),
                Body=manifest,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as err:
            if _code(err) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def has_version(self, name: str, version: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=manifest_key(name, version))
        except ClientError as err:
            if _code(err) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def get_version(self, name: str, version: str) -> tuple[bytes, bytes]:
        """(manifest bytes, ONNX bytes) of a stored version."""
        manifest = self._get(manifest_key(name, version))
        onnx = self._get(onnx_key(name, version))
        if manifest is None or onnx is None:
            raise KeyError(f"{name} version {version} is not in the registry")
        return manifest, onnx

    def versions(self, name: str) -> list[tuple[str, str]]:
        """Every complete version of `name` as (version, when its manifest was stored)."""
        found = []
        for item in self._list(version_prefix(name)):
            key: str = item["Key"]
            if key.endswith("/manifest.json"):
                found.append((key.split("/")[-2], item["LastModified"].isoformat()))
        return sorted(found, key=lambda v: v[1])

    def names(self) -> list[str]:
        """Every model with a pointer or a stored version."""
        found = set()
        for item in self._list(POINTERS_PREFIX):
            found.add(item["Key"][len(POINTERS_PREFIX) :].removesuffix(".json"))
        for item in self._list(VERSIONS_PREFIX):
            found.add(item["Key"][len(VERSIONS_PREFIX) :].split("/")[0])
        return sorted(found)

    def read_pointer(self, name: str) -> tuple[Pointer | None, str | None]:
        """The pointer and its ETag (None, None when the model has none)."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=pointer_key(name))
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return None, None
            raise
        return parse_pointer(answer["Body"].read(), name), str(answer["ETag"])

    def write_pointer(self, pointer: Pointer, etag: str | None) -> None:
        """Replace the pointer read with `etag` (None: create it where none exists)."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=pointer_key(pointer.model),
                Body=pointer_body(pointer),
                ContentType="application/json",
                **condition,
            )
        except ClientError as err:
            if _code(err) in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PointerConflict(
                    f"the pointer of {pointer.model!r} changed meanwhile; read it and retry"
                ) from err
            raise

    def _get(self, key: str) -> bytes | None:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return None
            raise
        return body

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            items.extend(page.get("Contents", []))
        return items
