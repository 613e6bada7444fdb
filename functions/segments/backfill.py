"""`beacon backfill`: chosen computed traits and segments recomputed over the archive,
into the live profiles, while live traffic goes on.

The job (no boto3 here: the archive's rows come from a callable, the profiles
through the segments step's own ports):
  1. read the archive's `events` view (one row per message id, merged-away
     profiles' rows under their survivor) with each row's stream position, and
     how far the archive has got on each shard;
  2. for each person, with the step's `regraft` (read, graft, evaluate, announce,
     write conditional on the version read): wait for the archive to hold what
     the profile has applied, replay exactly that (functions/profiles/replay.py)
     and graft the chosen definitions' state;
  3. people the archive had not caught up with, or whose write lost a race with
     live traffic, are done again from a fresh read of the archive, until none is
     left or the wait is over.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.profiles.evaluate import Change
from functions.profiles.replay import (
    ArchivedEvent,
    Definitions,
    archive_covers,
    graft,
    replay,
    replayable,
)
from functions.profiles.state import Position, ProfileState
from functions.profiles.stored import StoredProfile
from functions.segments.step import SegmentsStep
from functions.shared.archive import event_of

CHUNK = 100  # profiles read per BatchGetItem


@dataclass
class Progress:
    people: int = 0  # people in the archive
    done: int = 0  # people finished (written, unchanged or without a live profile)
    written: int = 0  # profiles whose chosen definitions changed
    unchanged: int = 0
    without_profile: int = 0  # archived, but erased or never written
    waiting: set[str] = field(default_factory=set)  # the archive has not caught up
    conflicts: int = 0  # writes that lost a race with live traffic (done again)
    changes: Counter[str] = field(default_factory=Counter)  # segment.entered / exited
    rounds: int = 0

    def line(self) -> str:
        return (
            f"backfill: {self.done}/{self.people} people, {self.written} written,"
            f" {self.unchanged} unchanged, {self.without_profile} without a profile,"
            f" {len(self.waiting)} waiting for the archive, {self.conflicts} lost races"
        )


@dataclass(frozen=True)
class History:
    by_person: dict[str, list[ArchivedEvent]]
    archived_through: dict[str, int]  # shard -> highest sequence number archived


def history_of(rows: Iterable[Mapping[str, Any]]) -> History:
    """The `events` view's rows as each person's archived events with positions."""
    by_person: dict[str, list[ArchivedEvent]] = {}
    through: dict[str, int] = {}
    for row in rows:
        position = None
        shard, sequence = row.get("shard_id"), row.get("sequence_number")
        if shard and sequence:
            position = Position(str(shard), int(str(sequence)))
            through[position.shard_id] = max(through.get(position.shard_id, -1), position.sequence)
        by_person.setdefault(str(row["profile_id"]), []).append(
            ArchivedEvent(event_of(row), position)
        )
    return History(by_person, through)


def _chosen_state(state: ProfileState, chosen: Definitions) -> tuple[Any, Any]:
    return (
        {t: state.computed.get(t) for t in chosen.traits},
        {s: state.memberships.get(s) for s in chosen.segments},
    )


def backfill(
    step: SegmentsStep,
    read_rows: Callable[[], Iterable[Mapping[str, Any]]],
    chosen: Definitions,
    *,
    wait_s: float = 120.0,
    pause_s: float = 2.0,
    report: Callable[[Progress], None] = lambda _p: None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Progress:
    """Backfill every archived person; see the module docstring."""
    progress = Progress()
    deadline = monotonic() + wait_s
    history = history_of(read_rows())
    todo: Sequence[str] = sorted(history.by_person)
    progress.people = len(todo)

    seen: set[str] = set()  # ids `regraft` was called for (the others have no profile)

    def regraft(stored: StoredProfile, ids: list[str]) -> list[Change] | None:
        seen.update(ids)
        watermarks = stored.state.applied.watermarks
        if not archive_covers(watermarks, history.archived_through):
            progress.waiting.update(ids)
            return None
        events = [a for pid in ids for a in history.by_person.get(pid, [])]
        replayed = replay(
            stored.profile_id,
            replayable(events, watermarks),
            step.config,
            step.engine,
            scores=stored.scores,
        )
        before = _chosen_state(stored.state, chosen)
        changes = graft(
            stored.profile_id, stored.state, replayed, chosen, step.config, step.clock()
        )
        if _chosen_state(stored.state, chosen) == before:
            progress.unchanged += 1
            return None
        return changes

    while True:
        progress.rounds += 1
        progress.waiting = set()
        lost: set[str] = set()
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            seen.clear()
            outcome = step.regraft(chunk, regraft)
            progress.conflicts += outcome.conflicts
            lost |= outcome.conflicted
            progress.written += outcome.profiles_written
            progress.changes.update(outcome.segment_changes)
            progress.without_profile += len(set(chunk) - seen)
            progress.done += len(set(chunk) - progress.waiting - lost)
            report(progress)
        retry = progress.waiting | lost
        if not retry or monotonic() >= deadline:
            return progress
        sleep(pause_s)
        history = history_of(read_rows())  # the archive has moved on
        todo = sorted(retry)
