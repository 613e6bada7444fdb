"""Backfill: a profile's history replayed through the profile code, and grafted in.

Pure logic (no I/O, no clock). A new or changed computed trait or segment starts
empty for the people already known; `beacon backfill` (functions/segments/backfill.py)
replays each person's archived events through `apply_events` and the compiled
segments — the code the segments step runs live, not a second implementation — and
grafts the chosen definitions' state into the live profile.

What makes it exact (docs/archive.md "Backfill"):
  * the replay takes exactly the archived records the live profile has applied: a
    record's stream position at or below the profile's watermark for its shard.
    Records above it are the live step's, which applies them with the same
    definitions after the graft: nothing counted twice, nothing lost;
  * it waits until the archive holds everything up to those watermarks
    (`archive_covers`): a record applied live but still in the archive's buffer
    would otherwise be missing from the replay;
  * the replayed state *replaces* the chosen definitions' state, so what the live
    step applied to them since they were deployed is not added a second time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.profiles.apply import apply_events, expire
from functions.profiles.evaluate import Change, CompiledSegments, activation, variant_of
from functions.profiles.state import Incoming, Position, ProfileState
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import SegmentsConfig


@dataclass(frozen=True)
class ArchivedEvent:
    """An archived event and where it sat in the `resolved` stream (None: archived
    before positions were kept, long applied)."""

    event: CanonicalEvent
    position: Position | None = None


@dataclass(frozen=True)
class Definitions:
    """Which computed traits and segments a backfill recomputes (by id)."""

    traits: frozenset[str]
    segments: frozenset[str]

    @classmethod
    def chosen(
        cls, config: SegmentsConfig, traits: Collection[str] = (), segments: Collection[str] = ()
    ) -> Definitions:
        """The named definitions, or every one when none is named; an unknown name is
        refused (a typo must not backfill nothing and report success)."""
        known_traits = {t.id for t in config.computed_traits}
        known_segments = {s.id for s in config.segments}
        unknown = sorted((set(traits) - known_traits) | (set(segments) - known_segments))
        if unknown:
            raise ValueError(f"not in the configuration: {', '.join(unknown)}")
        if not traits and not segments:
            return cls(frozenset(known_traits), frozenset(known_segments))
        return cls(frozenset(traits), frozenset(segments))


def applied_live(position: Position | None, watermarks: Mapping[str, int]) -> bool:
    """Whether the live profile has applied this record (see the module docstring)."""
    return position is None or position.sequence <= watermarks.get(position.shard_id, -1)


def archive_covers(watermarks: Mapping[str, int], archived_through: Mapping[str, int]) -> bool:
    """Whether the archive holds every record up to the profile's watermarks: a shard's
    records are archived in order, so its highest archived position says how far."""
    return all(archived_through.get(shard, -1) >= seq for shard, seq in watermarks.items())


def replay(
    profile_id: str,
    history: Iterable[ArchivedEvent],
    config: SegmentsConfig,
    engine: CompiledSegments,
    *,
    scores: Mapping[str, Any] | None = None,
) -> ProfileState:
    """A fresh profile built from `history` as the segments step built it: each event
    applied at the moment it was received (windows and message-id memory as live),
    the segments evaluated after each, so a membership's `since` is when the event that
    made it arrived. Score conditions read the profile's current scores (past scores
    are not kept)."""
    state = ProfileState()
    ordered = sorted(
        history, key=lambda a: (a.event.received_at, a.event.timestamp, a.event.message_id)
    )
    for archived in ordered:
        now = archived.event.received_at
        # Positions are for choosing what to replay; here the message-id memory
        # dedupes (events are replayed in receipt order, not sequence order).
        if not apply_events(state, [Incoming(archived.event)], config, now).applied:
            continue
        variables = activation(profile_id, state, config, now, scores=scores, consent=state.consent)
        state.memberships = engine.evaluate(
            profile_id, variables, state.memberships, now
        ).memberships
    return state


def graft(
    profile_id: str,
    live: ProfileState,
    replayed: ProfileState,
    chosen: Definitions,
    config: SegmentsConfig,
    now: datetime,
) -> list[Change]:
    """Put the chosen definitions' replayed state into the live profile; the segment
    entries and exits this makes (an entry dated by its replayed `since`)."""
    for trait_id in chosen.traits:
        if trait_id in replayed.computed:
            live.computed[trait_id] = replayed.computed[trait_id]
        else:
            live.computed.pop(trait_id, None)
    expire(live, config, now)
    changes: list[Change] = []
    segments = {s.id: s for s in config.segments}
    for segment_id in sorted(chosen.segments):
        was, now_in = live.memberships.get(segment_id), replayed.memberships.get(segment_id)
        if (was is None) == (now_in is None):
            if now_in is not None and was is not None:
                live.memberships[segment_id] = now_in  # the replay's `since` is the true one
            continue
        segment = segments[segment_id]
        if now_in is not None:
            live.memberships[segment_id] = now_in
            variant = None if now_in.held_out else variant_of(segment, profile_id)
            entered = Change(
                "segment.entered", profile_id, segment_id, now_in.since, now_in.held_out, variant
            )
            changes.append(entered)
        elif was is not None:
            del live.memberships[segment_id]
            variant = None if was.held_out else variant_of(segment, profile_id)
            changes.append(
                Change("segment.exited", profile_id, segment_id, now, was.held_out, variant)
            )
    return changes


def replayable(
    history: Sequence[ArchivedEvent], watermarks: Mapping[str, int]
) -> list[ArchivedEvent]:
    """The part of a history the live profile has applied."""
    return [a for a in history if applied_live(a.position, watermarks)]
