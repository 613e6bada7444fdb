"""`beacon train --from-archive`: train on real history, compare with the live model.

Rows come from models/archive_dataset.py (point-in-time features, labels from
after each cutoff). The **held-out window is the latest cutoff**: the new model
is fitted on the earlier cutoffs only (its estimator chosen by grouped CV there,
as `models/train.py` chooses), and the new and the live model (the shipped
`models/<target>.onnx`, scored with onnxruntime as the scoring step scores) are
measured on the same later rows. The new model is written as a **shadow**
(`<target>_shadow.onnx` and its manifest; beacon.yaml decides whether it runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from models.archive_dataset import DEFAULT_HORIZONS, Horizons, from_archive
from models.dataset import Dataset
from models.train import (
    MODELS_DIR,
    POSITIVE_INDEX,
    as_matrix,
    build,
    candidates,
    choose,
    write,
)


@dataclass(frozen=True)
class Comparison:
    target: str
    train_rows: int
    held_out_rows: int
    held_out_window: str  # the cutoff of the held-out rows
    new_roc_auc: float | None
    live_roc_auc: float | None
    estimator: str


def held_out(dataset: Dataset) -> tuple[list[int], list[int], str]:
    """Row indices before the latest cutoff, at it, and that cutoff."""
    latest = max(dataset.as_of)
    train = [i for i, day in enumerate(dataset.as_of) if day < latest]
    test = [i for i, day in enumerate(dataset.as_of) if day == latest]
    return train, test, latest


def live_probabilities(onnx_path: Path, rows: list[list[float]]) -> Any:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    manifest = json.loads(onnx_path.with_suffix("").with_suffix(".manifest.json").read_text())
    inputs = np.asarray(rows, dtype=np.float32)
    outputs = session.run(None, {manifest["input_name"]: inputs})
    probabilities = outputs[1]
    if isinstance(probabilities, list):  # a ZipMap: one {class: p} per row
        return np.asarray([p[POSITIVE_INDEX] for p in probabilities])
    return np.asarray(probabilities)[:, POSITIVE_INDEX]


def _auc(labels: Any, probabilities: Any) -> float | None:
    return round(float(roc_auc_score(labels, probabilities)), 4) if len(set(labels)) > 1 else None


def compare(dataset: Dataset, seed: int, live_dir: Path = MODELS_DIR) -> Comparison:
    train, test, latest = held_out(dataset)
    x, y = as_matrix(dataset.rows), np.asarray(dataset.labels, dtype=np.int64)
    if not train or len(set(y[train])) < 2:
        raise ValueError(f"{dataset.target}: the cutoffs before {latest} hold too few labels")
    groups = [dataset.groups[i] for i in train]
    best, _ = choose(x[train], y[train], groups, seed)
    model = clone(candidates(seed)[best]).fit(x[train], y[train])
    new = model.predict_proba(x[test])[:, POSITIVE_INDEX]
    live_path = live_dir / f"{dataset.target}.onnx"
    live = live_probabilities(live_path, [dataset.rows[i] for i in test])
    return Comparison(
        target=dataset.target,
        train_rows=len(train),
        held_out_rows=len(test),
        held_out_window=latest,
        new_roc_auc=_auc(y[test], new),
        live_roc_auc=_auc(y[test], live),
        estimator=best,
    )


def train_from_archive(
    rows: Iterable[Mapping[str, Any]],
    *,
    seed: int = 7,
    horizons: Horizons = DEFAULT_HORIZONS,
    every_days: int = 7,
    out: Path = MODELS_DIR,
    live_dir: Path = MODELS_DIR,
    by_receipt: bool = True,
) -> list[Comparison]:
    datasets = from_archive(rows, horizons=horizons, every_days=every_days, by_receipt=by_receipt)
    results = []
    for target, dataset in sorted(datasets.items()):
        try:
            comparison = compare(dataset, seed, live_dir)
        except ValueError as err:
            print(f"{target}: skipped ({err})")
            continue
        artifact = build(dataset, seed, datetime.now(UTC).replace(microsecond=0), role="shadow")
        onnx_path, manifest_path = write(artifact, out)
        results.append(comparison)
        print(
            f"{target}: {len(dataset.rows)} rows; held out the cutoff {comparison.held_out_window}"
            f" ({comparison.held_out_rows} rows): new {comparison.estimator} ROC-AUC"
            f" {comparison.new_roc_auc}, live model {comparison.live_roc_auc}"
        )
        print(f"  wrote {onnx_path} and {manifest_path} (role shadow)")
    return results
