"""The model registry's logic: pointer transitions, the rollback chain, version checks,
and `LiveModels` following pointers every N seconds (a fake registry: plain dicts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.scoring.live_models import LiveModels, check_version_files, load_version
from functions.scoring.manifest import InvalidManifest, ManifestMismatch, load_model, sha256_hex
from functions.scoring.models import OnnxScorer
from functions.shared.model_registry import (
    HISTORY_KEPT,
    Pointer,
    RegistryError,
    empty_pointer,
    manifest_key,
    onnx_key,
    parse_pointer,
    pointer_body,
    pointer_key,
    promote,
    rollback,
    set_shadow,
)

MODELS = Path(__file__).resolve().parents[3] / "models"
V1, V2, V3 = "a" * 16, "b" * 16, "c" * 16


def files(name: str) -> tuple[bytes, bytes]:
    return (MODELS / f"{name}.manifest.json").read_bytes(), (MODELS / f"{name}.onnx").read_bytes()


def test_keys_are_per_model_and_version_and_refuse_hostile_names() -> None:
    assert pointer_key("churn") == "pointers/churn.json"
    assert onnx_key("churn", V1) == f"models/churn/{V1}/model.onnx"
    assert manifest_key("churn", V1) == f"models/churn/{V1}/manifest.json"
    for bad in ("../x", "Churn", "", "a/b", "x" * 65):
        with pytest.raises(RegistryError, match="model name"):
            pointer_key(bad)
    with pytest.raises(RegistryError, match="version"):
        onnx_key("churn", "../../etc")


def test_promote_moves_the_active_into_history_and_clears_a_promoted_shadow() -> None:
    p = set_shadow(promote(empty_pointer("churn"), V1), V2)
    assert (p.active, p.shadow, p.history) == (V1, V2, [])
    p = promote(p, V2)
    assert (p.active, p.shadow, p.history) == (V2, None, [V1])
    with pytest.raises(RegistryError, match="already active"):
        promote(p, V2)
    with pytest.raises(RegistryError, match="cannot be the shadow"):
        set_shadow(p, V2)


def test_rollback_walks_the_chain_back_to_the_bundled_model() -> None:
    p = promote(promote(promote(empty_pointer("churn"), V1), V2), V3)
    p = rollback(p)
    assert (p.active, p.history) == (V2, [V1])
    p = rollback(p)
    assert (p.active, p.history) == (V1, [])
    p = rollback(p)
    assert p.active is None  # the bundled model runs again
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(p)


@given(st.lists(st.sampled_from([V1, V2, V3, "d" * 16]), min_size=1, max_size=60))
def test_history_is_bounded_and_rollback_returns_each_previous_active(versions) -> None:
    pointer, actives = empty_pointer("churn"), []
    for v in versions:
        if pointer.active != v:
            pointer = promote(pointer, v)
            actives.append(v)
    assert len(pointer.history) <= HISTORY_KEPT
    assert pointer.history == actives[:-1][-HISTORY_KEPT:]
    for expected in reversed(pointer.history):
        pointer = rollback(pointer)
        assert pointer.active == expected


def test_a_pointer_round_trips_and_a_foreign_or_bad_one_is_refused() -> None:
    p = promote(empty_pointer("churn"), V1)
    assert parse_pointer(pointer_body(p), "churn") == p
    with pytest.raises(RegistryError, match="names model"):
        parse_pointer(pointer_body(p), "purchase")
    with pytest.raises(RegistryError, match="not valid"):
        parse_pointer(b"{nope", "churn")
    with pytest.raises(RegistryError, match="not valid"):
        parse_pointer(json.dumps({"model": "churn", "extra": 1}).encode(), "churn")


def test_a_stored_version_is_checked_like_a_bundled_model() -> None:
    manifest, onnx = files("churn")
    assert load_version(manifest, onnx).manifest.version == json.loads(manifest)["version"]
    # Another model's bytes: the hash disagrees.
    with pytest.raises(ManifestMismatch, match="SHA-256"):
        check_version_files(manifest, files("purchase")[1])
    with pytest.raises(InvalidManifest):
        check_version_files(b"not json", onnx)


def test_a_manifest_that_does_not_match_its_graph_is_refused() -> None:
    manifest, onnx = files("churn")
    raw = json.loads(manifest)
    dropped = raw["features"].pop()["name"]
    del raw["training"]["features"][dropped]
    raw["input_name"] = "not_the_input"
    with pytest.raises(ManifestMismatch) as err:
        load_version(json.dumps(raw).encode(), onnx)
    assert "feature count" in str(err.value) and "input name" in str(err.value)
    assert sha256_hex(onnx) == raw["onnx_sha256"]  # the bytes were right: the graph refused


class FakeRegistry:
    def __init__(self) -> None:
        self.pointers: dict[str, Pointer] = {}
        self.versions: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self.reads = 0
        self.down = False

    def read_pointer(self, name: str) -> tuple[Pointer | None, str | None]:
        self.reads += 1
        if self.down:
            raise ConnectionError("bucket unreachable")
        return self.pointers.get(name), None

    def get_version(self, name: str, version: str) -> tuple[bytes, bytes]:
        return self.versions[(name, version)]


@pytest.fixture
def live() -> tuple[LiveModels, FakeRegistry, list[float]]:
    bundled = [
        OnnxScorer(*load_model(MODELS / f"{n}.manifest.json")) for n in ("churn", "purchase")
    ]
    registry, now = FakeRegistry(), [0.0]
    purchase_files = files("purchase")
    version = json.loads(purchase_files[0])["version"]
    registry.versions[("churn", version)] = purchase_files
    return LiveModels(bundled, registry, ttl_s=60, clock=lambda: now[0]), registry, now


def versions(scorers) -> dict[str, tuple[str, str]]:
    return {s.manifest.name: (s.manifest.role, s.manifest.version) for s in scorers}


def test_live_models_follow_the_pointer_at_most_every_ttl(live) -> None:
    models, registry, now = live
    bundled = versions(models.scorers())
    assert registry.reads == 2  # one pointer per primary
    new = json.loads(files("purchase")[0])["version"]
    registry.pointers["churn"] = promote(empty_pointer("churn"), new)

    now[0] = 59.0
    first = models.scorers()
    assert versions(first) == bundled and registry.reads == 2  # within the TTL: no read
    now[0] = 61.0
    switched = models.scorers()
    assert versions(switched)["churn"] == ("primary", new)
    assert versions(switched)["purchase"] == bundled["purchase"]
    now[0] = 122.0
    assert models.scorers() is switched  # pointer unchanged: same scorers, nothing loaded

    registry.pointers["churn"] = set_shadow(rollback(registry.pointers["churn"]), new)
    now[0] = 183.0
    after = versions(models.scorers())
    assert after["churn"] == bundled["churn"]
    assert after["churn_shadow"] == ("shadow", new)


def test_live_models_keep_what_runs_when_the_registry_fails(live) -> None:
    models, registry, now = live
    bundled = models.scorers()
    registry.down = True
    now[0] = 61.0
    assert models.scorers() is bundled
    registry.down = False
    registry.pointers["churn"] = promote(empty_pointer("churn"), "e" * 16)  # never stored
    now[0] = 122.0
    assert models.scorers() is bundled
