"""What one profile may hold, and the largest profile item a configuration allows.

A profile is one DynamoDB item (400 KB at most), and everything in it is fed by
clients holding a public write key. So every part is bounded: the traits by
count and bytes, every value kept as a key (a category, a product id) by length,
every number by magnitude, every list by the configuration's `max_*` settings.
`worst_case_bytes` adds the bounds up for a configuration; Beacon refuses a
configuration whose worst case passes `MAX_STATE_BYTES` (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.shared import segment_definitions as trait_kinds
from functions.shared.segment_definitions import DAY, SegmentsConfig, window_seconds

# Client-fed parts of a profile.
MAX_PROFILE_TRAITS = 200  # distinct trait names; a new one beyond is refused (counted)
MAX_PROFILE_TRAIT_BYTES = 64 * 1024  # names and JSON values of all traits together
MAX_VALUE_CHARS = 100  # a property value kept as a key (category, product id): cut beyond
MAX_NAME_CHARS = 100  # a cart item's name
MAX_NUMBER = 1e15  # larger magnitudes are ignored by sums and averages (sums stay finite)
MAX_CONSENT_CATEGORIES = 50  # as ingest limits them per event
MAX_ITEMS = 40  # recent items a profile remembers for recommendations (newest kept)
MAX_ITEM_ID_CHARS = 64  # an item id longer than this is not an item id (ignored)

# The largest state (uncompressed JSON) a configuration may allow. DynamoDB takes
# 400 KB per item; the rest is room for scores and the item's own attributes.
MAX_STATE_BYTES = 300 * 1024

# Rough JSON sizes (bytes) of one entry of each part, on the generous side.
_TALLY = 80  # {"c":..,"t":..,"n":..} with a bucket key
_STAMP = 16  # an epoch second or a small number with its separator
_DIGEST = 40  # a message-id digest and its time
_WATERMARK = 80  # a shard id and a sequence number
_FIXED = 2_048  # first/last seen, consent time, user id (400 chars) and the keys


@dataclass(frozen=True)
class Bound:
    part: str
    bytes: int


def worst_case(config: SegmentsConfig) -> list[Bound]:
    """The most each part of a profile's state can take under `config`."""
    traits = MAX_PROFILE_TRAIT_BYTES + MAX_PROFILE_TRAITS * (_STAMP + 8)  # + trait_times
    bounds = [
        Bound("traits", traits),
        Bound("memberships", len(config.segments) * (64 + 2 * _STAMP)),
        Bound("message ids (dedup)", config.dedup.max_ids * _DIGEST),
        Bound("merges, changes, watermarks", 100 * _DIGEST + 50 * _DIGEST + 16 * _WATERMARK),
        Bound("consent", MAX_CONSENT_CATEGORIES * (MAX_VALUE_CHARS + 8)),
        Bound("recent items", MAX_ITEMS * (MAX_ITEM_ID_CHARS + MAX_ITEM_ID_CHARS + 4 * _STAMP)),
        Bound("fixed", _FIXED),
    ]
    for trait in config.computed_traits:
        bounds.append(Bound(f"computed.{trait.id}", _trait_bound(trait, config)))
    return bounds


def worst_case_bytes(config: SegmentsConfig) -> int:
    return sum(bound.bytes for bound in worst_case(config))


def check(config: SegmentsConfig) -> None:
    """ValueError naming the largest parts if `config` allows profiles that could outgrow
    the item: a `max_values` or a window too generous for 400 KB."""
    total = worst_case_bytes(config)
    if total > MAX_STATE_BYTES:
        largest = sorted(worst_case(config), key=lambda b: -b.bytes)[:3]
        parts = ", ".join(f"{b.part} {b.bytes // 1024} KB" for b in largest)
        raise ValueError(
            f"segments: a profile could grow to {total // 1024} KB under this configuration,"
            f" over {MAX_STATE_BYTES // 1024} KB (largest: {parts}); lower max_values,"
            " max_items or the windows"
        )


def _trait_bound(trait: object, config: SegmentsConfig) -> int:
    key = MAX_VALUE_CHARS + 8
    if isinstance(trait, trait_kinds.UniqueListTrait):
        return trait.max_values * (key + _STAMP)
    if isinstance(trait, trait_kinds.CartTrait):
        return trait.max_items * (key + MAX_NAME_CHARS + 4 * _STAMP) + 3 * _STAMP
    if isinstance(trait, trait_kinds.RfmTrait):
        return _buckets(trait.window, config) * _TALLY + _STAMP
    if isinstance(trait, trait_kinds.TouchesTrait):
        # Each touch: a time, a channel and a campaign name (200 characters at most).
        return (trait.keep + 1) * (_STAMP + 16 + 200) + 4 * _STAMP + 800
    if isinstance(trait, trait_kinds.MostFrequentTrait):
        per_bucket = _TALLY + trait.max_values * (key + _STAMP)
        return _buckets(trait.window, config) * per_bucket
    if isinstance(trait, trait_kinds.CountTrait | trait_kinds.SumTrait | trait_kinds.AverageTrait):
        return _buckets(trait.window, config) * _TALLY
    return 2 * _STAMP + 32  # first/last seen, lifecycle: a time or a name


def _buckets(window: str | None, config: SegmentsConfig) -> int:
    """Buckets a windowed trait keeps (the current one included); 1 for a lifetime tally."""
    if window is None:
        return 1
    width = window_seconds(window)
    size = config.buckets.size(width)
    return width // size + 1 if size < DAY or width % DAY == 0 else width // DAY + 2
