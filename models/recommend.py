"""Training and evaluating the recommender (docs/recommendations.md).

From the people's e-commerce events (the same `interactions` the profile records,
functions/profiles/interactions.py) it builds, per item, its top-K neighbours:

  * item-to-item collaborative filtering: co-occurrence of two items in one visit
    (a session: events less than 30 minutes apart) or one order, each pair weighted
    by the smaller of the two items' interaction weights, damped by popularity:
    sim(i, j) = C(i, j) / (N(i)^(1 - a) * N(j)^a), N the item's total weight; a = 0.5
    is the cosine, a larger `a` pushes best sellers down a neighbour list;
  * content similarity over item attributes (same category, same brand, close price),
    for items with little history;
  * the hybrid blends them per item: lambda = n / (n + SHRINK) of CF (n: people who
    touched the item) and the rest of content;
  * popularity (the last 30 days of the training window, weighted) per category and
    overall: the fallback.

Everything is deterministic (sorted keys, no random draws): the same events give
the same bytes. `evaluate` measures a method on a temporal split: the artifact is
trained on events before the split, each person's recent items before it are their
profile, and their purchases in the 60 days after it are the truth.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from functions.profiles.interactions import (
    EVENT_KINDS,
    WEIGHTS,
    Interaction,
    ItemSeen,
    add_interaction,
    cap,
    interactions,
)
from functions.scoring.recommend import ARTIFACT_FORMAT, RecommenderArtifact, recommend
from functions.shared.events import CanonicalEvent, Source
from models.catalog import ItemInfo, from_properties, merge

TOP_K = 20  # neighbours kept per item
SESSION_GAP = 30 * 60
SHRINK = 20.0  # people an item needs before CF outweighs content
DAMPING = 0.3  # chosen on a validation split before the test split (docs)
POPULAR_DAYS = 30
POPULAR_KEPT = 20
HORIZON_DAYS = 60
DIGITS = 5
_SOURCE = Source(name="simulator", protocol="segment")

Neighbours = dict[str, list[tuple[str, float]]]


@dataclass(frozen=True)
class Touch:
    at: int  # epoch s
    interaction: Interaction


@dataclass
class Person:
    person_id: str
    touches: list[Touch]  # oldest first


# ---------------------------------------------------------------- data


def people_from_events(
    streams: Iterable[tuple[str, Sequence[Mapping[str, Any]]]],
) -> tuple[list[Person], dict[str, ItemInfo]]:
    """Wire-shape events per person -> their interactions, and what the events say of
    each item (the last seen attributes win)."""
    people: list[Person] = []
    learned: dict[str, ItemInfo] = {}
    for person_id, events in streams:
        touches = []
        for event in events:
            if event.get("type") != "track" or event.get("event") not in EVENT_KINDS:
                continue
            at = _parse_time(event["timestamp"])
            canonical = CanonicalEvent.model_validate(
                {**event, "timestamp": at, "receivedAt": at, "source": _SOURCE}
            )
            props = canonical.properties
            lines = props.get("products") if event["event"] == "Order Completed" else [props]
            for line in lines if isinstance(lines, list) else []:
                info = from_properties(line) if isinstance(line, Mapping) else None
                if info is not None:
                    learned[info.item_id] = info
            stamp = math.floor(at.timestamp())
            touches += [Touch(stamp, i) for i in interactions(canonical)]
        touches.sort(key=lambda t: t.at)
        people.append(Person(person_id, touches))
    return people, learned


def profile_items(touches: Iterable[Touch], until: int) -> dict[str, ItemSeen]:
    """A person's recent items as their profile holds them at `until` (same cap)."""
    items: dict[str, ItemSeen] = {}
    for touch in touches:
        if touch.at >= until:
            break
        add_interaction(items, touch.interaction, touch.at)
    cap(items)
    return items


# ---------------------------------------------------------------- methods


