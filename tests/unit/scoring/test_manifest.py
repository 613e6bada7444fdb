"""Manifests: the committed ones match their ONNX files and sessions; mismatches fail loudly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from functions.scoring.features import FeatureSpec, feature_matrix
from functions.scoring.manifest import (
    InvalidManifest,
    ManifestMismatch,
    ModelManifest,
    check_against_session,
    load_manifest,
    load_model,
    manifest_json,
    verify_onnx_bytes,
)
from models.dataset import FEATURES

MODELS = Path(__file__).resolve().parents[3] / "models"
# The scoring models' manifests (the recommender's and the personas' have a `kind`).
COMMITTED = sorted(
    p for p in MODELS.glob("*.manifest.json") if "kind" not in json.loads(p.read_text())
)
CHURN = MODELS / "churn.manifest.json"


def session_facts(session: Any) -> dict[str, Any]:
    """What the Lambda passes on from onnxruntime."""
    first = session.get_inputs()[0]
    return {
        "input_names": [i.name for i in session.get_inputs()],
        "input_shape": first.shape,
        "input_type": first.type,
        "output_names": [o.name for o in session.get_outputs()],
    }


@pytest.fixture(scope="module")
def churn() -> tuple[ModelManifest, bytes, dict[str, Any]]:
    manifest, onnx_bytes = load_model(CHURN)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return manifest, onnx_bytes, session_facts(session)


def test_both_models_are_committed() -> None:
    assert [p.name for p in COMMITTED] == ["churn.manifest.json", "purchase.manifest.json"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_manifest_matches_its_model_and_session(path: Path) -> None:
    manifest, onnx_bytes = load_model(path)  # checks the SHA-256
    assert manifest.version == manifest.onnx_sha256[:16]
    assert manifest.features == list(FEATURES)  # the training code and the artefact agree
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    check_against_session(manifest, **session_facts(session), onnx_bytes=onnx_bytes)
    # The file is what manifest_json writes: sorted, indented, stable.
    assert path.read_text(encoding="utf-8") == manifest_json(manifest)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_model_scores_profiles(path: Path) -> None:
    manifest, onnx_bytes = load_model(path)
    now = datetime(2026, 4, 1, tzinfo=UTC)
    profiles: list[dict[str, Any]] = [
        {"computed": {}, "traits": {}},  # brand new: everything defaulted
        {
            "traits": {"email": "a@example.org"},
            "computed": {
                "last_seen": now - timedelta(days=1),
                "first_seen": now - timedelta(days=300),
                "orders_365d": 6,
                "lifetime_value": 900.0,
                "average_order_value": 150.0,
                "product_views_7d": 4,
                "product_views_30d": 12,
                "cart": {"value": 129.0, "quantity": 1, "abandoned": False},
                "rfm": {"recency": 5, "last_order": now - timedelta(days=5)},
            },
        },
    ]
    matrix = feature_matrix(profiles, manifest.features, now)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(
        [manifest.output_name], {manifest.input_name: np.asarray(matrix.rows, dtype=np.float32)}
    )
    assert probabilities.shape == (2, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_feature_count_mismatch(churn: tuple[ModelManifest, bytes, dict[str, Any]]) -> None:
    manifest, _, facts = churn
    extra = FeatureSpec(name="extra_feature", source="computed.extra")
    wider = manifest.model_copy(update={"features": [*manifest.features, extra]})
    with pytest.raises(ManifestMismatch, match=r"feature count: the graph takes 13 .* lists 14"):
        check_against_session(wider, **facts)


def test_symbolic_input_width(churn: tuple[ModelManifest, bytes, dict[str, Any]]) -> None:
    manifest, _, facts = churn
    with pytest.raises(ManifestMismatch, match=r"feature count: .* not fixed"):
        check_against_session(manifest, **(facts | {"input_shape": [None, "k"]}))


def test_input_name_mismatch(churn: tuple[ModelManifest, bytes, dict[str, Any]]) -> None:
    manifest, _, facts = churn
    renamed = manifest.model_copy(update={"input_name": "float_input"})
    with pytest.raises(ManifestMismatch, match=r"input name: the graph takes \['features'\]"):
        check_against_session(renamed, **facts)


def test_dtype_mismatch(churn: tuple[ModelManifest, bytes, dict[str, Any]]) -> None:
    manifest, _, facts = churn
    with pytest.raises(ManifestMismatch, match=r"input dtype: the graph takes tensor\(double\)"):
        check_against_session(manifest, **(facts | {"input_type": "tensor(double)"}))


def test_missing_output(churn: tuple[ModelManifest, bytes, dict[str, Any]]) -> None:
    manifest, _, facts = churn
    with pytest.raises(ManifestMismatch, match=r"missing output: .*'probabilities'"):
        check_against_session(
            manifest, **(facts | {"output_names": ["label", "output_probability"]})
        )


def test_sha_mismatch(churn: tuple[ModelManifest, bytes, dict[str, Any]]) -> None:
    manifest, onnx_bytes, facts = churn
    other = (MODELS / "purchase.onnx").read_bytes()
    with pytest.raises(ManifestMismatch, match=r"sha mismatch: .*different training runs"):
        check_against_session(manifest, **facts, onnx_bytes=other)
    with pytest.raises(ManifestMismatch, match="SHA-256"):
        verify_onnx_bytes(manifest, onnx_bytes + b"\0")


def test_every_problem_is_listed_at_once(
    churn: tuple[ModelManifest, bytes, dict[str, Any]],
) -> None:
    manifest = churn[0]
    with pytest.raises(ManifestMismatch) as caught:
        check_against_session(
            manifest,
            input_names=["x"],
            input_shape=[None, 3],
            input_type="tensor(int64)",
            output_names=["label"],
        )
    message = str(caught.value)
    for problem in ("input name", "feature count", "input dtype", "missing output"):
        assert problem in message


def test_load_model_reads_the_onnx_next_to_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "churn.manifest.json").write_bytes(CHURN.read_bytes())
    with pytest.raises(InvalidManifest, match="cannot read"):
        load_model(tmp_path / "churn.manifest.json")
    (tmp_path / "churn.onnx").write_bytes((MODELS / "purchase.onnx").read_bytes())
    with pytest.raises(ManifestMismatch, match="SHA-256"):
        load_model(tmp_path / "churn.manifest.json")


def test_invalid_manifests(tmp_path: Path) -> None:
    raw = json.loads(CHURN.read_text(encoding="utf-8"))
    broken = tmp_path / "broken.manifest.json"
    cases: list[tuple[dict[str, Any], str]] = [
        (raw | {"version": "0" * 16}, "version must be"),
        (raw | {"onnx_file": "../etc/churn.onnx"}, "bare file name"),
        (raw | {"thresholds": {"high": 1.5}}, "threshold 'high'"),
        (raw | {"input_dtype": "float64"}, "input_dtype"),
        (raw | {"surprise": 1}, "surprise"),
        (raw | {"features": raw["features"][:-1]}, "exactly the model's features"),
    ]
    for content, message in cases:
        broken.write_text(json.dumps(content), encoding="utf-8")
        with pytest.raises(InvalidManifest, match=message):
            load_manifest(broken)
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidManifest, match="cannot read"):
        load_manifest(broken)
    with pytest.raises(InvalidManifest, match="cannot read"):
        load_manifest(tmp_path / "absent.manifest.json")
