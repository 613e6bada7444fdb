"""Training the personas: K-means over standardized profile features, k by silhouette.

Rows: the simulated shoppers' profiles, built by the live profile code
(`apply_events`, the default computed traits) as of every 60th day from day 240,
for everyone seen in the 90 days before (as models/dataset.py does for the
models); features from `functions.scoring.personas.persona_rows`, the scoring
step's own extraction. For k = 2..8, K-means (10 starts, the seed) on the
standardized rows; the silhouette (on a seeded sample of 2,000 rows) chooses k,
and the inertia is kept for the elbow chart (docs/personas-k.svg). Clusters are
numbered by size, largest first, so ids are stable from one run to the next as
long as the groups are.

Each persona's description names what sets its centre apart (a standardized
coordinate beyond +-0.5: "frequent", "high spend", "lapsed", "heavy browsing";
a category holding more than 40 % of its interest: "mostly Camping"), and that is
its default name; `models.persona_names` in beacon.yaml renames them by id.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from functions.profiles.apply import apply_events
from functions.profiles.evaluate import activation
from functions.profiles.interactions import ItemSeen
from functions.profiles.state import Incoming, ProfileState
from functions.scoring.drift import histogram
from functions.scoring.personas import BASE_FEATURES, PERSONA_FEATURE, affinity_name, persona_rows
from functions.shared.events import CanonicalEvent, Source
from functions.shared.segment_definitions import SegmentsConfig

K_RANGE = range(2, 13)
SILHOUETTE_SAMPLE = 2_000
CUTOFF_DAYS = (240, 300, 360, 420, 480)
ACTIVE_WITHIN_DAYS = 90
DIGITS = 6
_SOURCE = Source(name="simulator", protocol="segment")
# Words for a centre's standardized coordinate beyond +-0.5: (below, above).
_WORDS = {
    "recency_days": ("recently active", "lapsed"),
    "orders_365d": ("rarely buys", "frequent buyer"),
    "lifetime_value": ("low spend", "high spend"),
    "product_views_30d": ("light browsing", "heavy browsing"),
}


def simulated_profiles(
    customers: int, seed: int, days: int, start: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, ItemSeen]], list[datetime]]:
    """Profile views, recent items and cutoff per row."""
    from simulator.journeys import generate_journeys

    config = SegmentsConfig()
    views: list[dict[str, Any]] = []
    items: list[dict[str, ItemSeen]] = []
    stamps: list[datetime] = []
    for journey in generate_journeys(customers, days, seed, start):
        times = [
            datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in journey.events
        ]
        state, applied = ProfileState(), 0
        for day in (d for d in CUTOFF_DAYS if d <= days):
            cutoff = start + timedelta(days=day)
            upto = bisect.bisect_right(times, cutoff)
            batch = [
                Incoming(
                    CanonicalEvent.model_validate(
                        {
                            **journey.events[i],
                            "timestamp": times[i],
                            "receivedAt": times[i],
                            "source": _SOURCE,
                        }
                    )
                )
                for i in range(applied, upto)
            ]
            if batch:
                apply_events(state, batch, config, now=cutoff)
                applied = upto
            if state.last_seen is None or cutoff - state.last_seen > timedelta(
                days=ACTIVE_WITHIN_DAYS
            ):
                continue
            views.append(activation(journey.user_id, state, config, cutoff)["profile"])
            items.append(
                {k: ItemSeen(v.weight, v.at, v.bought, v.category) for k, v in state.items.items()}
            )
            stamps.append(cutoff)
    return views, items, stamps


def rows_for(
    views: Sequence[Mapping[str, Any]],
    items: Sequence[Mapping[str, ItemSeen]],
    stamps: Sequence[datetime],
    categories: Sequence[str],
) -> list[list[float]]:
    out: list[list[float]] = []
    for view, seen, at in zip(views, items, stamps, strict=True):
        out += persona_rows([view], [seen], categories, at)
    return out


def choose_k(matrix: np.ndarray, seed: int) -> tuple[int, dict[int, dict[str, float]]]:
    scaled = StandardScaler().fit_transform(matrix)
    curve: dict[int, dict[str, float]] = {}
    for k in K_RANGE:
        model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(scaled)
        silhouette = silhouette_score(
            scaled,
            model.labels_,
            sample_size=min(SILHOUETTE_SAMPLE, len(scaled)),
            random_state=seed,
        )
        curve[k] = {
            "silhouette": round(float(silhouette), 4),
            "inertia": round(float(model.inertia_), 1),
        }
    best = max(curve, key=lambda k: (curve[k]["silhouette"], -k))
    return best, curve


def fit(matrix: np.ndarray, k: int, seed: int) -> Pipeline:
    """Scaler + K-means, centres renumbered by cluster size (largest first)."""
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=seed)),
        ]
    )
    pipeline.fit(matrix)
    kmeans = pipeline.named_steps["kmeans"]
    sizes = np.bincount(kmeans.labels_, minlength=k)
    order = sorted(range(k), key=lambda c: (-int(sizes[c]), c))
    kmeans.cluster_centers_ = kmeans.cluster_centers_[order]
    kmeans.labels_ = np.argsort(order)[kmeans.labels_]
    return pipeline


def describe(
    centre_z: Sequence[float],
    centre_raw: Sequence[float],
    names: Sequence[str],
    categories: Sequence[str],
) -> str:
    words = []
    for name, z in zip(names, centre_z, strict=False):
        if name in _WORDS and abs(z) > 0.5:
            words.append(_WORDS[name][1 if z > 0 else 0])
    shown = {affinity_name(c): c for c in categories}
    shares = [
        (raw, shown[name]) for name, raw in zip(names, centre_raw, strict=True) if name in shown
    ]
    top_share, top = max(shares, default=(0.0, ""))
    if top_share > 0.4:
        words.append(f"mostly {top}")
    elif shares and max(s for s, _ in shares) == 0:
        words.append("no product interest yet")
    else:
        words.append("mixed interests")
    return ", ".join(words) if words else "average"


def export(pipeline: Pipeline, n_features: int) -> bytes:
    from models.train import export_onnx_graph

    return export_onnx_graph(pipeline, n_features, "personas")


def train_and_write(
    customers: int, seed: int, days: int, start: datetime, out: Path, created_at: datetime
) -> tuple[Path, Path, dict[str, Any]]:
    from simulator.catalogue import CATEGORIES

    categories = list(CATEGORIES)
    views, items, stamps = simulated_profiles(customers, seed, days, start)
    names = [s.name for s in BASE_FEATURES] + [affinity_name(c) for c in categories]
    matrix = np.asarray(rows_for(views, items, stamps, categories), dtype=np.float32)
    k, curve = choose_k(matrix, seed)
    pipeline = fit(matrix, k, seed)
    labels = pipeline.predict(matrix)
    scaler = pipeline.named_steps["scale"]
    centres_z = pipeline.named_steps["kmeans"].cluster_centers_
    centres_raw = scaler.inverse_transform(centres_z)
    personas = []
    for c in range(k):
        description = describe(list(centres_z[c]), list(centres_raw[c]), names, categories)
        share = float(np.mean(labels == c))
        personas.append(
            {
                "id": c,
                "name": description,
                "description": description,
                "size": int(np.sum(labels == c)),
                "share": round(share, 4),
                "centre": {
                    n: round(float(v), 4) for n, v in zip(names, centres_raw[c], strict=True)
                },
            }
        )
    onnx_bytes = export(pipeline, len(names))
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    stats = {}
    for column, name in enumerate([*names, PERSONA_FEATURE]):
        values = [float(v) for v in (labels if name == PERSONA_FEATURE else matrix[:, column])]
        edges, proportions = histogram(values)
        stats[name] = {
            "mean": round(float(np.mean(values)), DIGITS),
            "std": round(float(np.std(values)), DIGITS),
            "defaulted": 0.0,
            "bin_edges": edges,
            "proportions": proportions,
        }
    manifest = {
        "kind": "personas",
        "name": "personas",
        "schema_version": 1,
        "version": digest[:16],
        "onnx_file": "personas.onnx",
        "onnx_sha256": digest,
        "estimator": "standard_scaler+kmeans",
        "features": names,
        "categories": categories,
        "k": k,
        "k_selection": {"method": "silhouette", "curve": {str(i): v for i, v in curve.items()}},
        "personas": personas,
        "training": {
            "data": f"simulated: {customers} shoppers, seed {seed}; profiles as of days "
            f"{', '.join(map(str, CUTOFF_DAYS))} seen in the 90 days before",
            "rows": len(matrix),
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(days=days)).isoformat(),
            "features": stats,
        },
        "seed": seed,
        "created_at": created_at.isoformat(),
    }
    out.mkdir(parents=True, exist_ok=True)
    onnx_path, manifest_path = out / "personas.onnx", out / "personas.manifest.json"
    onnx_path.write_bytes(onnx_bytes)
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return onnx_path, manifest_path, manifest


def train_simulated(
    customers: int, seed: int, out: Path, created_at: datetime, chart: Path | None
) -> tuple[Path, Path, dict[str, Any]]:
    """`beacon train`'s personas, with the silhouette/elbow chart written to `chart`."""
    from models.dataset import SIMULATION_DAYS, SIMULATION_START

    written = train_and_write(customers, seed, SIMULATION_DAYS, SIMULATION_START, out, created_at)
    if chart is not None:
        curve = {int(k): v for k, v in written[2]["k_selection"]["curve"].items()}
        chart.write_text(elbow_svg(curve, written[2]["k"]))
    return written


