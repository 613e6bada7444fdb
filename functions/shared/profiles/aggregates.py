"""Profile aggregates: the state a profile keeps, and how events and merges change it.

Pure logic: no I/O and no clock (every function that needs the time takes
`now`). The functions update the `ProfileState` they are given in place; the
segments handler reads a profile once per batch, applies all its records, and
writes it once.

Bucket layout. A windowed trait keeps a map {bucket start (epoch s): Tally};
buckets are hourly for windows up to `buckets.hourly_up_to` (7 days by default)
and daily beyond, so a 90-day window is at most 90 entries. An event lands in
the bucket of its *event* time, so a late event is counted where it belongs;
buckets that have left the window are dropped on every apply so the item stays
small. As of `now`, a window of W covers the buckets starting at or after
`floor(now) - W + bucket`: the current bucket and the ones before it, exact to
one bucket. A bucket starting at s leaves the window at exactly s + W, which is
what `next_change_at` reports.

Replay safety (no write per event). Each profile remembers:
  * per source shard, the highest Kinesis sequence number it has applied
    (`Applied.watermarks`): a replayed record (a Lambda retry, a re-read from
    TRIM_HORIZON) is recognised however old it is, for the cost of one number
    per shard;
  * a bounded memory of recent message ids (`Applied.recent`: a 64-bit digest
    of the id -> when it was received, for `dedup.window`, at most
    `dedup.max_ids`, oldest forgotten first). This is what catches a client's
    retry, which arrives as a new record with a new sequence number but the same
    `messageId`, as Segment's 24 h deduplication does. A retry is missed only if
    the profile received more than `max_ids` other events in between.
Both live in the profile item, so they are written with the aggregates they
protect: the aggregates and the memory of what they contain cannot disagree.
The watermark is compared with its value at the start of a batch and raised at
the end, because a batch is applied in event-time order, not sequence order.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.shared.events import CanonicalEvent, EventType
from functions.shared.profiles.definitions import (
    DAY,
    AnyTrait,
    AverageTrait,
    CartTrait,
    CountTrait,
    FirstSeenTrait,
    LastSeenTrait,
    LifecycleTrait,
    MostFrequentTrait,
    RfmTrait,
    SegmentsConfig,
    SumTrait,
    UniqueListTrait,
    window_seconds,
)
from functions.shared.profiles.limits import (
    MAX_NAME_CHARS,
    MAX_NUMBER,
    MAX_PROFILE_TRAIT_BYTES,
    MAX_PROFILE_TRAITS,
    MAX_VALUE_CHARS,
)

MAX_SHARDS = 16  # watermarks kept; after resharding the oldest parents are forgotten
MAX_FOLDED_MERGES = 100
RECENT_CHANGES = 50  # ids of committed segment changes a profile remembers


# ---------------------------------------------------------------- state


@dataclass
class Tally:
    """What one bucket (or a lifetime total) holds: enough for every windowed kind."""

    count: int = 0
    total: float = 0.0  # sum of the numeric property (sum, average, rfm monetary)
    numeric: int = 0  # events that carried a number (the average's denominator)
    values: dict[str, int] = field(default_factory=dict)  # most_frequent

    def add(self, other: Tally, max_values: int) -> None:
        self.count += other.count
        self.total += other.total
        self.numeric += other.numeric
        for value, n in other.values.items():
            self.values[value] = self.values.get(value, 0) + n
        _keep_largest(self.values, max_values)


@dataclass
class CartItem:
    quantity: int
    price: float
    name: str | None
    at: int  # event time (epoch s) of its last change; the oldest is evicted at the cap


@dataclass
class Cart:
    items: dict[str, CartItem] = field(default_factory=dict)  # product id -> item
    last_change: datetime | None = None
    # Time of the last order or cart snapshot: an older add/remove arriving late
    # happened before it and must not bring a bought item back.
    reset_at: datetime | None = None


@dataclass
class TraitState:
    """One computed trait's state; each kind uses the parts it needs."""

    buckets: dict[int, Tally] = field(default_factory=dict)  # windowed kinds, rfm
    lifetime: Tally = field(default_factory=Tally)  # windowless count/sum/average/...
    first: datetime | None = None  # first_seen
    last: datetime | None = None  # last_seen, rfm recency
    seen: dict[str, int] = field(default_factory=dict)  # unique_list: value -> last seen
    cart: Cart | None = None