def _baskets(people: Sequence[Person], until: int) -> Iterable[dict[str, float]]:
    """Visits and orders: item -> its strongest interaction weight in them."""
    for person in people:
        visit: dict[str, float] = {}
        last = None
        for touch in person.touches:
            if touch.at >= until:
                break
            if last is not None and touch.at - last > SESSION_GAP and visit:
                yield visit
                visit = {}
            last = touch.at
            key = touch.interaction.item_id
            visit[key] = max(visit.get(key, 0.0), WEIGHTS[touch.interaction.kind])
        if visit:
            yield visit


def item_to_item(
    people: Sequence[Person], until: int, damping: float = DAMPING, k: int = TOP_K
) -> Neighbours:
    pairs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, float] = defaultdict(float)
    for basket in _baskets(people, until):
        keys = sorted(basket)[:60]  # a huge visit says little about any pair in it
        for a in keys:
            totals[a] += basket[a]
            for b in keys:
                if a != b:
                    pairs[a][b] += min(basket[a], basket[b])
    out: Neighbours = {}
    for a in sorted(pairs):
        scored = [
            (b, c / (totals[a] ** (1 - damping) * totals[b] ** damping))
            for b, c in pairs[a].items()
        ]
        out[a] = _top(scored, k)
    return out


def als_neighbours(
    people: Sequence[Person], until: int, seed: int = 7, k: int = TOP_K
) -> Neighbours:
    """Matrix factorization for implicit feedback (the `implicit` library's ALS; a
    training-only dependency, never in a Lambda bundle), turned into the same top-K
    neighbour lists (cosine of the item factors) so serving does not change."""
    import numpy as np
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    items = sorted({t.interaction.item_id for p in people for t in p.touches if t.at < until})
    column = {item: i for i, item in enumerate(items)}
    weights: dict[tuple[int, int], float] = defaultdict(float)
    for row, person in enumerate(people):
        for touch in person.touches:
            if touch.at < until:
                weights[row, column[touch.interaction.item_id]] += WEIGHTS[touch.interaction.kind]
    keys = sorted(weights)
    matrix = csr_matrix(
        ([weights[key] for key in keys], ([r for r, _ in keys], [c for _, c in keys])),
        shape=(len(people), len(items)),
        dtype=np.float32,
    )
    model = AlternatingLeastSquares(
        factors=32, regularization=0.1, iterations=20, random_state=seed, num_threads=1
    )
    model.fit(matrix, show_progress=False)
    factors = np.asarray(model.item_factors)
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.where(norms == 0, 1, norms)
    similarity = unit @ unit.T
    out: Neighbours = {}
    for i, item in enumerate(items):
        scored = [(items[j], float(similarity[i, j])) for j in range(len(items)) if j != i]
        out[item] = _top([(j, s) for j, s in scored if s > 0], k)
    return out


def content_neighbours(catalog: Mapping[str, ItemInfo], k: int = TOP_K) -> Neighbours:
    """Same category 0.6, same brand 0.3, price closeness up to 0.1."""
    by_category: dict[str | None, list[ItemInfo]] = defaultdict(list)
    for info in catalog.values():
        by_category[info.category].append(info)
    out: Neighbours = {}
    for key in sorted(catalog):
        mine = catalog[key]
        # Only the same category can score above 0.4: other candidates cannot make top-K
        # in a catalog of any size, so comparing within the category is enough.
        scored = []
        for other in by_category[mine.category] if mine.category else []:
            if other.item_id == key:
                continue
            similarity = 0.6 + (0.3 if mine.brand and mine.brand == other.brand else 0.0)
            if mine.price and other.price:
                similarity += 0.1 * math.exp(-abs(math.log(mine.price / other.price)))
            scored.append((other.item_id, similarity))
        if scored:
            out[key] = _top(scored, k)
    return out


def hybrid(
    cf: Neighbours, content: Neighbours, people_per_item: Mapping[str, int], k: int = TOP_K
) -> Neighbours:
    out: Neighbours = {}
    for key in sorted(set(cf) | set(content)):
        share = people_per_item.get(key, 0) / (people_per_item.get(key, 0) + SHRINK)
        blended: dict[str, float] = defaultdict(float)
        for weight, near in ((share, cf.get(key, [])), (1 - share, content.get(key, []))):
            best = max((s for _, s in near), default=0.0) or 1.0
            for other, similarity in near:
                blended[other] += weight * similarity / best
        out[key] = _top(list(blended.items()), k)
    return out


