"""A person's recent items: e-commerce events as implicit feedback, kept bounded.

The recommender (functions/scoring/recommend.py) needs, per person, the items they
looked at, put in a cart and bought, and when. The segments step records them on the
profile as it applies events, so the scoring step has them in the profile it reads
anyway (no extra storage read). Pure: no I/O, no clock.

Events (Segment's e-commerce spec v2; Snowplow's transaction items arrive through
ingest as the same Segment-shaped `Order Completed`):

| event | items | weight |
|---|---|---|
| `Product Viewed`, `Product Clicked` | `product_id` (or `sku`, `id`) | 1 |
| `Product Added` | the same | 3 |
| `Order Completed` | each `products[]` line | 5, and marked bought |

Limits (client data is hostile data): an item id is 1-64 characters of
`[A-Za-z0-9._:/-]` (anything else is not an item and is ignored, not cut: a cut id
would name a different item); at most `MAX_ORDER_LINES` lines of one order count; a
category is cut at 64 characters; the profile keeps the `MAX_ITEMS` most recently
touched items, so no stream of invented ids can grow it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from functions.shared.events import CanonicalEvent, EventType
from functions.shared.profile_limits import MAX_ITEM_ID_CHARS, MAX_ITEMS

MAX_ORDER_LINES = 50  # lines of one order that count
MAX_CATEGORY_CHARS = MAX_ITEM_ID_CHARS
MAX_WEIGHT = 1_000.0  # one item's accumulated weight stops growing here
ITEM_ID = re.compile(rf"[A-Za-z0-9._:/\-]{{1,{MAX_ITEM_ID_CHARS}}}")
WEIGHTS = {"view": 1.0, "cart": 3.0, "order": 5.0}
EVENT_KINDS = {
    "Product Viewed": "view",
    "Product Clicked": "view",
    "Product Added": "cart",
    "Order Completed": "order",
}


@dataclass
class ItemSeen:
    """What a profile remembers of one item."""

    weight: float  # sum of the interactions' weights (capped)
    at: int  # event time (epoch s) of the latest interaction
    bought: int = 0  # event time of the latest order of it; 0: never bought
    category: str | None = None

    def to_list(self) -> list[Any]:
        return [round(self.weight, 3), self.at, self.bought, self.category]

    @classmethod
    def from_list(cls, raw: list[Any]) -> ItemSeen:
        defaults: list[Any] = [0.0, 0, 0, None]
        weight, at, bought, category = [*raw[:4], *defaults[len(raw[:4]) :]]
        return cls(float(weight), int(at), int(bought), category)


@dataclass(frozen=True)
class Interaction:
    item_id: str
    kind: str  # view, cart or order
    category: str | None


def item_id(value: Any) -> str | None:
    """A client's product id as an item id, or None if it is not a valid one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if ITEM_ID.fullmatch(text) else None


def _category(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_CATEGORY_CHARS]


def _product(props: Mapping[str, Any]) -> str | None:
    for key in ("product_id", "productId", "sku", "id"):
        if key in props:
            found = item_id(props[key])
            if found is not None:
                return found
    return None


def interactions(event: CanonicalEvent) -> list[Interaction]:
    """The items an event is about, with its kind; [] for every other event."""
    if event.type is not EventType.TRACK or event.event not in EVENT_KINDS:
        return []
    kind = EVENT_KINDS[event.event]
    props = event.properties
    if kind != "order":
        found = _product(props)
        return [] if found is None else [Interaction(found, kind, _category(props.get("category")))]
    lines = props.get("products")
    out = []
    for line in lines[:MAX_ORDER_LINES] if isinstance(lines, list) else []:
        if isinstance(line, Mapping) and (found := _product(line)) is not None:
            out.append(Interaction(found, kind, _category(line.get("category"))))
    return out


def record_items(items: dict[str, ItemSeen], event: CanonicalEvent, at: int) -> None:
    """Add an event's interactions (event time `at`, epoch s) to `items`, in place."""
    for interaction in interactions(event):
        add_interaction(items, interaction, at)
    cap(items)


def add_interaction(items: dict[str, ItemSeen], interaction: Interaction, at: int) -> None:
    """One interaction into `items` (uncapped: the caller caps once)."""
    seen = items.get(interaction.item_id)
    if seen is None:
        seen = items[interaction.item_id] = ItemSeen(0.0, at)
    seen.weight = min(MAX_WEIGHT, seen.weight + WEIGHTS[interaction.kind])
    seen.at = max(seen.at, at)
    if interaction.kind == "order":
        seen.bought = max(seen.bought, at)
    if interaction.category is not None:
        seen.category = interaction.category


def fold_items(mine: dict[str, ItemSeen], theirs: Mapping[str, ItemSeen]) -> None:
    """A merged-away profile's items into the survivor's (weights add, times max)."""
    for key, other in theirs.items():
        seen = mine.get(key)
        if seen is None:
            mine[key] = ItemSeen(other.weight, other.at, other.bought, other.category)
            continue
        seen.weight = min(MAX_WEIGHT, seen.weight + other.weight)
        if other.at > seen.at and other.category is not None:
            seen.category = other.category
        seen.at = max(seen.at, other.at)
        seen.bought = max(seen.bought, other.bought)
    cap(mine)


def cap(items: dict[str, ItemSeen]) -> None:
    """Keep the MAX_ITEMS most recently touched items (ties: the smaller id)."""
    if len(items) > MAX_ITEMS:
        keep = sorted(items.items(), key=lambda kv: (-kv[1].at, kv[0]))[:MAX_ITEMS]
        items.clear()
        items.update(keep)


def recency_weights(
    items: Mapping[str, ItemSeen], now: int, half_life_days: float = 14.0
) -> dict[str, float]:
    """Each item's weight, halved every `half_life_days` since it was last touched:
    what a person did this week says more about what they want next than last year."""
    out = {}
    for key, seen in items.items():
        age_days = max(0.0, (now - seen.at) / 86_400)
        out[key] = seen.weight * math.pow(0.5, age_days / half_life_days)
    return out


def bought(items: Mapping[str, ItemSeen]) -> set[str]:
    return {key for key, seen in items.items() if seen.bought}


def encode_items(items: Mapping[str, ItemSeen]) -> dict[str, list[Any]]:
    return {key: seen.to_list() for key, seen in items.items()}


def decode_items(raw: Mapping[str, Iterable[Any]]) -> dict[str, ItemSeen]:
    return {str(key): ItemSeen.from_list(list(value)) for key, value in raw.items()}
