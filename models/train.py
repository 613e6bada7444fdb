"""`beacon train`: fit the churn and purchase models and write ONNX files and manifests.

For each target: split the rows into train (80 %) and test (20 %), stratified
by label and grouped by profile (one shopper's cutoffs never straddle the
split); choose between a scaled logistic regression and gradient boosting by
5-fold grouped, stratified cross-validated ROC-AUC on the train part; refit the
winner on all of it; measure it on the test part (ROC-AUC, PR-AUC, Brier,
calibration); convert it with skl2onnx (float32 input `features`, output
`probabilities` of shape [n, 2], no ZipMap); and write `<name>.onnx` and
`<name>.manifest.json` (functions/scoring/manifest.py).

Reproducible: the same seed and data give byte-identical files. Every random
choice takes the seed, the ONNX file embeds no time, and the manifest's
`created_at` is the end of the simulated period (for a CSV: $SOURCE_DATE_EPOCH
if set, else the time of the run).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from functions.scoring.drift import histogram
from functions.scoring.features import FeatureSpec
from functions.scoring.manifest import (
    VERSION_LENGTH,
    CalibrationBin,
    FeatureStats,
    Metrics,
    ModelManifest,
    ThresholdMetrics,
    TrainingSummary,
    manifest_json,
    sha256_hex,
)
from models.dataset import (
    DEFAULT_CUSTOMERS,
    FEATURES,
    SIMULATION_DAYS,
    SIMULATION_START,
    TARGETS,
    Dataset,
    load_csv,
    simulate,
    write_csv,
)

MODELS_DIR = Path(__file__).resolve().parent
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
POSITIVE_INDEX = 1  # classes are [0, 1]: column 1 is the positive class
TEST_FOLDS = 5  # one of five grouped, stratified folds is the test split (20 %)
CV_FOLDS = 5
CALIBRATION_BINS = 10
DIGITS = 6  # floats in the manifest are rounded so it reads well and diffs quietly
# Opsets every onnxruntime of the last years runs; pinned so the bytes do not move
# with skl2onnx's defaults.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# `score.crossed` fires when a probability crosses one of these. churn 0.7
# matches the default churn_risk segment (functions/shared/segment_definitions.py).
THRESHOLDS: dict[str, dict[str, float]] = {
    "churn": {"high": 0.7, "medium": 0.4},
    "purchase": {"high": 0.5, "medium": 0.3},
}

# What a web page is told of a score (GET /v1/personalize): the band, never the number.
# The bands start where the thresholds do, so a page and a destination agree.
BANDS: dict[str, list[dict[str, Any]]] = {
    target: [{"name": "low", "at_least": 0.0}]
    + [{"name": n, "at_least": v} for n, v in sorted(levels.items(), key=lambda kv: kv[1])]
    for target, levels in THRESHOLDS.items()
}

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def candidates(seed: int) -> dict[str, Any]:
    """The estimators cross-validation chooses between (unfitted)."""
    return {
        "logistic_regression": Pipeline(
            [
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=1.0, max_iter=2000)),
            ]
        ),
        "gradient_boosting": GradientBoostingClassifier(
            n_estimators=150, learning_rate=0.05, max_depth=3, random_state=seed
        ),
    }


@dataclass(frozen=True)
class TrainedModel:
    target: str
    estimator: Any  # the fitted scikit-learn estimator
    estimator_name: str
    cv_scores: dict[str, float]  # candidate -> mean CV ROC-AUC
    x_train: FloatArray
    y_train: IntArray
    x_test: FloatArray
    y_test: IntArray
    test_probabilities: FloatArray  # positive-class probabilities from scikit-learn
    metrics: Metrics


@dataclass(frozen=True)
class Artifact:
    name: str
    onnx_bytes: bytes
    manifest: ModelManifest
    trained: TrainedModel


# ---------------------------------------------------------------- training


def as_matrix(rows: Sequence[Sequence[float]]) -> FloatArray:
    """Rows as the model sees them: rounded to float32 (the ONNX input type) first,
    so scikit-learn and onnxruntime are given identical values."""
    return np.asarray(rows, dtype=np.float32).astype(np.float64)


def split(dataset: Dataset, seed: int) -> tuple[IntArray, IntArray]:
    """Train and test row indices: stratified by label, grouped by profile."""
    labels = np.asarray(dataset.labels, dtype=np.int64)
    folds = StratifiedGroupKFold(n_splits=TEST_FOLDS, shuffle=True, random_state=seed)
    train, test = next(folds.split(np.zeros(len(labels)), labels, dataset.groups))
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


def choose(
    x: FloatArray, y: IntArray, groups: Sequence[str], seed: int
) -> tuple[str, dict[str, float]]:
    """The candidate with the best mean ROC-AUC over grouped, stratified CV folds."""
    folds = list(
        StratifiedGroupKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed).split(x, y, groups)
    )
    scores: dict[str, float] = {}
    for name, estimator in candidates(seed).items():
        fold_scores = []
        for fit_rows, score_rows in folds:
            model = clone(estimator).fit(x[fit_rows], y[fit_rows])
            probabilities = model.predict_proba(x[score_rows])[:, POSITIVE_INDEX]
            fold_scores.append(float(roc_auc_score(y[score_rows], probabilities)))
        scores[name] = _round(sum(fold_scores) / len(fold_scores))
    best = max(scores, key=lambda n: (scores[n], n))
    return best, scores


def fit(dataset: Dataset, seed: int) -> TrainedModel:
    if len(set(dataset.labels)) < 2:
        raise ValueError(f"{dataset.target}: the labels are all {dataset.labels[0]}")
    x = as_matrix(dataset.rows)
    y = np.asarray(dataset.labels, dtype=np.int64)
    train, test = split(dataset, seed)
    train_groups = [dataset.groups[i] for i in train]
    best, scores = choose(x[train], y[train], train_groups, seed)
    estimator = clone(candidates(seed)[best]).fit(x[train], y[train])
    probabilities = estimator.predict_proba(x[test])[:, POSITIVE_INDEX].astype(np.float64)
    metrics = evaluate(
        y[test], probabilities, THRESHOLDS.get(dataset.target, {}), best, scores, CV_FOLDS
    )
    return TrainedModel(
        target=dataset.target,
        estimator=estimator,
        estimator_name=best,
        cv_scores=scores,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        test_probabilities=probabilities,
        metrics=metrics,
    )


def evaluate(
    labels: IntArray,
    probabilities: FloatArray,
    thresholds: Mapping[str, float],
    estimator_name: str,
    cv_scores: Mapping[str, float],
    cv_folds: int,
) -> Metrics:
    bins: list[CalibrationBin] = []
    ece = 0.0
    n = len(labels)
    for i in range(CALIBRATION_BINS):
        lower, upper = i / CALIBRATION_BINS, (i + 1) / CALIBRATION_BINS
        inside = (probabilities >= lower) & (
            probabilities <= upper if i == CALIBRATION_BINS - 1 else probabilities < upper
        )
        count = int(inside.sum())
        mean_predicted = float(probabilities[inside].mean()) if count else None
        observed = float(labels[inside].mean()) if count else None
        if mean_predicted is not None and observed is not None:
            ece += count / n * abs(mean_predicted - observed)
        bins.append(
            CalibrationBin(
                lower=lower,
                upper=upper,
                count=count,
                mean_predicted=_round_or_none(mean_predicted),
                observed_rate=_round_or_none(observed),
            )
        )
    positives = int(labels.sum())
    at_thresholds: dict[str, ThresholdMetrics] = {}
    for name, threshold in thresholds.items():
        flagged = probabilities >= threshold
        hits = int((flagged & (labels == 1)).sum())
        at_thresholds[name] = ThresholdMetrics(
            flagged=_round(float(flagged.mean())),
            precision=_round(hits / int(flagged.sum())) if flagged.any() else None,
            recall=_round(hits / positives) if positives else 0.0,
        )
    return Metrics(
        roc_auc=_round(float(roc_auc_score(labels, probabilities))),
        pr_auc=_round(float(average_precision_score(labels, probabilities))),
        brier=_round(float(brier_score_loss(labels, probabilities))),
        expected_calibration_error=_round(ece),
        calibration=bins,
        at_thresholds=at_thresholds,
        test_rows=n,
        test_positive_rate=_round(positives / n),
        estimator=estimator_name,
        cv_roc_auc=cv_scores[estimator_name],
        cv_candidates=dict(cv_scores),
        cv_folds=cv_folds,
    )


# ---------------------------------------------------------------- export


def export_onnx(estimator: Any, n_features: int, name: str) -> bytes:
    """The fitted estimator as ONNX bytes: float32 `features` in, `probabilities` out."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    model = convert_sklearn(
        estimator,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        # Plain [n, 2] probabilities instead of a list of {class: probability} maps.
        options={type(final): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    outputs = [o.name for o in model.graph.output]
    if OUTPUT_NAME not in outputs:
        raise RuntimeError(f"skl2onnx produced outputs {outputs}, expected {OUTPUT_NAME!r}")
    return _reproducible_bytes(model)


def export_onnx_graph(estimator: Any, n_features: int, name: str) -> bytes:
    """Any convertible estimator (the personas' scaler + K-means), `features` in."""
    model = convert_sklearn(
        estimator,
        name=name,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
    )
    return _reproducible_bytes(model)


def _reproducible_bytes(model: Any) -> bytes:
    # skl2onnx lists opsets in set order (it varies with PYTHONHASHSEED) and may
    # repeat one: one entry per domain, sorted, makes the bytes reproducible.
    opsets: dict[str, int] = {}
    for entry in model.opset_import:
        opsets[entry.domain] = max(entry.version, opsets.get(entry.domain, 0))
    del model.opset_import[:]
    for domain, version in sorted(opsets.items()):
        model.opset_import.add(domain=domain, version=version)
    # Nothing run-specific in the file: no doc strings, no version from the clock.
    model.doc_string = ""
    model.graph.doc_string = ""
    model.model_version = 1
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def feature_stats(dataset: Dataset) -> dict[str, FeatureStats]:
    """Each feature's distribution over all the dataset's rows: drift's reference."""
    stats: dict[str, FeatureStats] = {}
    x = as_matrix(dataset.rows)
    for column, name in enumerate(dataset.feature_names):
        values = [float(v) for v in x[:, column]]
        edges, proportions = histogram(values)
        stats[name] = FeatureStats(
            mean=_round(float(np.mean(x[:, column]))),
            std=_round(float(np.std(x[:, column]))),
            defaulted=_round(dataset.defaults.get(name, 0) / len(values)),
            bin_edges=edges,
            proportions=proportions,
        )
    return stats


def build(
    dataset: Dataset,
    seed: int,
    created_at: datetime,
    *,
    role: str = "primary",
    specs: Sequence[FeatureSpec] = FEATURES,
) -> Artifact:
    """Train one target and produce its ONNX bytes and manifest."""
    if tuple(s.name for s in specs) != dataset.feature_names:
        raise ValueError("the dataset's columns are not the feature specs' names")
    name = dataset.target if role == "primary" else f"{dataset.target}_{role}"
    trained = fit(dataset, seed)
    onnx_bytes = export_onnx(trained.estimator, len(specs), f"beacon_{name}")
    digest = sha256_hex(onnx_bytes)
    manifest = ModelManifest.model_validate(
        {
            "name": name,
            "version": digest[:VERSION_LENGTH],
            "onnx_file": f"{name}.onnx",
            "onnx_sha256": digest,
            "role": role,
            "target": dataset.target,
            "input_name": INPUT_NAME,
            "input_dtype": "float32",
            "output_name": OUTPUT_NAME,
            "positive_index": POSITIVE_INDEX,
            "features": list(specs),
            "thresholds": THRESHOLDS.get(dataset.target, {}),
            "bands": BANDS.get(dataset.target, []),
            "metrics": trained.metrics,
            "training": TrainingSummary(
                data=dataset.description,
                label=dataset.label_definition,
                rows=len(dataset.rows),
                positives=dataset.positives,
                positive_rate=_round(dataset.positive_rate),
                train_rows=len(trained.y_train),
                test_rows=len(trained.y_test),
                features=feature_stats(dataset),
            ),
            "seed": seed,
            "created_at": created_at,
        }
    )
    return Artifact(name=name, onnx_bytes=onnx_bytes, manifest=manifest, trained=trained)


def write(artifact: Artifact, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / artifact.manifest.onnx_file
    manifest_path = out / f"{artifact.name}.manifest.json"
    onnx_path.write_bytes(artifact.onnx_bytes)
    manifest_path.write_text(manifest_json(artifact.manifest), encoding="utf-8")
    return onnx_path, manifest_path


# ---------------------------------------------------------------- command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="beacon train",
        description="Train the churn and purchase models and write ONNX files and manifests.",
    )
    parser.add_argument("--seed", type=int, default=7, help="seeds the simulation and training")
    parser.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMERS,
        help=f"simulated shoppers (default {DEFAULT_CUSTOMERS})",
    )
    parser.add_argument(
        "--out", type=Path, default=MODELS_DIR, help=f"output folder (default {MODELS_DIR})"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="train on your own CSV export instead"
    )
    parser.add_argument(
        "--target", choices=[*TARGETS, "recommender", "personas", "all"], default="all"
    )
    parser.add_argument(
        "--catalog", type=Path, default=None, help="item attributes (CSV or JSON lines)"
    )
    parser.add_argument("--role", choices=["primary", "shadow"], default="primary")
    parser.add_argument(
        "--write-data", type=Path, default=None, help="also write the simulated rows as CSV"
    )
    return parser.parse_args(argv)


