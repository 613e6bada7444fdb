"""`beacon models status`: each configured model, its version and quality, and today's
feature drift against training, from the histograms the scoring step writes per batch."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.scoring.drift import drifting, psi_from_counts
from functions.scoring.manifest import ModelManifest, load_manifest
from functions.scoring.step import drift_counter
from functions.shared.config import BeaconConfig
from functions.shared.dal.counters import DailyCounters


def drift_today(manifest: ModelManifest, counters: DailyCounters, day: str) -> dict[str, Any]:
    reference = {n: manifest.training.features[n].proportions for n in manifest.feature_names}
    return _drift(drift_counter(manifest), reference, counters, day)


def _drift(
    counter: str, references: dict[str, list[float]], counters: DailyCounters, day: str
) -> dict[str, Any]:
    totals: Counter[str] = counters.day_totals(counter, day)
    rows = totals.pop("rows", 0)
    psi: dict[str, float] = {}
    if rows:
        for name, reference in references.items():
            bins = [totals.get(f"{name}|{i}", 0) for i in range(len(reference))]
            psi[name] = round(psi_from_counts(reference, bins), 4)
    return {"rows_scored": rows, "psi": psi}


def models_status(
    config: BeaconConfig, config_dir: Path, counters: DailyCounters, day: str | None = None
) -> list[dict[str, Any]]:
    day = day or datetime.now(UTC).date().isoformat()
    status = []
    for path in config.models.manifests:
        manifest = load_manifest(config_dir / path)
        drift = drift_today(manifest, counters, day)
        status.append(
            {
                "model": manifest.name,
                "role": manifest.role,
                "version": manifest.version,
                "estimator": manifest.metrics.estimator,
                "test_roc_auc": manifest.metrics.roc_auc,
                "thresholds": manifest.thresholds,
                "day": day,
                **drift,
                "drifting": drifting(drift["psi"], config.models.drift_alarm_psi),
            }
        )
    if config.models.personas is not None:
        status.append(personas_status(config, config_dir / config.models.personas, counters, day))
    return status


def personas_status(
    config: BeaconConfig, path: Path, counters: DailyCounters, day: str
) -> dict[str, Any]:
    """The persona mix (the assigned id, one bin per persona) and its features' drift."""
    manifest = json.loads(path.read_text())
    references = {n: s["proportions"] for n, s in manifest["training"]["features"].items()}
    drift = _drift(f"drift#personas#{manifest['version']}", references, counters, day)
    return {
        "model": "personas",
        "role": "primary",
        "version": manifest["version"],
        "estimator": f"{manifest['estimator']} (k={manifest['k']})",
        "training_mix": {str(p["id"]): p["share"] for p in manifest["personas"]},
        "day": day,
        **drift,
        "drifting": drifting(drift["psi"], config.models.drift_alarm_psi),
    }
