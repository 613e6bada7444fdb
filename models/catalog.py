"""Item attributes for the recommender: learned from events, or loaded from a catalog file.

`beacon train --catalog FILE` takes a CSV (header row) or JSON-lines file with
`item_id`, `category`, `brand`, `price` and optionally `name`. Every row is
validated on its own; the first bad one stops the load with its row number
(`CatalogError`), since a half-loaded catalog would silently skew similarity. Item
ids follow the profile's rule (1-64 characters of `[A-Za-z0-9._:/-]`, see
functions/profiles/interactions.py); text fields are cut at 100 characters.
Attributes from the catalog take precedence over those seen in events.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.profiles.interactions import item_id

MAX_TEXT = 100
MAX_ROWS = 1_000_000


class CatalogError(ValueError):
    """A catalog row that cannot be used, with its row number."""


@dataclass(frozen=True)
class ItemInfo:
    item_id: str
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    name: str | None = None


def from_properties(props: Mapping[str, Any]) -> ItemInfo | None:
    """What an e-commerce event says about its product (Segment spec v2 names)."""
    found = None
    for key in ("product_id", "productId", "sku", "id"):
        if key in props and (found := item_id(props[key])) is not None:
            break
    if found is None:
        return None
    return ItemInfo(
        found, _text(props.get("category")), _text(props.get("brand")), _price(props.get("price"))
    )


def load_catalog(path: str | Path) -> dict[str, ItemInfo]:
    """Item id -> attributes from a CSV or JSON-lines file."""
    path = Path(path)
    items: dict[str, ItemInfo] = {}
    for row_number, row in _rows(path):
        if row_number > MAX_ROWS:
            raise CatalogError(f"{path}: more than {MAX_ROWS} rows")
        where = f"{path} row {row_number}"
        if not isinstance(row, Mapping):
            raise CatalogError(f"{where}: not an object")
        found = item_id(row.get("item_id"))
        if found is None:
            raise CatalogError(f"{where}: item_id {str(row.get('item_id'))[:80]!r} is not valid")
        category = _text(row.get("category"))
        if category is None:
            raise CatalogError(f"{where}: category is missing")
        raw_price = row.get("price")
        price = _price(raw_price)
        if raw_price not in (None, "") and price is None:
            raise CatalogError(f"{where}: price {str(raw_price)[:40]!r} is not a number >= 0")
        items[found] = ItemInfo(
            found, category, _text(row.get("brand")), price, _text(row.get("name"))
        )
    return items


def merge(learned: Mapping[str, ItemInfo], catalog: Mapping[str, ItemInfo]) -> dict[str, ItemInfo]:
    """Event-learned attributes, overridden field by field by the catalog's."""
    out = dict(learned)
    for key, info in catalog.items():
        seen = out.get(key, ItemInfo(key))
        out[key] = ItemInfo(
            key,
            info.category or seen.category,
            info.brand or seen.brand,
            info.price if info.price is not None else seen.price,
            info.name or seen.name,
        )
    return out


def _rows(path: Path) -> Iterable[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    raise CatalogError(f"{path} row {number}: not JSON ({error.msg})") from None
        else:
            # Row 1 is the header; data rows are numbered as a spreadsheet shows them.
            for number, row in enumerate(csv.DictReader(handle), start=2):
                yield number, row


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_TEXT]


def _price(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value)[:40]) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 <= number <= 1e9 else None