def elbow_svg(curve: Mapping[int, Mapping[str, float]], chosen: int) -> str:
    """Silhouette and inertia per k, side by side, as a small self-contained SVG."""
    ks = sorted(curve)
    panels = [("silhouette (higher is better)", "silhouette"), ("inertia (the elbow)", "inertia")]
    width, height, pad = 320, 200, 36
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height + 20}"'
        ' font-family="sans-serif" font-size="11">'
    ]
    for index, (title, key) in enumerate(panels):
        x0 = index * width
        values = [curve[k][key] for k in ks]
        low, high = min(values), max(values)
        span = (high - low) or 1.0

        def point(i: int, v: float, x0: int = x0, low: float = low, span: float = span) -> str:
            x = x0 + pad + i * (width - 2 * pad) / max(len(ks) - 1, 1)
            y = 20 + (height - pad) * (1 - (v - low) / span)
            return f"{x:.1f},{y:.1f}"

        parts.append(f'<text x="{x0 + pad}" y="12">{title}</text>')
        parts.append(
            '<polyline fill="none" stroke="#2b6cb0" stroke-width="2" points="'
            + " ".join(point(i, v) for i, v in enumerate(values))
            + '"/>'
        )
        for i, (k, v) in enumerate(zip(ks, values, strict=True)):
            x, y = point(i, v).split(",")
            colour = "#c53030" if k == chosen else "#2b6cb0"
            parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{colour}"/>')
            parts.append(f'<text x="{x}" y="{height + 12}" text-anchor="middle">k={k}</text>')
            label = f"{v:.3f}" if key == "silhouette" else f"{v:.0f}"
            parts.append(
                f'<text x="{x}" y="{float(y) - 7:.1f}" text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
