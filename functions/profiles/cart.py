"""The cart computed trait: Segment's e-commerce events change one product, a cart view
with its `products` replaces the cart, an order clears it (segment_definitions.CartTrait).
Pure logic, called by `apply.py`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from functions.profiles.state import Cart, CartItem, TraitState, epoch
from functions.profiles.values import as_key, as_number, later
from functions.shared.events import CanonicalEvent, EventType
from functions.shared.profile_limits import MAX_NAME_CHARS
from functions.shared.segment_definitions import CartTrait


def apply_cart(ts: TraitState, trait: CartTrait, event: CanonicalEvent) -> None:
    if event.type is not EventType.TRACK or event.event is None:
        return
    name, at = event.event, event.timestamp
    if name not in (trait.added, trait.removed, trait.viewed, *trait.cleared_by):
        return
    cart = ts.cart if ts.cart is not None else Cart()
    ts.cart = cart
    if cart.reset_at is not None and at < cart.reset_at:
        return  # happened before the order or snapshot that replaced the cart
    props = event.properties
    if name in trait.cleared_by:
        cart.items.clear()
        cart.reset_at = at
    elif name == trait.viewed:
        products = props.get("products")
        if not isinstance(products, list):
            return  # a view without the cart's content changes nothing
        cart.items.clear()
        for product in products:
            if isinstance(product, dict):
                _cart_add(cart, product, at, trait.max_items)
        cart.reset_at = at
    elif name == trait.added:
        _cart_add(cart, props, at, trait.max_items)
    else:
        pid = _product_id(props)
        item = cart.items.get(pid) if pid is not None else None
        if pid is None or item is None:
            return
        quantity = as_number(props.get("quantity"))
        item.quantity -= item.quantity if quantity is None else int(quantity)
        item.at = epoch(at)
        if item.quantity <= 0:
            del cart.items[pid]
    cart.last_change = later(cart.last_change, at)


def _cart_add(cart: Cart, product: Mapping[str, Any], at: datetime, max_items: int) -> None:
    pid = _product_id(product)
    if pid is None:
        return
    quantity = as_number(product.get("quantity"))
    price = as_number(product.get("price"))
    item = cart.items.get(pid)
    if item is None:
        item = cart.items[pid] = CartItem(0, 0.0, None, epoch(at))
    item.quantity += 1 if quantity is None else max(int(quantity), 0)
    item.price = item.price if price is None else price
    name = product.get("name")
    item.name = name[:MAX_NAME_CHARS] if isinstance(name, str) else item.name
    item.at = epoch(at)
    while len(cart.items) > max_items:
        oldest = min(cart.items, key=lambda p: (cart.items[p].at, p))
        del cart.items[oldest]


def _product_id(props: Mapping[str, Any]) -> str | None:
    for key in ("product_id", "productId", "sku", "id"):
        value = as_key(props.get(key))
        if value is not None:
            return value
    return None
