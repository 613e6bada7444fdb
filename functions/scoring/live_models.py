"""Which model versions the scoring function runs: the registry's, re-read every N seconds.

The scoring function starts with the models bundled with it (beacon.yaml
`models:`). Each model name's pointer in the models bucket
(functions/shared/model_registry.py) is re-read at most every `ttl_s` seconds
per container; only when a pointer changed are versions fetched and loaded (one
onnxruntime session each, kept while it stays in use). An `active` version
replaces the bundled primary of its name; a `shadow` version is scored beside it
and reported, never written. No pointer: the bundled model. The bucket
unreachable or a version that fails its checks: the models loaded before stay
(logged), so the registry can make scoring newer, never stop it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from functions.scoring.manifest import (
    InvalidManifest,
    ModelManifest,
    verify_onnx_bytes,
)
from functions.scoring.models import OnnxScorer
from functions.shared.model_registry import Pointer, RegistryError, check_name
from functions.shared.observability import logger

MAX_MANIFEST_BYTES = 1_000_000
MAX_ONNX_BYTES = 200_000_000


class RegistryReader(Protocol):
    def read_pointer(self, name: str) -> tuple[Pointer | None, str | None]: ...

    def get_version(self, name: str, version: str) -> tuple[bytes, bytes]: ...


def check_version_files(manifest_bytes: bytes, onnx_bytes: bytes) -> ModelManifest:
    """The manifest, parsed and checked against the ONNX file's SHA-256 (the graph
    itself is checked by `OnnxScorer`, which `load_version` builds)."""
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise InvalidManifest(f"manifest.json: more than {MAX_MANIFEST_BYTES} bytes")
    if len(onnx_bytes) > MAX_ONNX_BYTES:
        raise InvalidManifest(f"model.onnx: more than {MAX_ONNX_BYTES} bytes")
    try:
        raw: Any = json.loads(manifest_bytes)
        manifest = ModelManifest.model_validate(raw)
    except (ValueError, ValidationError) as err:
        raise InvalidManifest(f"invalid model manifest:\n{err}") from err
    try:
        check_name(manifest.name)
    except RegistryError as err:
        raise InvalidManifest(str(err)) from err
    verify_onnx_bytes(manifest, onnx_bytes)
    return manifest


def load_version(manifest_bytes: bytes, onnx_bytes: bytes) -> OnnxScorer:
    """A stored version, every check of a bundled model applied: hash and graph."""
    return OnnxScorer(check_version_files(manifest_bytes, onnx_bytes), onnx_bytes)


def as_role(manifest: ModelManifest, name: str, role: str) -> ModelManifest:
    """A version of registry model `name` as it runs: the active one as the primary
    `name` (its scores go where the bundled model's went), a shadow as `<name>_shadow`
    so its drift and reports stay apart from the primary's."""
    if role == "primary":
        return manifest.model_copy(update={"role": "primary", "name": name})
    return manifest.model_copy(update={"role": "shadow", "name": f"{name}_shadow"})


class _Running:
    """A loaded version with the manifest it runs under (role and name set)."""

    def __init__(self, scorer: OnnxScorer, manifest: ModelManifest) -> None:
        self.scorer = scorer
        self.manifest = manifest

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[float]:
        return self.scorer.probabilities(rows)


class LiveModels:
    """`scorers()`: the models to score with now (the same list object until it changes)."""

    def __init__(
        self,
        bundled: Sequence[Any],
        registry: RegistryReader | None,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bundled = list(bundled)
        self.registry = registry
        self.ttl_s = ttl_s
        self.clock = clock
        self.current: list[Any] = list(bundled)
        self.checked_at: float | None = None
        self.state: tuple[tuple[str, str | None, str | None], ...] = ()
        self.loaded: dict[tuple[str, str], OnnxScorer] = {}
        self.names = [s.manifest.name for s in bundled if s.manifest.role == "primary"]

    def scorers(self) -> list[Any]:
        now = self.clock()
        if self.registry is None or (
            self.checked_at is not None and now - self.checked_at < self.ttl_s
        ):
            return self.current
        self.checked_at = now
        try:
            pointers = {name: self.registry.read_pointer(name)[0] for name in self.names}
        except Exception as err:  # the bucket unreachable: keep scoring with what runs
            logger.warning("model registry unreachable", extra={"error": str(err)})
            return self.current
        state = tuple(
            (name, p.active if p else None, p.shadow if p else None) for name, p in pointers.items()
        )
        if state == self.state:
            return self.current
        try:
            self.current = self._build(state)
        except Exception as err:  # ManifestError, a missing version, S3: keep what runs
            logger.error("model version not loaded", extra={"error": str(err)})
            return self.current
        self.state = state
        self.loaded = {
            key: scorer for key, scorer in self.loaded.items() if key[1] in _versions(state)
        }
        logger.info("model versions", extra={"versions": [list(s) for s in state]})
        return self.current

    def _build(self, state: tuple[tuple[str, str | None, str | None], ...]) -> list[Any]:
        pointed = {name: (active, shadow) for name, active, shadow in state}
        running: list[Any] = []
        for bundled in self.bundled:
            name = bundled.manifest.name
            active = (
                pointed.get(name, (None, None))[0] if bundled.manifest.role == "primary" else None
            )
            if active is None:
                running.append(bundled)
            else:
                scorer = self._load(name, active)
                running.append(_Running(scorer, as_role(scorer.manifest, name, "primary")))
        for name, (_, shadow) in pointed.items():
            if shadow is not None:
                scorer = self._load(name, shadow)
                running.append(_Running(scorer, as_role(scorer.manifest, name, "shadow")))
        return running

    def _load(self, name: str, version: str) -> OnnxScorer:
        key = (name, version)
        if key not in self.loaded:
            assert self.registry is not None
            scorer = load_version(*self.registry.get_version(name, version))
            if scorer.manifest.version != version:
                raise InvalidManifest(
                    f"registry {name}/{version} holds version {scorer.manifest.version}"
                )
            self.loaded[key] = scorer
        return self.loaded[key]


def _versions(state: tuple[tuple[str, str | None, str | None], ...]) -> set[str]:
    return {v for _, active, shadow in state for v in (active, shadow) if v}
