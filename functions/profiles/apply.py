"""How events and merges change a profile's state (`state.py`), replay-safely.

Pure logic: no I/O and no clock (what needs the time takes `now`). The functions update
the `ProfileState` given in place; the segments handler reads a profile once per batch,
applies all its records, and writes it once.

Replay safety (no write per event). Each profile remembers:
  * per source shard, the highest Kinesis sequence number it has applied
    (`Applied.watermarks`): a replayed record (a Lambda retry, a re-read from TRIM_HORIZON)
    is recognised however old it is, for the cost of one number per shard;
  * a bounded memory of recent message ids (`Applied.recent`: a 64-bit digest of the id ->
    when it was received, for `dedup.window`, at most `dedup.max_ids`, oldest forgotten
    first). This is what catches a client's retry, which arrives as a new record with a new
    sequence number but the same `messageId`, as Segment's 24 h deduplication does. A retry
    is missed only if the profile received more than `max_ids` other events in between.
Both live in the profile item, so they are written with the aggregates they protect: the
aggregates and the memory of what they contain cannot disagree. The watermark is compared
with its value at the start of a batch and raised at the end, because a batch is applied
in event-time order, not sequence order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from functions.profiles.cart import apply_cart
from functions.profiles.interactions import fold_items, record_items
from functions.profiles.state import (
    MAX_FOLDED_MERGES,
    MAX_SHARDS,
    RECENT_CHANGES,
    Applied,
    ApplyResult,
    Incoming,
    Position,
    ProfileState,
    Sessions,
    Tally,
    TraitState,
    bucket_floor,
    epoch,
    keep_largest,
    window_of,
    window_start,
)
from functions.profiles.touches import add_visit, fold_sessions, visit_of_event
from functions.profiles.values import as_key, as_number
from functions.shared.events import CanonicalEvent, EventType
from functions.shared.profile_limits import (
    MAX_PROFILE_TRAIT_BYTES,
    MAX_PROFILE_TRAITS,
)
from functions.shared.segment_definitions import (
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
    TouchesTrait,
    UniqueListTrait,
    window_seconds,
)

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
    observe: Callable[[ProfileState, CanonicalEvent], None] | None = None,
) -> ApplyResult:
    """Apply a batch of one profile's records, skipping what was applied before, in
    event-time order (the sort is stable). `now` is the batch's wall clock: it expires
    old buckets and message ids. `observe` sees each event once applied (experiments)."""
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
        state.applied.recent[digest] = epoch(record.event.received_at)
        fresh.append(record)
    state.events_applied += len(fresh)
    for record in sorted(fresh, key=lambda r: r.event.timestamp):
        _apply(state, record.event, config, now)
        if observe is not None:
            observe(state, record.event)
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
    record_items(state.items, event, epoch(at))
    for trait in config.computed_traits:
        if isinstance(trait, CartTrait):
            apply_cart(state.trait_state(trait.id), trait, event)
        elif isinstance(trait, RfmTrait):
            if event.type is EventType.TRACK and event.event == trait.event:
                ts = state.trait_state(trait.id)
                tally = _tally_for(event, trait.property, None)
                _add_windowed(ts, tally, at, trait.window, config, now)
                ts.last = _max(ts.last, at)
        elif isinstance(trait, LifecycleTrait):
            continue  # derived from other traits
        elif isinstance(trait, TouchesTrait):
            visit = visit_of_event(event)
            if visit is not None:
                ts = state.trait_state(trait.id)
                ts.sessions = ts.sessions or Sessions()
                add_visit(ts.sessions, visit, event.timestamp, trait.keep)
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
        value = as_key(_property(event, trait.property))
        if value is not None:
            ts.seen[value] = max(ts.seen.get(value, 0), epoch(at))
            keep_largest(ts.seen, trait.max_values)
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
            key = as_key(raw)
            if key is not None:
                tally.values[key] = 1
        else:
            number = as_number(raw)
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
    start = bucket_floor(epoch(at), size)
    if start < window_start(epoch(now), width, size):
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
    fold_items(survivor.items, loser.items)
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
    for analysis, exposure in loser.exposures.items():  # exposed once: the survivor's wins
        survivor.exposures.setdefault(analysis, exposure)
    for merged, when in loser.folded_merges.items():
        survivor.folded_merges.setdefault(merged, when)
    survivor.folded_merges[merge_id] = epoch(now)
    keep_largest(survivor.folded_merges, MAX_FOLDED_MERGES)
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
        keep_largest(mine.seen, trait.max_values)
    if theirs.cart is not None and (
        mine.cart is None or _newer(theirs.cart.last_change, mine.cart.last_change)
    ):
        mine.cart = theirs.cart
    if isinstance(trait, TouchesTrait):
        mine.sessions = fold_sessions(mine.sessions, theirs.sessions, trait.keep)


def remember_change(state: ProfileState, change_id: str, now: datetime) -> None:
    """Note a segment change this write commits (consumers check the id against it)."""
    state.recent_changes[change_id] = epoch(now)
    keep_largest(state.recent_changes, RECENT_CHANGES)


# ---------------------------------------------------------------- expiry


def expire(state: ProfileState, config: SegmentsConfig, now: datetime) -> None:
    """Drop buckets that have left their window as of `now`."""
    clock = epoch(now)
    for trait in config.computed_traits:
        window = window_of(trait)
        ts = state.computed.get(trait.id)
        if window is None or ts is None or not ts.buckets:
            continue
        width = window_seconds(window)
        oldest = window_start(clock, width, config.buckets.size(width))
        for start in [s for s in ts.buckets if s < oldest]:
            del ts.buckets[start]


def _forget_old_ids(applied: Applied, config: SegmentsConfig, now: datetime) -> None:
    oldest = epoch(now) - window_seconds(config.dedup.window)
    for digest in [d for d, at in applied.recent.items() if at < oldest]:
        del applied.recent[digest]
    keep_largest(applied.recent, config.dedup.max_ids)


# ---------------------------------------------------------------- helpers


def _matches(trait: AnyTrait, event: CanonicalEvent) -> bool:
    if isinstance(trait, CartTrait | RfmTrait | LifecycleTrait | TouchesTrait):
        return False
    if trait.type is not None and event.type.value != trait.type:
        return False
    if trait.event is not None and event.event != trait.event:
        return False
    return all(_property(event, path) == wanted for path, wanted in trait.where.items())


def _max_values(trait: AnyTrait) -> int:
    return trait.max_values if isinstance(trait, MostFrequentTrait) else 0


def _property(event: CanonicalEvent, path: str) -> Any:
    current: Any = event.properties
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _cap_watermarks(watermarks: dict[str, int]) -> None:
    if len(watermarks) > MAX_SHARDS:
        keep = sorted(watermarks.items(), key=lambda kv: -kv[1])[:MAX_SHARDS]
        watermarks.clear()
        watermarks.update(keep)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _newer(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a > b)