def people_per_item(people: Sequence[Person], until: int) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for person in people:
        for key in {t.interaction.item_id for t in person.touches if t.at < until}:
            counts[key] += 1
    return dict(counts)


def popularity(
    people: Sequence[Person], until: int, categories: Mapping[str, str]
) -> tuple[dict[str, list[str]], list[str]]:
    """The most popular items of the last POPULAR_DAYS before `until`: per category, overall."""
    since = until - POPULAR_DAYS * 86_400
    weight: dict[str, float] = defaultdict(float)
    for person in people:
        for touch in person.touches:
            if since <= touch.at < until:
                weight[touch.interaction.item_id] += WEIGHTS[touch.interaction.kind]
    ranked = [key for key, _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))]
    by_category: dict[str, list[str]] = defaultdict(list)
    for key in ranked:
        category = categories.get(key)
        if category is not None and len(by_category[category]) < POPULAR_KEPT:
            by_category[category].append(key)
    return dict(sorted(by_category.items())), ranked[:POPULAR_KEPT]


def build_artifact(
    people: Sequence[Person],
    catalog: Mapping[str, ItemInfo],
    until: int,
    method: str = "hybrid",
    damping: float = DAMPING,
) -> dict[str, Any]:
    """The artifact's JSON for `method`: hybrid (shipped), item_to_item, content, als
    (needs `implicit`), popularity (overall only) or category_popularity."""
    categories = {k: v.category for k, v in sorted(catalog.items()) if v.category}
    popular, popular_all = popularity(people, until, categories)
    neighbours: Neighbours = {}
    if method in ("hybrid", "item_to_item"):
        neighbours = item_to_item(people, until, damping)
    if method == "content":
        neighbours = content_neighbours(catalog)
    if method == "als":
        neighbours = als_neighbours(people, until)
    if method == "hybrid":
        neighbours = hybrid(neighbours, content_neighbours(catalog), people_per_item(people, until))
    if method == "popularity":
        popular = {}
    return {
        "kind": "recommender",
        "format": ARTIFACT_FORMAT,
        "method": method,
        "neighbours": {k: [[j, round(s, DIGITS)] for j, s in v] for k, v in neighbours.items()},
        "categories": categories,
        "popular": popular,
        "popular_all": popular_all,
    }


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Metrics:
    method: str
    people: int
    hit_rate: float
    ndcg: float
    coverage: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "people": self.people,
            "hit_rate_at_10": round(self.hit_rate, 4),
            "ndcg_at_10": round(self.ndcg, 4),
            "catalog_coverage": round(self.coverage, 4),
        }


def evaluate(
    people: Sequence[Person],
    catalog: Mapping[str, ItemInfo],
    split: int,
    method: str,
    damping: float = DAMPING,
    n: int = 10,
) -> Metrics:
    """Train on events before `split`; for each person with history before it and a
    purchase in the HORIZON_DAYS after it of an item they had not bought before,
    recommend from their profile at `split` and compare with those purchases."""
    data = build_artifact(people, catalog, split, method, damping)
    artifact = RecommenderArtifact.from_json(data, method)
    hits = 0
    gains = 0.0
    tested = 0
    shown: set[str] = set()
    for _, truth, items in held_out_cases(people, split):
        tested += 1
        top = [r.item_id for r in recommend(artifact, items, split, n)]
        shown.update(top)
        hits += any(key in truth for key in top)
        dcg = sum(1 / math.log2(rank + 2) for rank, key in enumerate(top) if key in truth)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(truth), n)))
        gains += dcg / ideal
    return Metrics(
        method,
        tested,
        hits / max(tested, 1),
        gains / max(tested, 1),
        len(shown) / max(len(catalog), 1),
    )


