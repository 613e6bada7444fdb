"""The model registry's pure logic: keys, the pointer object and its transitions.

Each model name (a manifest's `name`, e.g. `churn`) has immutable versions in the
models bucket, `models/<name>/<version>/model.onnx` + `manifest.json`, where the
version is the manifest's (the first 16 hex digits of the ONNX file's SHA-256: a
content hash, so pushing the same file twice is the same version). A small
pointer object per name, `pointers/<name>.json`, says which version is `active`
(scored and written on profiles), which is the `shadow` (scored and reported,
never written) and the earlier actives, newest last, so `rollback` returns to
the one before. No pointer, or no `active` in it: the model bundled with the
scoring function is the active one (docs/models.md).

No boto3 here: the S3 side is `functions.shared.dal.model_registry_store`; checking a
version's files and loading them is `functions.scoring.live_models`.
"""

from __future__ import annotations

import json
import re

from pydantic import Field, ValidationError

from functions.shared.schema import Strict

POINTERS_PREFIX = "pointers/"
VERSIONS_PREFIX = "models/"
HISTORY_KEPT = 20  # earlier actives a pointer remembers (the rollback chain)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")


class RegistryError(Exception):
    """A registry request that cannot be done (the message says why)."""


class Pointer(Strict):
    """Which versions of one model run, and the actives before."""

    schema_version: int = 1
    model: str
    active: str | None = None
    shadow: str | None = None
    history: list[str] = Field(default_factory=list, max_length=HISTORY_KEPT)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise RegistryError(
            f"model name {name!r}: lower-case letters, digits, '-' and '_', at most 64"
        )
    return name


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise RegistryError(f"version {version!r}: 16 lower-case hex digits")
    return version


def pointer_key(name: str) -> str:
    return f"{POINTERS_PREFIX}{check_name(name)}.json"


def version_prefix(name: str) -> str:
    return f"{VERSIONS_PREFIX}{check_name(name)}/"


def onnx_key(name: str, version: str) -> str:
    return f"{version_prefix(name)}{check_version(version)}/model.onnx"


def manifest_key(name: str, version: str) -> str:
    return f"{version_prefix(name)}{check_version(version)}/manifest.json"


def empty_pointer(name: str) -> Pointer:
    return Pointer(model=check_name(name))


def promote(pointer: Pointer, version: str) -> Pointer:
    """`version` becomes active; the previous active joins the history. Promoting the
    shadow clears the shadow slot."""
    check_version(version)
    if pointer.active == version:
        raise RegistryError(f"{pointer.model}: {version} is already active")
    history = [*pointer.history, pointer.active] if pointer.active else list(pointer.history)
    return pointer.model_copy(
        update={
            "active": version,
            "shadow": None if pointer.shadow == version else pointer.shadow,
            "history": history[-HISTORY_KEPT:],
        }
    )


def rollback(pointer: Pointer) -> Pointer:
    """The previous active becomes active again; the rolled-back version is dropped
    (not remembered: a second rollback goes further back)."""
    if not pointer.history:
        if pointer.active is None:
            raise RegistryError(f"{pointer.model}: nothing to roll back (the bundled model runs)")
        # The first active replaced the bundled model: rolling it back returns to the bundle.
        return pointer.model_copy(update={"active": None})
    *rest, previous = pointer.history
    return pointer.model_copy(update={"active": previous, "history": rest})


def set_shadow(pointer: Pointer, version: str | None) -> Pointer:
    if version is not None:
        check_version(version)
        if version == pointer.active:
            raise RegistryError(f"{pointer.model}: {version} is active, it cannot be the shadow")
    return pointer.model_copy(update={"shadow": version})


def parse_pointer(body: bytes, name: str) -> Pointer:
    try:
        pointer = Pointer.model_validate(json.loads(body))
    except (ValueError, ValidationError) as err:
        raise RegistryError(f"pointer of {name!r} is not valid: {err}") from err
    if pointer.model != name:
        raise RegistryError(f"pointer {pointer_key(name)} names model {pointer.model!r}")
    return pointer


def pointer_body(pointer: Pointer) -> bytes:
    return (json.dumps(pointer.model_dump(mode="json"), sort_keys=True) + "\n").encode()
