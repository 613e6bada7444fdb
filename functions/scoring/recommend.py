"""Recommendations at serving time: a person's recent items against the artifact.

The artifact (`models/recommender.json`, written by `beacon train`, see
docs/recommendations.md) holds, per item, its top-K neighbours with a similarity
(item-to-item co-occurrence blended with content similarity for items with little
history), each item's category, and the most popular items per category and overall.
It is loaded once per container; a profile's top-N is then a few dictionary
look-ups over the profile's recent items (`ProfileState.items`), with no storage
read and no numpy: pure Python, unit-tested without mocks.

Scoring: each recent item counts with its weight (view 1, cart 3, order 5), halved
every two weeks since it was last touched; a candidate's score is the sum over the
person's items of weight x similarity. Items the person bought are never
recommended. When fewer than N candidates come from neighbours, the rest are the
most popular items of the person's preferred categories, then of the whole shop.
Scores are scaled so the best is 1.0.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.profiles.interactions import ItemSeen, bought, recency_weights
from functions.shared.config import Models
from functions.shared.decision import Recommendation

ARTIFACT_FORMAT = 1
MAX_RECOMMENDATIONS = 10  # the decision item stays small
FALLBACK_SCALE = 0.001  # a shop-wide filler ranks below every other candidate
CATEGORY_PRIOR = 0.25  # weight of category popularity next to neighbours (validated, docs)


class RecommenderMismatch(ValueError):
    """The artifact is not the one its manifest describes."""


@dataclass(frozen=True)
class RecommenderArtifact:
    version: str
    neighbours: Mapping[str, tuple[tuple[str, float], ...]]
    categories: Mapping[str, str]
    popular: Mapping[str, tuple[str, ...]]  # category -> items, most popular first
    popular_all: tuple[str, ...]
    manifest: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: str) -> RecommenderArtifact:
        if data.get("kind") != "recommender" or data.get("format") != ARTIFACT_FORMAT:
            raise RecommenderMismatch("not a recommender artifact of format 1")
        return cls(
            version=version,
            neighbours={
                str(i): tuple((str(j), float(s)) for j, s in near)
                for i, near in data["neighbours"].items()
            },
            categories={str(k): str(v) for k, v in data["categories"].items()},
            popular={str(k): tuple(map(str, v)) for k, v in data["popular"].items()},
            popular_all=tuple(map(str, data["popular_all"])),
        )


def load_recommender(manifest_path: str | Path) -> RecommenderArtifact:
    """The manifest and its artifact, checked (kind, SHA-256): a mismatch fails the
    cold start, as a model's does."""
    path = Path(manifest_path)
    manifest = json.loads(path.read_text())
    if manifest.get("kind") != "recommender":
        raise RecommenderMismatch(f"{path}: kind is {manifest.get('kind')!r}, not 'recommender'")
    raw = (path.parent / manifest["artifact_file"]).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != manifest["artifact_sha256"]:
        raise RecommenderMismatch(f"{path}: artifact SHA-256 {digest} is not the manifest's")
    artifact = RecommenderArtifact.from_json(json.loads(raw), str(manifest["version"]))
    return RecommenderArtifact(
        artifact.version,
        artifact.neighbours,
        artifact.categories,
        artifact.popular,
        artifact.popular_all,
        manifest,
    )


def load_configured_recommender(models: Models, base_dir: str | Path) -> RecommenderArtifact | None:
    """beacon.yaml's `models.recommender`, loaded and checked; None if unset."""
    if models.recommender is None:
        return None
    return load_recommender(Path(base_dir) / models.recommender)


def recommend(
    artifact: RecommenderArtifact,
    items: Mapping[str, ItemSeen],
    now: int,
    n: int = MAX_RECOMMENDATIONS,
    *,
    prior: float | None = None,
) -> list[Recommendation]:
    """The top-`n` items for a person whose recent items are `items` (as of `now`, epoch s)."""
    weights = recency_weights(items, now)
    excluded = bought(items)
    scores: dict[str, float] = defaultdict(float)
    for item, weight in weights.items():
        for other, similarity in artifact.neighbours.get(item, ()):
            if other not in excluded:
                scores[other] += weight * similarity
    best = max(scores.values(), default=0.0) or 1.0
    scores = defaultdict(float, {k: v / best for k, v in scores.items()})
    # The popular items of the person's categories, by their share of the person's
    # interest: the prior that neighbours refine, and the fallback without history.
    affinity: dict[str, float] = defaultdict(float)
    for item, seen in items.items():
        category = seen.category or artifact.categories.get(item)
        if category is not None:
            affinity[category] += weights[item]
    total = sum(affinity.values()) or 1.0
    for category, share in affinity.items():
        for position, other in enumerate(artifact.popular.get(category, ())):
            if other not in excluded:
                scores[other] += (
                    (CATEGORY_PRIOR if prior is None else prior) * share / total / (1 + position)
                )
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    for position, other in enumerate(artifact.popular_all):
        if len(ranked) >= n:
            break
        if other not in excluded and other not in scores:
            ranked.append((other, FALLBACK_SCALE / (1 + position)))
    top = ranked[:n]
    best = max((s for _, s in top), default=0.0) or 1.0
    return [Recommendation(item, round(score / best, 4)) for item, score in top]
