"""What a profile's computed traits are worth as of `now`, and when time alone changes them.

Pure: reads a `ProfileState` (`state.py`), never changes it. `computed_values` is
what CEL sees as `profile.computed` (and what the read API shows);
`next_change_at` is when the sweep must look at the profile again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.profiles.state import (
    Cart,
    ProfileState,
    Sessions,
    Tally,
    TraitState,
    epoch,
    window_of,
    window_start,
)
from functions.profiles.touches import next_change_at as touches_next_change
from functions.profiles.touches import touches_value
from functions.shared import segment_definitions as trait_kinds
from functions.shared.segment_definitions import DAY, AnyTrait, SegmentsConfig, window_seconds

# ---------------------------------------------------------------- values


def computed_values(state: ProfileState, config: SegmentsConfig, now: datetime) -> dict[str, Any]:
    """What CEL sees as `profile.computed`, as of `now`.

    A trait with no value (an average of nothing, a last_seen outside its
    `within`) is absent, so conditions test it with `has()`.
    """
    values: dict[str, Any] = {}
    for trait in config.computed_traits:
        value = _value(state, trait, config, now)
        if value is not None:
            values[trait.id] = value
    return values


def _value(state: ProfileState, trait: AnyTrait, config: SegmentsConfig, now: datetime) -> Any:
    ts = state.computed.get(trait.id, TraitState())
    if isinstance(trait, trait_kinds.LifecycleTrait):
        return _lifecycle(state, trait, config, now)
    if isinstance(trait, trait_kinds.CartTrait):
        return _cart_value(ts.cart or Cart(), trait, now)
    if isinstance(trait, trait_kinds.FirstSeenTrait):
        return ts.first
    if isinstance(trait, trait_kinds.LastSeenTrait):
        if ts.last is not None and trait.within is not None:
            return (
                ts.last if now < ts.last + timedelta(seconds=window_seconds(trait.within)) else None
            )
        return ts.last
    if isinstance(trait, trait_kinds.UniqueListTrait):
        return [v for v, _ in sorted(ts.seen.items(), key=lambda kv: (-kv[1], kv[0]))]
    if isinstance(trait, trait_kinds.RfmTrait):
        return _rfm(ts, trait, config, now)
    if isinstance(trait, trait_kinds.TouchesTrait):
        return touches_value(ts.sessions or Sessions(), trait, now)
    tally = _in_window(ts, window_of(trait), config, now)
    if isinstance(trait, trait_kinds.CountTrait):
        return tally.count
    if isinstance(trait, trait_kinds.SumTrait):
        return tally.total
    if isinstance(trait, trait_kinds.AverageTrait):
        return tally.total / tally.numeric if tally.numeric else None
    if isinstance(trait, trait_kinds.MostFrequentTrait):
        if not tally.values:
            return 0 if trait.output == "count" else None
        top = min(tally.values.items(), key=lambda kv: (-kv[1], kv[0]))
        return top[1] if trait.output == "count" else top[0]
    raise AssertionError(f"unhandled computed trait kind {trait.kind}")


def _in_window(ts: TraitState, window: str | None, config: SegmentsConfig, now: datetime) -> Tally:
    if window is None:
        return ts.lifetime
    width = window_seconds(window)
    oldest = window_start(epoch(now), width, config.buckets.size(width))
    total = Tally()
    for start, tally in ts.buckets.items():
        if start >= oldest:
            total.add(tally, max_values=0)
    return total


def _cart_value(cart: Cart, trait: trait_kinds.CartTrait, now: datetime) -> dict[str, Any]:
    items = sorted(cart.items.items(), key=lambda kv: (kv[1].at, kv[0]))
    value: dict[str, Any] = {
        "items": [
            {"product_id": pid, "quantity": i.quantity, "price": i.price}
            | ({"name": i.name} if i.name else {})
            for pid, i in items
        ],
        "quantity": sum(i.quantity for _, i in items),
        "value": round(sum(i.quantity * i.price for _, i in items), 2),
        "abandoned": bool(items) and _abandoned_at(cart, trait) <= now,
    }
    if cart.last_change is not None:
        value["last_change"] = cart.last_change
    return value


def _abandoned_at(cart: Cart, trait: trait_kinds.CartTrait) -> datetime:
    assert cart.last_change is not None  # a cart with items has changed
    return cart.last_change + timedelta(seconds=window_seconds(trait.abandoned_after))


def _rfm(
    ts: TraitState, trait: trait_kinds.RfmTrait, config: SegmentsConfig, now: datetime
) -> dict[str, Any]:
    tally = _in_window(ts, trait.window, config, now)
    if ts.last is None:
        recency = 1
    else:
        days = (now - ts.last).total_seconds() / DAY
        recency = 5 - sum(1 for limit in trait.recency_days if days >= limit)
    frequency = 1 + sum(1 for limit in trait.frequency if tally.count >= limit)
    monetary = 1 + sum(1 for limit in trait.monetary if tally.total >= limit)
    value: dict[str, Any] = {
        "recency": recency,
        "frequency": frequency,
        "monetary": monetary,
        "score": f"{recency}{frequency}{monetary}",
        "orders": tally.count,
        "revenue": round(tally.total, 2),
    }
    if ts.last is not None:
        value["last_order"] = ts.last
    return value


def _lifecycle(
    state: ProfileState, trait: trait_kinds.LifecycleTrait, config: SegmentsConfig, now: datetime
) -> str:
    for stage in reversed(trait.stages[1:]):
        assert stage.trait is not None  # validated: only the first stage has none
        reached = _value(state, config.trait(stage.trait), config, now)
        if isinstance(reached, int | float) and reached >= stage.at_least:
            return stage.name
    return trait.stages[0].name


# ---------------------------------------------------------------- time


def next_change_at(
    state: ProfileState,
    config: SegmentsConfig,
    now: datetime,
    only: Collection[str] | None = None,
) -> datetime | None:
    """The earliest moment after `now` when a computed value changes by time alone.

    `only` limits the answer to those trait ids (and what a lifecycle among them
    depends on), e.g. the traits some segment condition reads. None when no
    value will ever change without a new event.
    """
    wanted = _with_dependencies(config, only)
    candidates = [
        moment
        for trait in config.computed_traits
        if wanted is None or trait.id in wanted
        for moment in _changes(state, trait, config, now)
        if moment > now
    ]
    return min(candidates, default=None)


def _changes(
    state: ProfileState, trait: AnyTrait, config: SegmentsConfig, now: datetime
) -> list[datetime]:
    ts = state.computed.get(trait.id)
    if ts is None:
        return []
    moments: list[datetime] = []
    window = window_of(trait)
    if window is not None:
        # The oldest non-empty bucket still in the window leaves it at start + W.
        width = window_seconds(window)
        oldest = window_start(epoch(now), width, config.buckets.size(width))
        live = [s for s, tally in ts.buckets.items() if s >= oldest and tally.count]
        if live:
            moments.append(_datetime(min(live) + width))
    if (
        isinstance(trait, trait_kinds.LastSeenTrait)
        and trait.within is not None
        and ts.last is not None
    ):
        moments.append(ts.last + timedelta(seconds=window_seconds(trait.within)))
    if isinstance(trait, trait_kinds.CartTrait) and ts.cart is not None and ts.cart.items:
        moments.append(_abandoned_at(ts.cart, trait))
    if isinstance(trait, trait_kinds.RfmTrait) and ts.last is not None:
        moments.extend(ts.last + timedelta(days=limit) for limit in trait.recency_days)
    if isinstance(trait, trait_kinds.TouchesTrait) and ts.sessions is not None:
        leaves = touches_next_change(ts.sessions, trait, now)
        moments += [leaves] if leaves is not None else []
    return moments


def _with_dependencies(config: SegmentsConfig, only: Collection[str] | None) -> set[str] | None:
    if only is None:
        return None
    wanted = set(only)
    for trait in config.computed_traits:
        if isinstance(trait, trait_kinds.LifecycleTrait) and trait.id in wanted:
            wanted.update(s.trait for s in trait.stages if s.trait is not None)
    return wanted


def _datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
