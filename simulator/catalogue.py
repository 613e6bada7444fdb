"""The simulated shop's catalogue and its shoppers' first names.

Shared by the journeys over days (`journeys.py`) and the quick visits
(`shoppers.py`); the models and the recommender are trained on data generated
from them.

The catalogue has the structure a recommender should find (docs/simulator.md):
  * six categories, three brands each; every category has *main* items (a tent,
    a bike, a GPS watch) and each main item two or three *accessories* of the
    same category and brand (the tent's footprint, the bike's lights) that
    shoppers buy together with it;
  * popularity within a category falls off like Zipf's law (a few best sellers);
  * every category has a season: a peak month, when its items are viewed and
    bought more (tents in summer, down jackets in winter).
It is built by a fixed rule, not drawn at random, so it never changes with a seed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    category: str
    brand: str
    price: float
    accessory_of: str | None  # the main item it goes with, for accessories
    rank: int  # popularity rank within the category (1: best seller)


# category -> (peak month, brands, main item names with a base price, accessory names)
_CATEGORIES: dict[
    str, tuple[int, tuple[str, ...], tuple[tuple[str, float], ...], tuple[str, ...]]
] = {
    "Camping": (
        7,
        ("Nordpeak", "Alpenglow", "Ridgeway"),
        (
            ("Ultralight Tent", 449.0),
            ("Family Tent", 329.0),
            ("Sleeping Bag", 219.0),
            ("Camp Stove", 89.0),
        ),
        ("Footprint", "Stake Kit", "Repair Kit"),
    ),
    "Apparel": (
        12,
        ("Nordpeak", "Fjellstrom", "Ridgeway"),
        (
            ("Down Jacket", 289.0),
            ("Rain Shell", 199.0),
            ("Fleece Pullover", 99.0),
            ("Merino Base Layer", 79.0),
        ),
        ("Beanie", "Gloves", "Neck Gaiter"),
    ),
    "Shoes": (
        4,
        ("Trailfox", "Alpenglow", "Stridewell"),
        (
            ("Trail Running Shoes", 129.0),
            ("Hiking Boots", 189.0),
            ("Approach Shoes", 149.0),
            ("Camp Sandals", 59.0),
        ),
        ("Insoles", "Gaiters", "Laces"),
    ),
    "Cycling": (
        5,
        ("Veloxa", "Trailfox", "Spokehaus"),
        (
            ("Gravel Bike", 1299.0),
            ("Road Bike", 1499.0),
            ("Bike Helmet", 119.0),
            ("Cycling Jersey", 79.0),
        ),
        ("Bike Lights", "Bottle Cage", "Mini Pump"),
    ),
    "Electronics": (
        11,
        ("Orbis", "Spokehaus", "Lumen"),
        (
            ("GPS Watch", 349.0),
            ("Action Camera", 299.0),
            ("Satellite Messenger", 249.0),
            ("Headlamp 400lm", 39.0),
        ),
        ("Charging Cable", "Spare Strap", "Screen Protector"),
    ),
    "Climbing": (
        9,
        ("Cragline", "Alpenglow", "Ridgeway"),
        (
            ("Climbing Rope", 219.0),
            ("Harness", 79.0),
            ("Climbing Shoes", 139.0),
            ("Crash Pad", 199.0),
        ),
        ("Chalk Bag", "Carabiner Set", "Rope Bag"),
    ),
}


def _build() -> list[Item]:
    items: list[Item] = []
    number = 100
    for category, (_peak, brands, mains, accessories) in _CATEGORIES.items():
        rank = 1
        for brand_index, brand in enumerate(brands):
            for main_index, (main_name, base) in enumerate(mains):
                # Each brand sells every main item at its own price level.
                price = round(base * (1.0, 1.15, 0.85)[brand_index], 0)
                main_sku = f"sku-{number}"
                items.append(
                    Item(main_sku, f"{brand} {main_name}", category, brand, price, None, rank)
                )
                number += 1
                rank += 1
                # Two accessories per main item, three for the first: rotating names.
                for k in range(3 if main_index == 0 else 2):
                    accessory = accessories[(main_index + k) % len(accessories)]
                    items.append(
                        Item(
                            f"sku-{number}",
                            f"{brand} {main_name} {accessory}",
                            category,
                            brand,
                            round(max(9.0, price * 0.12), 0),
                            main_sku,
                            rank,
                        )
                    )
                    number += 1
                    rank += 1
    return items


ITEMS: tuple[Item, ...] = tuple(_build())
BY_SKU: dict[str, Item] = {item.sku: item for item in ITEMS}
ACCESSORIES: dict[str, tuple[str, ...]] = {
    main.sku: tuple(i.sku for i in ITEMS if i.accessory_of == main.sku)
    for main in ITEMS
    if main.accessory_of is None
}
PEAK_MONTH: dict[str, int] = {category: spec[0] for category, spec in _CATEGORIES.items()}
PRODUCTS = [(i.sku, i.name, i.category, i.price) for i in ITEMS]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jun"]
Product = tuple[str, str, str, float]  # sku, name, category, price
CATEGORIES = sorted(_CATEGORIES)


def seasonal_weight(category: str, month: int) -> float:
    """How much more a category sells in `month`: 1.0 in its off season, up to 3.0 in
    its peak month, 2.0 a month either side (months wrap round the year)."""
    distance = min((month - PEAK_MONTH[category]) % 12, (PEAK_MONTH[category] - month) % 12)
    return {0: 3.0, 1: 2.0}.get(distance, 1.0)


def popularity_weight(item: Item) -> float:
    """Zipf-like: the n-th best seller of a category sells about 1/n^0.8 as much."""
    return float(1.0 / item.rank**0.8)