@dataclass
class Membership:
    since: datetime
    held_out: bool = False


@dataclass(frozen=True)
class Position:
    """Where a record came from: its shard of the `resolved` stream and sequence."""

    shard_id: str
    sequence: int


@dataclass
class Applied:
    """What has been applied already (see the module docstring)."""

    watermarks: dict[str, int] = field(default_factory=dict)  # shard id -> highest sequence
    recent: dict[str, int] = field(default_factory=dict)  # message-id digest -> received (s)


@dataclass
class ProfileState:
    traits: dict[str, Any] = field(default_factory=dict)
    trait_times: dict[str, datetime] = field(default_factory=dict)  # last write per trait
    computed: dict[str, TraitState] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    memberships: dict[str, Membership] = field(default_factory=dict)
    applied: Applied = field(default_factory=Applied)
    # Events this profile (with what was folded into it) has applied, lifetime:
    # written with the aggregates, so it is the exact count a ledger can sum.
    events_applied: int = 0
    folded_merges: dict[str, int] = field(default_factory=dict)  # merge id -> when (s)
    # Consent in force as of the newest event (the consent step's stamp), for
    # conditions and for the destinations' own checks.
    consent: dict[str, bool] = field(default_factory=dict)
    consent_at: datetime | None = None
    user_id: str | None = None  # the newest event's, for destinations keyed by it
    user_id_at: datetime | None = None
    # Ids of the changes this profile's writes announced (newest kept): a change
    # record whose id is not here was never committed (see functions/segments).
    recent_changes: dict[str, int] = field(default_factory=dict)
    # Traits refused because the profile's trait limits were reached (limits.py).
    refused_traits: int = 0

    def trait_state(self, trait_id: str) -> TraitState:
        return self.computed.setdefault(trait_id, TraitState())


@dataclass(frozen=True)
class Incoming:
    """One record for `apply_events`: the event and, from Kinesis, its position."""

    event: CanonicalEvent
    position: Position | None = None


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    redelivered: int  # records applied before (a retry or replay of the stream)
    retried: int  # new records of a message id applied before (a client's retry)

    @property
    def duplicates(self) -> int:
        return self.redelivered + self.retried


# ---------------------------------------------------------------- events


def apply_event(
    state: ProfileState,
    event: CanonicalEvent,
    config: SegmentsConfig,
    now: datetime,
    position: Position | None = None,
) -> bool:
    """Apply one record; False if it was a replay or a retried message id."""
    return apply_events(state, [Incoming(event, position)], config, now).applied == 1


def apply_events(
    state: ProfileState,
    records: Iterable[Incoming],
    config: SegmentsConfig,
    now: datetime,
) -> ApplyResult:
    """Apply a batch of one profile's records, skipping what was applied before.

    Survivors are applied in event-time order (records are already in sequence
    order; the sort is stable). `now` is the batch's wall clock: it expires old
    buckets and old message ids.
    """
    watermarks = dict(state.applied.watermarks)  # as of the start of the batch
    _forget_old_ids(state.applied, config, now)
    fresh: list[Incoming] = []
    redelivered = retried = 0
    for record in records:
        pos = record.position
        if pos is not None and pos.sequence <= watermarks.get(pos.shard_id, -1):
            redelivered += 1
            continue
        digest = message_digest(record.event.message_id)
        if digest in state.applied.recent:
            retried += 1
            continue
        state.applied.recent[digest] = _epoch(record.event.received_at)
        fresh.append(record)
    state.events_applied += len(fresh)
    for record in sorted(fresh, key=lambda r: r.event.timestamp):
        _apply(state, record.event, config, now)
        pos = record.position
        if pos is not None:
            high = state.applied.watermarks.get(pos.shard_id, -1)
            state.applied.watermarks[pos.shard_id] = max(high, pos.sequence)
    _cap_watermarks(state.applied.watermarks)
    _forget_old_ids(state.applied, config, now)
    expire(state, config, now)
    return ApplyResult(applied=len(fresh), redelivered=redelivered, retried=retried)