def held_out_cases(
    people: Sequence[Person], split: int
) -> Iterable[tuple[Person, set[str], dict[str, ItemSeen]]]:
    end = split + HORIZON_DAYS * 86_400
    for person in people:
        items = profile_items(person.touches, split)
        if not items:
            continue
        before = {k for k, s in items.items() if s.bought}
        before |= {
            t.interaction.item_id
            for t in person.touches
            if t.at < split and t.interaction.kind == "order"
        }
        truth = {
            t.interaction.item_id
            for t in person.touches
            if split <= t.at < end and t.interaction.kind == "order"
        } - before
        if truth:
            yield person, truth, items


# ---------------------------------------------------------------- shipping


def simulated(
    customers: int, seed: int, days: int, start: datetime
) -> tuple[list[Person], dict[str, ItemInfo]]:
    from simulator.journeys import generate_journeys

    journeys = generate_journeys(customers, days, seed, start)
    return people_from_events((j.user_id, j.events) for j in journeys)


def train_simulated(
    customers: int, seed: int, out: Path, catalog_file: Path | None, created_at: datetime
) -> tuple[Path, Path]:
    """`beacon train`'s recommender: the simulated shoppers of models/dataset.py."""
    from models.catalog import load_catalog
    from models.dataset import SIMULATION_DAYS, SIMULATION_START

    people, learned = simulated(customers, seed, SIMULATION_DAYS, SIMULATION_START)
    catalog = merge(learned, load_catalog(catalog_file)) if catalog_file else learned
    end = SIMULATION_START + timedelta(days=SIMULATION_DAYS)
    source = f"simulated: {customers} shoppers, seed {seed}"
    if catalog_file is not None:
        source += f", catalog {catalog_file.name}"
    return train_and_write(people, catalog, (SIMULATION_START, end), out, seed, created_at, source)


def train_and_write(
    people: Sequence[Person],
    catalog: Mapping[str, ItemInfo],
    window: tuple[datetime, datetime],
    out: Path,
    seed: int,
    created_at: datetime,
    data_source: str,
    log: Callable[[str], None] = print,
) -> tuple[Path, Path]:
    """Evaluate on the last HORIZON_DAYS of the window (trained on what came before),
    then train the shipped artifact on the whole window and write it with its manifest."""
    start, end = window
    split = math.floor((end - timedelta(days=HORIZON_DAYS)).timestamp())
    metrics = {
        method: evaluate(people, catalog, split, method).as_dict()
        for method in ("popularity", "category_popularity", "item_to_item", "content", "hybrid")
    }
    for row in metrics.values():
        log(
            f"  {row['method']:>20}: hit rate@10 {row['hit_rate_at_10']:.3f},"
            f" NDCG@10 {row['ndcg_at_10']:.3f}, coverage {row['catalog_coverage']:.3f}"
            f" ({row['people']} people)"
        )
    data = build_artifact(people, catalog, math.floor(end.timestamp()), "hybrid")
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(raw).hexdigest()
    manifest = {
        "kind": "recommender",
        "name": "recommender",
        "schema_version": 1,
        "version": digest[:16],
        "artifact_file": "recommender.json",
        "artifact_sha256": digest,
        "method": "hybrid",
        "parameters": {
            "top_k": TOP_K,
            "damping": DAMPING,
            "shrink": SHRINK,
            "session_gap_s": SESSION_GAP,
            "popular_days": POPULAR_DAYS,
            "weights": WEIGHTS,
        },
        "training": {
            "data": data_source,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "people": len(people),
            "interactions": sum(len(p.touches) for p in people),
            "items": len(data["categories"]),
            "items_with_neighbours": len(data["neighbours"]),
        },
        "metrics": {
            "split": "temporal: trained before window_end - 60 days, tested on purchases after",
            "split_at": datetime.fromtimestamp(split, UTC).isoformat(),
            "methods": metrics,
        },
        "seed": seed,
        "created_at": created_at.isoformat(),
    }
    out.mkdir(parents=True, exist_ok=True)
    artifact_path = out / "recommender.json"
    manifest_path = out / "recommender.manifest.json"
    artifact_path.write_bytes(raw)
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return artifact_path, manifest_path


def _top(scored: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    return sorted(scored, key=lambda kv: (-kv[1], kv[0]))[:k]


def _parse_time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
