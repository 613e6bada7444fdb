"""Personas: data-driven groups of people, assigned in the scoring step like a score.

`beacon train` clusters standardized profile features (K-means, k chosen by
silhouette; models/personas.py) and ships the scaler and centres as one ONNX graph
(`models/personas.onnx`, skl2onnx) with a manifest (`personas.manifest.json`,
kind `personas`) that lists the features, each persona's id, generated
description, size and default name, and the features' training histograms.

Features (one extraction for training and serving, `persona_rows`): recency (days
since last seen), frequency (orders in 365 days), monetary value (lifetime
value), engagement (product views in 30 days), each as log(1 + x) so a few big
spenders do not make their own cluster; and the category affinities: the share
of the person's recent-item weight (`ProfileState.items`) in each of the
training catalogue's categories. The ONNX graph standardizes and finds the
nearest centre; the session is created once per container.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from functions.profiles.interactions import ItemSeen
from functions.scoring.features import FeatureSpec, feature_matrix
from functions.scoring.manifest import FeatureStats
from functions.shared.config import Models

# The RFM and engagement part, read from the profile view as the models read theirs.
BASE_FEATURES = (
    FeatureSpec(name="recency_days", source="computed.last_seen", transform="days_since"),
    FeatureSpec(name="orders_365d", source="computed.orders_365d"),
    FeatureSpec(name="lifetime_value", source="computed.lifetime_value"),
    FeatureSpec(name="product_views_30d", source="computed.product_views_30d"),
)
PERSONA_FEATURE = "persona"  # the assigned id, tracked like a feature for the mix's drift


class PersonasMismatch(ValueError):
    """The personas manifest and its ONNX graph disagree."""


def affinity_name(category: str) -> str:
    return "affinity_" + "".join(c if c.isalnum() else "_" for c in category.lower())


def persona_rows(
    views: Sequence[Mapping[str, Any]],
    items: Sequence[Mapping[str, ItemSeen]],
    categories: Sequence[str],
    now: datetime,
) -> list[list[float]]:
    """One row per profile: log1p of the base features, then the category shares."""
    base = feature_matrix(views, BASE_FEATURES, now).rows
    rows = []
    for numbers, seen in zip(base, items, strict=True):
        weight = {c: 0.0 for c in categories}
        for item in seen.values():
            if item.category in weight:
                weight[item.category] += item.weight
        total = sum(weight.values())
        shares = [weight[c] / total if total else 0.0 for c in categories]
        rows.append([math.log1p(max(v, 0.0)) for v in numbers] + shares)
    return rows


@dataclass(frozen=True)
class PersonaInfo:
    id: int
    name: str
    description: str


class PersonaAssigner:
    """The personas' ONNX session (once per container) and their names."""

    def __init__(
        self, manifest: Mapping[str, Any], onnx_bytes: bytes, names: Mapping[int, str]
    ) -> None:
        import onnxruntime as ort

        digest = hashlib.sha256(onnx_bytes).hexdigest()
        if digest != manifest["onnx_sha256"]:
            raise PersonasMismatch(f"personas ONNX SHA-256 {digest} is not the manifest's")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.manifest = manifest
        self.version = str(manifest["version"])
        self.categories: list[str] = list(manifest["categories"])
        self.feature_names: list[str] = list(manifest["features"])
        width = self.session.get_inputs()[0].shape[1]
        if width != len(self.feature_names):
            raise PersonasMismatch(
                f"the personas graph takes {width} features, the manifest lists "
                f"{len(self.feature_names)}"
            )
        self.personas = {
            int(p["id"]): PersonaInfo(
                int(p["id"]), names.get(int(p["id"]), str(p["name"])), str(p["description"])
            )
            for p in manifest["personas"]
        }
        self.training = {
            name: FeatureStats.model_validate(stats)
            for name, stats in manifest["training"]["features"].items()
        }

    def assign(self, rows: Sequence[Sequence[float]]) -> list[int]:
        """The nearest centre's persona id for each row, in one session run."""
        import numpy as np

        if not rows:
            return []
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(self.feature_names))
        name = self.session.get_inputs()[0].name
        labels: Any = self.session.run(None, {name: matrix})[0]
        return [int(v) for v in labels]


def load_configured_personas(models: Models, base_dir: str | Path) -> PersonaAssigner | None:
    """beacon.yaml's `models.personas`, loaded and checked; None if unset."""
    if models.personas is None:
        return None
    return load_personas(Path(base_dir) / models.personas, models.persona_names)


def load_personas(manifest_path: str | Path, names: Mapping[int, str]) -> PersonaAssigner:
    path = Path(manifest_path)
    manifest = json.loads(path.read_text())
    if manifest.get("kind") != "personas":
        raise PersonasMismatch(f"{path}: kind is {manifest.get('kind')!r}, not 'personas'")
    return PersonaAssigner(manifest, (path.parent / manifest["onnx_file"]).read_bytes(), names)