def message_digest(message_id: str) -> str:
    """64 bits of the message id: 16 characters instead of up to 200."""
    return hashlib.blake2b(message_id.encode(), digest_size=8).hexdigest()


def _apply(
    state: ProfileState, event: CanonicalEvent, config: SegmentsConfig, now: datetime
) -> None:
    at = event.timestamp
    state.first_seen = _min(state.first_seen, at)
    state.last_seen = _max(state.last_seen, at)
    if event.type is EventType.IDENTIFY:
        _merge_traits(state, event.traits, at)
    if event.user_id and (state.user_id_at is None or at >= state.user_id_at):
        state.user_id, state.user_id_at = event.user_id, at
    if event.consent is not None and (state.consent_at is None or at >= state.consent_at):
        state.consent = {c: True for c in event.consent.granted} | {
            c: False for c in event.consent.denied
        }
        state.consent_at = at
    for trait in config.computed_traits:
        if isinstance(trait, CartTrait):
            _apply_cart(state.trait_state(trait.id), trait, event)
        elif isinstance(trait, RfmTrait):
            if event.type is EventType.TRACK and event.event == trait.event:
                ts = state.trait_state(trait.id)
                tally = _tally_for(event, trait.property, None)
                _add_windowed(ts, tally, at, trait.window, config, now)
                ts.last = _max(ts.last, at)
        elif isinstance(trait, LifecycleTrait):
            continue  # derived from other traits
        elif _matches(trait, event):
            _apply_matching(state.trait_state(trait.id), trait, event, config, now)


def _apply_matching(
    ts: TraitState,
    trait: AnyTrait,
    event: CanonicalEvent,
    config: SegmentsConfig,
    now: datetime,
) -> None:
    at = event.timestamp
    if isinstance(trait, FirstSeenTrait):
        ts.first = _min(ts.first, at)
    elif isinstance(trait, LastSeenTrait):
        ts.last = _max(ts.last, at)
    elif isinstance(trait, UniqueListTrait):
        value = _as_key(_property(event, trait.property))
        if value is not None:
            ts.seen[value] = max(ts.seen.get(value, 0), _epoch(at))
            _keep_largest(ts.seen, trait.max_values)
    elif isinstance(trait, CountTrait | SumTrait | AverageTrait | MostFrequentTrait):
        prop = None if isinstance(trait, CountTrait) else trait.property
        tally = _tally_for(event, prop, trait if isinstance(trait, MostFrequentTrait) else None)
        if trait.window is None:
            ts.lifetime.add(tally, _max_values(trait))
        else:
            _add_windowed(ts, tally, at, trait.window, config, now, _max_values(trait))


def _tally_for(
    event: CanonicalEvent, prop: str | None, frequent: MostFrequentTrait | None
) -> Tally:
    tally = Tally(count=1)
    if prop is not None:
        raw = _property(event, prop)
        if frequent is not None:
            key = _as_key(raw)
            if key is not None:
                tally.values[key] = 1
        else:
            number = _as_number(raw)
            if number is not None:
                tally.total, tally.numeric = number, 1
    return tally


def _add_windowed(
    ts: TraitState,
    tally: Tally,
    at: datetime,
    window: str,
    config: SegmentsConfig,
    now: datetime,
    max_values: int = 0,
) -> None:
    width = window_seconds(window)
    size = config.buckets.size(width)
    start = _floor(_epoch(at), size)
    if start < _window_start(_epoch(now), width, size):
        return  # older than the window already: it would be expired at once
    ts.buckets.setdefault(start, Tally()).add(tally, max_values)


def _merge_traits(state: ProfileState, traits: Mapping[str, Any], at: datetime) -> None:
    """Last write by event timestamp wins, trait by trait (a late identify loses).

    Within the profile's limits: a new trait name beyond MAX_PROFILE_TRAITS, or a
    value that would take all traits past MAX_PROFILE_TRAIT_BYTES, is refused
    and counted, so no flood of identifies can grow the item without bound.
    """
    used = _traits_bytes(state.traits)
    for key, value in traits.items():
        seen = state.trait_times.get(key)
        if seen is not None and at < seen:
            continue
        size = _trait_bytes(key, value)
        before = _trait_bytes(key, state.traits[key]) if key in state.traits else 0
        if (key not in state.traits and len(state.traits) >= MAX_PROFILE_TRAITS) or (
            used - before + size > MAX_PROFILE_TRAIT_BYTES
        ):
            state.refused_traits += 1
            continue
        used += size - before
        state.traits[key] = value
        state.trait_times[key] = at


