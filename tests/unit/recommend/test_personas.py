"""Personas: the ONNX assignment equals scikit-learn's, descriptions, CEL, the step."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions.profiles.evaluate import CompiledSegments
from functions.profiles.interactions import ItemSeen
from functions.profiles.state import ProfileState
from functions.scoring.personas import (
    PersonasMismatch,
    affinity_name,
    load_personas,
    persona_rows,
)
from functions.shared.segment_definitions import SegmentsConfig
from models.personas import choose_k, describe, export, fit

MODELS = Path(__file__).resolve().parents[3] / "models"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def blobs(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(4, 6))
    return np.vstack([c + rng.normal(0, 1, size=(150, 6)) for c in centres]).astype(np.float32)


def onnx_labels(data: bytes, rows: np.ndarray) -> list[int]:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [int(v) for v in session.run(None, {name: rows})[0]]


def test_the_onnx_assignment_equals_scikit_learns_on_the_same_rows() -> None:
    rows = blobs()
    pipeline = fit(rows, 4, seed=7)
    expected = [int(v) for v in pipeline.predict(rows)]
    assert onnx_labels(export(pipeline, rows.shape[1]), rows) == expected
    # Renumbered by size, largest first, and still the nearest centre.
    sizes = np.bincount(expected)
    assert list(sizes) == sorted(sizes, reverse=True)


def test_the_shipped_personas_assign_like_their_manifest_says() -> None:
    manifest = json.loads((MODELS / "personas.manifest.json").read_text())
    assigner = load_personas(MODELS / "personas.manifest.json", {0: "Window Shoppers"})
    assert assigner.personas[0].name == "Window Shoppers"
    assert len(assigner.personas) == manifest["k"]
    # The manifest's own centres land in their own persona.
    centres = [[p["centre"][f] for f in manifest["features"]] for p in manifest["personas"]]
    assert assigner.assign(centres) == [p["id"] for p in manifest["personas"]]


def test_a_tampered_graph_fails_loudly(tmp_path: Path) -> None:
    manifest = json.loads((MODELS / "personas.manifest.json").read_text())
    (tmp_path / "personas.onnx").write_bytes((MODELS / "personas.onnx").read_bytes() + b"x")
    (tmp_path / "personas.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PersonasMismatch, match="SHA-256"):
        load_personas(tmp_path / "personas.manifest.json", {})


def test_silhouette_finds_the_number_of_planted_groups() -> None:
    k, curve = choose_k(blobs(), seed=7)
    assert k == 4 and set(curve) == set(range(2, 13))


def test_descriptions_name_what_sets_a_centre_apart() -> None:
    names = ["recency_days", "orders_365d", "lifetime_value", "product_views_30d"]
    names += [affinity_name("Camping"), affinity_name("Shoes")]
    text = describe(
        [0.0, 1.2, 0.9, -0.8, 0, 0], [5, 4, 900, 2, 0.7, 0.3], names, ["Camping", "Shoes"]
    )
    assert text == "frequent buyer, high spend, light browsing, mostly Camping"


def test_features_use_the_profile_and_its_recent_items() -> None:
    view = {"computed": {"orders_365d": 3, "lifetime_value": 99.0, "last_seen": NOW}}
    items = {"a": ItemSeen(3.0, 0, category="Camping"), "b": ItemSeen(1.0, 0, category="Shoes")}
    [row] = persona_rows([view], [items], ["Camping", "Climbing", "Shoes"], NOW)
    assert row[:4] == pytest.approx([0.0, np.log1p(3), np.log1p(99.0), 0.0])
    assert row[4:] == [0.75, 0.0, 0.25]


def test_profile_persona_is_usable_in_cel() -> None:
    config = SegmentsConfig.model_validate(
        {"segments": [{"id": "cyclists", "condition": 'profile.persona == "Weekend Cyclists"'}]}
    )
    engine = CompiledSegments(config)
    scores = {"persona": {"id": 3, "name": "Weekend Cyclists", "model_version": "v"}}
    state = ProfileState()
    assert "cyclists" in engine.evaluate_profile("p", state, NOW, scores=scores).memberships
    assert "cyclists" not in engine.evaluate_profile("p", state, NOW, scores={}).memberships
