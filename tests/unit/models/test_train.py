"""Training: reproducible to the byte, ONNX agrees with scikit-learn, manifests check out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions.scoring.manifest import check_against_session, load_model, manifest_json
from models import train
from models.dataset import Dataset, write_csv

CREATED = datetime(2026, 4, 26, tzinfo=UTC)
SEED = 5


@pytest.fixture(scope="module")
def churn_artifact(small: dict[str, Dataset]) -> train.Artifact:
    return train.build(small["churn"], SEED, CREATED)


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


def test_same_seed_same_model_and_manifest(
    small: dict[str, Dataset], churn_artifact: train.Artifact
) -> None:
    again = train.build(small["churn"], SEED, CREATED)
    assert again.onnx_bytes == churn_artifact.onnx_bytes
    assert again.manifest.version == churn_artifact.manifest.version
    assert manifest_json(again.manifest) == manifest_json(churn_artifact.manifest)


def test_the_split_is_grouped_and_stratified(small: dict[str, Dataset]) -> None:
    dataset = small["purchase"]
    train_rows, test_rows = train.split(dataset, SEED)
    assert len(set(train_rows) | set(test_rows)) == len(dataset.rows)
    train_people = {dataset.groups[i] for i in train_rows}
    assert not train_people & {dataset.groups[i] for i in test_rows}
    labels = np.asarray(dataset.labels)
    assert abs(labels[test_rows].mean() - labels.mean()) < 0.05
    assert 0.15 < len(test_rows) / len(dataset.rows) < 0.25


@pytest.mark.parametrize("candidate", ["logistic_regression", "gradient_boosting"])
def test_onnx_matches_scikit_learn_on_the_test_split(
    small: dict[str, Dataset], candidate: str
) -> None:
    dataset = small["purchase"]
    x = train.as_matrix(dataset.rows)
    y = np.asarray(dataset.labels)
    train_rows, test_rows = train.split(dataset, SEED)
    model = train.candidates(SEED)[candidate].fit(x[train_rows], y[train_rows])
    onnx_bytes = train.export_onnx(model, x.shape[1], "beacon_test")
    (probabilities,) = session(onnx_bytes).run(
        [train.OUTPUT_NAME], {train.INPUT_NAME: x[test_rows].astype(np.float32)}
    )
    expected = model.predict_proba(x[test_rows])
    assert probabilities.shape == expected.shape == (len(test_rows), 2)
    assert np.abs(probabilities - expected).max() < 1e-5


def test_the_chosen_model_matches_too(churn_artifact: train.Artifact) -> None:
    trained = churn_artifact.trained
    (probabilities,) = session(churn_artifact.onnx_bytes).run(
        [train.OUTPUT_NAME], {train.INPUT_NAME: trained.x_test.astype(np.float32)}
    )
    positive = probabilities[:, churn_artifact.manifest.positive_index]
    assert np.abs(positive - trained.test_probabilities).max() < 1e-5


def test_manifest_describes_the_model(churn_artifact: train.Artifact) -> None:
    manifest = churn_artifact.manifest
    onnx_bytes = churn_artifact.onnx_bytes
    s = session(onnx_bytes)
    first = s.get_inputs()[0]
    check_against_session(
        manifest,
        [i.name for i in s.get_inputs()],
        first.shape,
        first.type,
        [o.name for o in s.get_outputs()],
        onnx_bytes=onnx_bytes,
    )
    metrics = manifest.metrics
    assert metrics.estimator in metrics.cv_candidates
    assert metrics.cv_roc_auc == max(metrics.cv_candidates.values())
    assert 0.5 < metrics.roc_auc <= 1.0
    assert sum(b.count for b in metrics.calibration) == metrics.test_rows
    assert set(metrics.at_thresholds) == set(manifest.thresholds) == {"high", "medium"}
    summary = manifest.training
    assert summary.rows == summary.train_rows + summary.test_rows
    assert list(summary.features) == manifest.feature_names
    assert manifest.created_at == CREATED and manifest.seed == SEED


def test_evaluate_on_known_predictions() -> None:
    labels = np.asarray([0, 0, 1, 1])
    probabilities = np.asarray([0.1, 0.4, 0.35, 0.8])
    metrics = train.evaluate(labels, probabilities, {"high": 0.7}, "m", {"m": 0.9}, 5)
    assert metrics.roc_auc == 0.75
    assert metrics.brier == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    high = metrics.at_thresholds["high"]
    assert (high.flagged, high.precision, high.recall) == (0.25, 1.0, 0.5)
    assert [b.count for b in metrics.calibration] == [0, 1, 0, 1, 1, 0, 0, 0, 1, 0]


def test_main_trains_from_a_csv_export(
    small: dict[str, Dataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01: reproducible stamp
    data = tmp_path / "export.csv"
    write_csv(data, [small["churn"]])
    out = tmp_path / "out"
    assert train.main(["--data", str(data), "--target", "churn", "--out", str(out)]) == 0
    manifest, _ = load_model(out / "churn.manifest.json")
    assert manifest.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert manifest.training.data.startswith("csv: export.csv")
    assert sorted(p.name for p in out.iterdir()) == ["churn.manifest.json", "churn.onnx"]


def test_a_shadow_model_gets_its_own_files(small: dict[str, Dataset]) -> None:
    artifact = train.build(small["churn"], SEED, CREATED, role="shadow")
    assert artifact.name == "churn_shadow"
    assert artifact.manifest.onnx_file == "churn_shadow.onnx"
    assert artifact.manifest.role == "shadow"