def _trait_bytes(key: str, value: Any) -> int:
    return len(key) + len(json.dumps(value, separators=(",", ":"), default=str))


def _traits_bytes(traits: Mapping[str, Any]) -> int:
    return sum(_trait_bytes(k, v) for k, v in traits.items())


# ---------------------------------------------------------------- cart


def _apply_cart(ts: TraitState, trait: CartTrait, event: CanonicalEvent) -> None:
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
        quantity = _as_number(props.get("quantity"))
        item.quantity -= item.quantity if quantity is None else int(quantity)
        item.at = _epoch(at)
        if item.quantity <= 0:
            del cart.items[pid]
    cart.last_change = _max(cart.last_change, at)


def _cart_add(cart: Cart, product: Mapping[str, Any], at: datetime, max_items: int) -> None:
    pid = _product_id(product)
    if pid is None:
        return
    quantity = _as_number(product.get("quantity"))
    price = _as_number(product.get("price"))
    item = cart.items.get(pid)
    if item is None:
        item = cart.items[pid] = CartItem(0, 0.0, None, _epoch(at))
    item.quantity += 1 if quantity is None else max(int(quantity), 0)
    item.price = item.price if price is None else price
    name = product.get("name")
    item.name = name[:MAX_NAME_CHARS] if isinstance(name, str) else item.name
    item.at = _epoch(at)
    while len(cart.items) > max_items:
        oldest = min(cart.items, key=lambda p: (cart.items[p].at, p))
        del cart.items[oldest]


def _product_id(props: Mapping[str, Any]) -> str | None:
    for key in ("product_id", "productId", "sku", "id"):
        value = _as_key(props.get(key))
        if value is not None:
            return value
    return None


# ---------------------------------------------------------------- merges


def fold(
    survivor: ProfileState,
    loser: ProfileState,
    config: SegmentsConfig,
    merge_id: str,
    now: datetime,
) -> bool:
    """Fold the loser's aggregates into the survivor once per merge id.

    Counts, sums and buckets add; first/last take the min/max; unique lists
    union; the newer cart wins; each trait keeps its newest write (the survivor
    on a tie). Memberships stay the survivor's until the next evaluation, which
    emits the enter/exit changes. Watermarks take the higher of the two per
    shard: a replay of the loser's records, redirected to the survivor by the
    loser's tombstone, must still be recognised after its message ids have aged
    out. That cannot skip a survivor record: the merge record travels on the
    survivor's key, so on a shard they share, every survivor record before the
    loser's last applied one was applied before the merge; on another shard the
    survivor has no records of its own. The loser's recent message ids come too,
    so a client's retry routed to the survivor still applies once. Returns False
    if this merge was folded already.
    """
    if merge_id in survivor.folded_merges:
        return False
    for key, value in loser.traits.items():
        at = loser.trait_times.get(key)
        seen = survivor.trait_times.get(key)
        if at is not None and (seen is None or at > seen):
            survivor.traits[key] = value
            survivor.trait_times[key] = at
    survivor.first_seen = _min(survivor.first_seen, loser.first_seen)
    survivor.events_applied += loser.events_applied
    if _newer(loser.user_id_at, survivor.user_id_at):
        survivor.user_id, survivor.user_id_at = loser.user_id, loser.user_id_at
    if _newer(loser.consent_at, survivor.consent_at):
        survivor.consent, survivor.consent_at = dict(loser.consent), loser.consent_at
    survivor.last_seen = _max(survivor.last_seen, loser.last_seen)
    for trait in config.computed_traits:
        theirs = loser.computed.get(trait.id)
        if theirs is not None:
            _fold_trait(survivor.trait_state(trait.id), theirs, trait)
    for shard, sequence in loser.applied.watermarks.items():
        high = survivor.applied.watermarks.get(shard, -1)
        survivor.applied.watermarks[shard] = max(high, sequence)
    _cap_watermarks(survivor.applied.watermarks)
    for digest, received in loser.applied.recent.items():
        survivor.applied.recent[digest] = max(received, survivor.applied.recent.get(digest, 0))
    for merged, when in loser.folded_merges.items():
        survivor.folded_merges.setdefault(merged, when)
    survivor.folded_merges[merge_id] = _epoch(now)
    _keep_largest(survivor.folded_merges, MAX_FOLDED_MERGES)
    _forget_old_ids(survivor.applied, config, now)
    expire(survivor, config, now)
    return True


