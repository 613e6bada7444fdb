"""`beacon models push|list|promote|shadow|rollback`: the model registry, operated.

The logic is functions/shared/model_registry.py (pointer transitions) and
functions/scoring/live_models.py (a version's checks: manifest, hash, graph);
this module reads and writes through `ModelRegistryStore`, retrying a pointer
update that lost a race (its If-Match failed) on the pointer that won.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.scoring.live_models import load_version
from functions.scoring.manifest import MANIFEST_SUFFIX
from functions.shared.dal.model_registry_store import ModelRegistryStore, PointerConflict
from functions.shared.model_registry import (
    Pointer,
    RegistryError,
    check_name,
    empty_pointer,
    promote,
    rollback,
    set_shadow,
)

ATTEMPTS = 5


def manifest_beside(onnx: Path) -> Path:
    """`churn.onnx` -> `churn.manifest.json` (the bundle's and `beacon train`'s layout)."""
    return onnx.with_name(onnx.name.removesuffix(".onnx") + MANIFEST_SUFFIX)


def push(
    store: ModelRegistryStore, onnx: Path, manifest: Path | None = None, model: str | None = None
) -> tuple[str, str, bool]:
    """Store a version after every check the scoring function makes; (model, version,
    whether it was new). The model is `--model`, else the manifest's target."""
    manifest_path = manifest or manifest_beside(onnx)
    manifest_bytes = manifest_path.read_bytes()
    onnx_bytes = onnx.read_bytes()
    scorer = load_version(manifest_bytes, onnx_bytes)  # refuses a mismatch, with reasons
    name = check_name(model or scorer.manifest.target)
    version = scorer.manifest.version
    return name, version, store.put_version(name, version, manifest_bytes, onnx_bytes)


def update(store: ModelRegistryStore, name: str, change: Callable[[Pointer], Pointer]) -> Pointer:
    """Apply `change` to the pointer with a conditional write; re-read and retry if
    another writer got there first."""
    check_name(name)
    for _ in range(ATTEMPTS):
        pointer, etag = store.read_pointer(name)
        changed = change(pointer or empty_pointer(name))
        try:
            store.write_pointer(changed, etag)
        except PointerConflict:
            continue
        return changed
    raise RegistryError(f"{name}: the pointer kept changing; try again")


def promote_version(store: ModelRegistryStore, name: str, version: str | None) -> Pointer:
    """`version` (default: the shadow) becomes active; it must be stored."""

    def change(pointer: Pointer) -> Pointer:
        chosen = version or pointer.shadow
        if chosen is None:
            raise RegistryError(f"{name}: no version given and no shadow to promote")
        _must_exist(store, name, chosen)
        return promote(pointer, chosen)

    return update(store, name, change)


def shadow_version(store: ModelRegistryStore, name: str, version: str | None) -> Pointer:
    if version is not None:
        _must_exist(store, name, version)
    return update(store, name, lambda pointer: set_shadow(pointer, version))


def rollback_version(store: ModelRegistryStore, name: str) -> Pointer:
    return update(store, name, rollback)


def listing(store: ModelRegistryStore) -> list[dict[str, Any]]:
    """Per model: its pointer and every stored version, oldest first."""
    out = []
    for name in store.names():
        pointer, _ = store.read_pointer(name)
        out.append(
            {
                "model": name,
                "active": pointer.active if pointer else None,
                "shadow": pointer.shadow if pointer else None,
                "history": pointer.history if pointer else [],
                "runs": "registry" if pointer and pointer.active else "bundled",
                "versions": [{"version": v, "stored_at": at} for v, at in store.versions(name)],
            }
        )
    return out


def _must_exist(store: ModelRegistryStore, name: str, version: str) -> None:
    if not store.has_version(name, version):
        raise RegistryError(f"{name}: version {version} is not in the registry (push it first)")