def created_at_for(data: Path | None) -> datetime:
    """Simulation: its last day; CSV: $SOURCE_DATE_EPOCH, else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), UTC)
    if data is None:
        return SIMULATION_START + timedelta(days=SIMULATION_DAYS)
    return datetime.now(UTC).replace(microsecond=0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.target == "recommender":
        return train_recommender(args)
    if args.target == "personas":
        return train_personas(args)
    targets = list(TARGETS) if args.target == "all" else [args.target]
    started = time.perf_counter()
    if args.data is not None:
        datasets = {target: load_csv(args.data, target) for target in targets}
    else:
        if args.customers < 50:
            print("beacon train: --customers must be at least 50", file=sys.stderr)
            return 2
        datasets = simulate(args.customers, args.seed)
        if args.write_data is not None:
            lines = write_csv(args.write_data, [datasets[t] for t in targets])
            print(f"wrote {lines} rows to {args.write_data}")
    print(f"data ready in {time.perf_counter() - started:.1f} s")
    created_at = created_at_for(args.data)
    for target in targets:
        dataset = datasets[target]
        began = time.perf_counter()
        artifact = build(dataset, args.seed, created_at, role=args.role)
        onnx_path, manifest_path = write(artifact, args.out)
        m = artifact.manifest.metrics
        print(
            f"{artifact.name}: {len(dataset.rows)} rows, {dataset.positive_rate:.1%} positive;"
            f" {m.estimator} (CV ROC-AUC {m.cv_roc_auc:.3f});"
            f" test ROC-AUC {m.roc_auc:.3f}, PR-AUC {m.pr_auc:.3f}, Brier {m.brier:.3f};"
            f" version {artifact.manifest.version}; {time.perf_counter() - began:.1f} s"
        )
        print(f"  wrote {onnx_path} and {manifest_path}")
    if args.target == "all" and args.data is None:
        train_recommender(args)
        train_personas(args)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def train_recommender(args: argparse.Namespace) -> int:
    """The recommender on the simulated shoppers' events (models/recommend.py)."""
    from models.recommend import train_simulated

    if args.data is not None:
        print("beacon train: the recommender learns from events, not --data", file=sys.stderr)
        return 2
    began = time.perf_counter()
    artifact, manifest = train_simulated(
        args.customers, args.seed, args.out, args.catalog, created_at_for(None)
    )
    print(f"recommender: wrote {artifact} and {manifest}; {time.perf_counter() - began:.1f} s")
    return 0


def train_personas(args: argparse.Namespace) -> int:
    """K-means personas on the simulated shoppers' profiles (models/personas.py)."""
    from models.personas import train_simulated as train_persona_model

    if args.data is not None:
        print("beacon train: personas learn from simulated profiles, not --data", file=sys.stderr)
        return 2
    began = time.perf_counter()
    chart = MODELS_DIR.parent / "docs" / "personas-k.svg" if args.out == MODELS_DIR else None
    onnx_path, manifest_path, manifest = train_persona_model(
        args.customers, args.seed, args.out, created_at_for(None), chart
    )
    for persona in manifest["personas"]:
        print(f"  persona {persona['id']}: {persona['share']:.1%} {persona['description']}")
    print(
        f"personas: k={manifest['k']} by silhouette; wrote {onnx_path} and {manifest_path};"
        f" {time.perf_counter() - began:.1f} s"
    )
    return 0


def _round(value: float) -> float:
    return round(value, DIGITS) if math.isfinite(value) else value


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else _round(value)


if __name__ == "__main__":
    raise SystemExit(main())
