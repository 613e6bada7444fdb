"""The model registry on moto: the store, the CLI's operations, and the real scoring
handler switching to a promoted version once the pointer's TTL has passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.model_registry import listing, promote_version, push, rollback_version, shadow_version
from functions.scoring import handler as scoring_handler
from functions.scoring.manifest import ManifestMismatch
from functions.shared.dal.model_registry_store import ModelRegistryStore, PointerConflict
from functions.shared.model_registry import RegistryError, empty_pointer, promote
from tests.integration.aws_helpers import REGION, create_bucket, read_stream
from tests.integration.segments_rig import track
from tests.integration.test_scoring_step import DAY, changes_event, lapsed, rigs, score

MODELS = Path(__file__).resolve().parents[2] / "models"
CHURN = json.loads((MODELS / "churn.manifest.json").read_text())["version"]
PURCHASE = json.loads((MODELS / "purchase.manifest.json").read_text())["version"]

__all__ = ["rigs"]


@pytest.fixture
def store(mocked_aws: None) -> ModelRegistryStore:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="beacon-test-models")
    return ModelRegistryStore("beacon-test-models", s3)


def test_a_version_round_trips_once_and_pointers_are_conditional(store) -> None:
    name, version, new = push(store, MODELS / "churn.onnx")
    assert (name, version, new) == ("churn", CHURN, True)
    assert push(store, MODELS / "churn.onnx")[2] is False  # same bytes, same version
    manifest, onnx = store.get_version("churn", CHURN)
    assert onnx == (MODELS / "churn.onnx").read_bytes()
    assert json.loads(manifest)["version"] == CHURN

    assert store.read_pointer("churn") == (None, None)
    store.write_pointer(promote(empty_pointer("churn"), CHURN), None)
    with pytest.raises(PointerConflict):  # a second creator loses
        store.write_pointer(empty_pointer("churn"), None)
    pointer, etag = store.read_pointer("churn")
    assert pointer is not None and pointer.active == CHURN
    store.write_pointer(pointer.model_copy(update={"shadow": PURCHASE}), etag)
    with pytest.raises(PointerConflict):  # the ETag it was read with is stale now
        store.write_pointer(pointer, etag)


def test_push_refuses_a_manifest_that_does_not_match_and_promote_an_unknown_version(
    store, tmp_path
) -> None:
    (tmp_path / "churn.onnx").write_bytes((MODELS / "purchase.onnx").read_bytes())
    (tmp_path / "churn.manifest.json").write_bytes((MODELS / "churn.manifest.json").read_bytes())
    with pytest.raises(ManifestMismatch):
        push(store, tmp_path / "churn.onnx")
    assert store.names() == []
    with pytest.raises(RegistryError, match="not in the registry"):
        promote_version(store, "churn", "e" * 16)
    with pytest.raises(RegistryError, match="no shadow"):
        promote_version(store, "churn", None)


def test_shadow_promote_rollback_through_the_cli_operations(store) -> None:
    push(store, MODELS / "churn.onnx")
    push(store, MODELS / "purchase.onnx", model="churn")
    assert promote_version(store, "churn", CHURN).active == CHURN
    assert shadow_version(store, "churn", PURCHASE).shadow == PURCHASE
    promoted = promote_version(store, "churn", None)  # the shadow
    assert (promoted.active, promoted.shadow, promoted.history) == (PURCHASE, None, [CHURN])
    assert rollback_version(store, "churn").active == CHURN
    [row] = listing(store)
    assert row["model"] == "churn" and row["active"] == CHURN and row["runs"] == "registry"
    assert {v["version"] for v in row["versions"]} == {CHURN, PURCHASE}


def test_the_scoring_handler_switches_to_a_promoted_version_after_the_ttl(
    rigs, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig, _ = rigs
    bucket = create_bucket(rig.s3, rig.names, "models")
    monkeypatch.setenv("BEACON_MODEL_POINTER_TTL_S", "30")
    store = ModelRegistryStore(bucket, boto3.client("s3", region_name=REGION))
    now = [0.0]
    scoring_handler.live_models.cache_clear()
    scoring_handler.live_models().clock = lambda: now[0]

    def version_after(at: float, days_ago: float) -> Any:
        stream = rig.names.stream("profile-changes")
        seen = sum(len(s) for s in read_stream(rig.kinesis, stream).values())
        rig.deliver_ok(rig.records([track("lapsed", -days_ago * DAY)]))
        now[0] = at
        assert score(rig, changes_event(rig, skip=seen)) == []
        profile = rig.profile("lapsed")
        assert profile is not None
        return profile.scores["churn"]["model_version"]

    rig.deliver_ok(rig.records(lapsed("lapsed")))
    assert score(rig, changes_event(rig)) == []
    assert rig.profile("lapsed").scores["churn"]["model_version"] == CHURN  # bundled

    push(store, MODELS / "purchase.onnx", model="churn")
    promote_version(store, "churn", PURCHASE)
    assert version_after(10.0, 90) == CHURN  # within the TTL: the pointer is not re-read
    assert version_after(31.0, 80) == PURCHASE
    rollback_version(store, "churn")
    assert version_after(62.0, 70) == CHURN
