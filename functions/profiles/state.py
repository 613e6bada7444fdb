"""The state a profile keeps: computed traits' buckets and tallies, the cart, memberships,
and the memory of what has been applied (`apply.py` changes it, `computed.py` reads it).

Plain data: no I/O and no clock. `codec.py` stores it; the segments step reads a
profile once per batch, applies all its records, and writes it once.

Bucket layout. A windowed trait keeps a map {bucket start (epoch s): Tally};
buckets are hourly for windows up to `buckets.hourly_up_to` (7 days by default)
and daily beyond, so a 90-day window is at most 90 entries. An event lands in
the bucket of its *event* time, so a late event is counted where it belongs;
buckets that have left the window are dropped on every apply so the item stays
small. As of `now`, a window of W covers the buckets starting at or after
`floor(now) - W + bucket`: the current bucket and the ones before it, exact to
one bucket. A bucket starting at s leaves the window at exactly s + W, which is
what `computed.next_change_at` reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.profiles.interactions import ItemSeen
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import (
    AnyTrait,
    AverageTrait,
    CountTrait,
    MostFrequentTrait,
    RfmTrait,
    SumTrait,
)

MAX_SHARDS = 16  # watermarks kept; after resharding the oldest parents are forgotten
MAX_FOLDED_MERGES = 100
RECENT_CHANGES = 50  # ids of committed segment changes a profile remembers


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
        keep_largest(self.values, max_values)


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


@dataclass(frozen=True)
class Touch:
    """The first visit of a session (functions/profiles/touches.py)."""

    at: int  # event time, epoch s
    channel: str
    campaign: str | None


@dataclass
class Sessions:
    """A touches trait's state: the newest touches (bounded) and the memory of the
    current session, so the next visit knows whether it starts a new one."""

    touches: list[Touch] = field(default_factory=list)  # newest `keep`, oldest first
    count: int = 0  # sessions ever
    first: Touch | None = None  # the first ever, kept when the list has moved on
    visited: int | None = None  # the last visit, epoch s
    campaign: str | None = None  # the current session's campaign key


@dataclass
class TraitState:
    """One computed trait's state; each kind uses the parts it needs."""

    buckets: dict[int, Tally] = field(default_factory=dict)  # windowed kinds, rfm
    lifetime: Tally = field(default_factory=Tally)  # windowless count/sum/average/...
    first: datetime | None = None  # first_seen
    last: datetime | None = None  # last_seen, rfm recency
    seen: dict[str, int] = field(default_factory=dict)  # unique_list: value -> last seen
    cart: Cart | None = None
    sessions: Sessions | None = None


@dataclass
class Membership:
    since: datetime
    held_out: bool = False


@dataclass
class Exposure:
    """A person's place in one experiment analysis (functions/experiments/book.py):
    the arm they were assigned when they entered its segment, and what they did
    within each goal's window after."""

    arm: str
    at: datetime
    converted: set[str] = field(default_factory=set)  # goal ids reached in their window
    values: dict[str, int] = field(default_factory=dict)  # goal id -> value, minor units
    # Goal id -> its CUPED covariate (the configured trait's value at exposure, minor
    # units): behaviour before the exposure, so the arm cannot have changed it.
    covariates: dict[str, int] = field(default_factory=dict)


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
    # Traits refused because the profile's trait limits were reached (profile_limits.py).
    refused_traits: int = 0
    # Experiment analysis id -> this person's exposure (configured analyses only).
    exposures: dict[str, Exposure] = field(default_factory=dict)
    # Recent items by id (views, cart adds, orders), bounded: the recommender's input.
    items: dict[str, ItemSeen] = field(default_factory=dict)

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


# ---------------------------------------------------------------- buckets and time


def window_of(trait: AnyTrait) -> str | None:
    if isinstance(trait, CountTrait | SumTrait | AverageTrait | MostFrequentTrait | RfmTrait):
        return trait.window
    return None


def keep_largest(entries: dict[str, int], limit: int) -> None:
    """Keep the `limit` entries with the largest numbers (ties: the smaller key); 0: all.

    Used for the most frequent values, the newest list values, message ids and
    merge ids. The order is total, so folding in either order keeps the same set.
    """
    if limit and len(entries) > limit:
        keep = sorted(entries.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        entries.clear()
        entries.update(keep)


def window_start(clock: int, width: int, size: int) -> int:
    return bucket_floor(clock, size) - width + size


def bucket_floor(seconds: int, size: int) -> int:
    return seconds - seconds % size


def epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())
