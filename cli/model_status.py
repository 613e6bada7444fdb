"""`beacon models status`: each configured model, its version and quality, and today's
feature drift against training, from the histograms the scoring step writes per batch."""

from __future__ import annotations

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
    totals: Counter[str] = counters.day_totals(drift_counter(manifest), day)
    rows = totals.pop("rows", 0)
    psi: dict[str, float] = {}
    if rows:
        for name in manifest.feature_names:
            reference = manifest.training.features[name].proportions
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
    return status