def _fold_trait(mine: TraitState, theirs: TraitState, trait: AnyTrait) -> None:
    limit = _max_values(trait)
    for start, tally in theirs.buckets.items():
        mine.buckets.setdefault(start, Tally()).add(tally, limit)
    mine.lifetime.add(theirs.lifetime, limit)
    mine.first = _min(mine.first, theirs.first)
    mine.last = _max(mine.last, theirs.last)
    for value, at in theirs.seen.items():
        mine.seen[value] = max(at, mine.seen.get(value, 0))
    if isinstance(trait, UniqueListTrait):
        _keep_largest(mine.seen, trait.max_values)
    if theirs.cart is not None and (
        mine.cart is None or _newer(theirs.cart.last_change, mine.cart.last_change)
    ):
        mine.cart = theirs.cart


def remember_change(state: ProfileState, change_id: str, now: datetime) -> None:
    """Note a segment change this write commits (consumers check the id against it)."""
    state.recent_changes[change_id] = _epoch(now)
    _keep_largest(state.recent_changes, RECENT_CHANGES)


# ---------------------------------------------------------------- expiry


def expire(state: ProfileState, config: SegmentsConfig, now: datetime) -> None:
    """Drop buckets that have left their window as of `now`."""
    clock = _epoch(now)
    for trait in config.computed_traits:
        window = _window_of(trait)
        ts = state.computed.get(trait.id)
        if window is None or ts is None or not ts.buckets:
            continue
        width = window_seconds(window)
        oldest = _window_start(clock, width, config.buckets.size(width))
        for start in [s for s in ts.buckets if s < oldest]:
            del ts.buckets[start]


def _forget_old_ids(applied: Applied, config: SegmentsConfig, now: datetime) -> None:
    oldest = _epoch(now) - window_seconds(config.dedup.window)
    for digest in [d for d, at in applied.recent.items() if at < oldest]:
        del applied.recent[digest]
    _keep_largest(applied.recent, config.dedup.max_ids)


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
    if isinstance(trait, LifecycleTrait):
        return _lifecycle(state, trait, config, now)
    if isinstance(trait, CartTrait):
        return _cart_value(ts.cart or Cart(), trait, now)
    if isinstance(trait, FirstSeenTrait):
        return ts.first
    if isinstance(trait, LastSeenTrait):
        if ts.last is not None and trait.within is not None:
            return (
                ts.last if now < ts.last + timedelta(seconds=window_seconds(trait.within)) else None
            )
        return ts.last
    if isinstance(trait, UniqueListTrait):
        return [v for v, _ in sorted(ts.seen.items(), key=lambda kv: (-kv[1], kv[0]))]
    if isinstance(trait, RfmTrait):
        return _rfm(ts, trait, config, now)
    tally = _in_window(ts, _window_of(trait), config, now)
    if isinstance(trait, CountTrait):
        return tally.count
    if isinstance(trait, SumTrait):
        return tally.total
    if isinstance(trait, AverageTrait):
        return tally.total / tally.numeric if tally.numeric else None
    if isinstance(trait, MostFrequentTrait):
        if not tally.values:
            return None
        return min(tally.values.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    raise AssertionError(f"unhandled computed trait kind {trait.kind}")


def _in_window(ts: TraitState, window: str | None, config: SegmentsConfig, now: datetime) -> Tally:
    if window is None:
        return ts.lifetime
    width = window_seconds(window)
    oldest = _window_start(_epoch(now), width, config.buckets.size(width))
    total = Tally()
    for start, tally in ts.buckets.items():
        if start >= oldest:
            total.add(tally, max_values=0)
    return total


def _cart_value(cart: Cart, trait: CartTrait, now: datetime) -> dict[str, Any]:
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


def _abandoned_at(cart: Cart, trait: CartTrait) -> datetime:
    assert cart.last_change is not None  # a cart with items has changed
    return cart.last_change + timedelta(seconds=window_seconds(trait.abandoned_after))


def _rfm(ts: TraitState, trait: RfmTrait, config: SegmentsConfig, now: datetime) -> dict[str, Any]:
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
    state: ProfileState, trait: LifecycleTrait, config: SegmentsConfig, now: datetime
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
    window = _window_of(trait)
    if window is not None:
        # The oldest non-empty bucket still in the window leaves it at start + W.
        width = window_seconds(window)
        oldest = _window_start(_epoch(now), width, config.buckets.size(width))
        live = [s for s, tally in ts.buckets.items() if s >= oldest and tally.count]
        if live:
            moments.append(_datetime(min(live) + width))
    if isinstance(trait, LastSeenTrait) and trait.within is not None and ts.last is not None:
        moments.append(ts.last + timedelta(seconds=window_seconds(trait.within)))
    if isinstance(trait, CartTrait) and ts.cart is not None and ts.cart.items:
        moments.append(_abandoned_at(ts.cart, trait))
    if isinstance(trait, RfmTrait) and ts.last is not None:
        moments.extend(ts.last + timedelta(days=limit) for limit in trait.recency_days)
    return moments


def _with_dependencies(config: SegmentsConfig, only: Collection[str] | None) -> set[str] | None:
    if only is None:
        return None
    wanted = set(only)
    for trait in config.computed_traits:
        if isinstance(trait, LifecycleTrait) and trait.id in wanted:
            wanted.update(s.trait for s in trait.stages if s.trait is not None)
    return wanted


# ---------------------------------------------------------------- helpers


def _matches(trait: AnyTrait, event: CanonicalEvent) -> bool:
    if isinstance(trait, CartTrait | RfmTrait | LifecycleTrait):
        return False
    if trait.type is not None and event.type.value != trait.type:
        return False
    if trait.event is not None and event.event != trait.event:
        return False
    return all(_property(event, path) == wanted for path, wanted in trait.where.items())


def _window_of(trait: AnyTrait) -> str | None:
    if isinstance(trait, CountTrait | SumTrait | AverageTrait | MostFrequentTrait | RfmTrait):
        return trait.window
    return None


def _max_values(trait: AnyTrait) -> int:
    return trait.max_values if isinstance(trait, MostFrequentTrait) else 0


def _property(event: CanonicalEvent, path: str) -> Any:
    current: Any = event.properties
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _as_number(value: Any) -> float | None:
    """A finite number within +-MAX_NUMBER, or None: sums of them stay finite."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, str):
            value = float(value[:64])
        if isinstance(value, int | float):
            number = float(value)  # OverflowError for an int past a double's range
            return number if math.isfinite(number) and abs(number) <= MAX_NUMBER else None
    except (ValueError, OverflowError):
        return None
    return None


def _as_key(value: Any) -> str | None:
    """Property values kept as strings (DynamoDB map keys; CEL compares them as such),
    cut at MAX_VALUE_CHARS: a profile keeps many of them."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = str(value)[:MAX_VALUE_CHARS]
    return text if text else None


def _keep_largest(entries: dict[str, int], limit: int) -> None:
    """Keep the `limit` entries with the largest numbers (ties: the smaller key); 0: all.

    Used for the most frequent values, the newest list values, message ids and
    merge ids. The order is total, so folding in either order keeps the same set.
    """
    if limit and len(entries) > limit:
        keep = sorted(entries.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        entries.clear()
        entries.update(keep)


def _cap_watermarks(watermarks: dict[str, int]) -> None:
    if len(watermarks) > MAX_SHARDS:
        keep = sorted(watermarks.items(), key=lambda kv: -kv[1])[:MAX_SHARDS]
        watermarks.clear()
        watermarks.update(keep)


def _window_start(clock: int, width: int, size: int) -> int:
    return _floor(clock, size) - width + size


def _floor(seconds: int, size: int) -> int:
    return seconds - seconds % size


def _epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def _datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _newer(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a > b)
