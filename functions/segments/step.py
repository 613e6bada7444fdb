"""The segments step: keep every touched profile's aggregates and memberships current.

Per Kinesis batch of `resolved`:
  1. decode; what cannot be read goes to failed events with its reason;
  2. read every touched profile once (one BatchGetItem per 100; a second only
     to follow tombstones of merged-away profiles);
  3. fold merged-away profiles into their survivors exactly once, then apply
     each profile's events in event-time order (a loser's go to its survivor),
     skipping what it applied before (replays, a client's retried messageId:
     see functions/profiles/apply.py);
  4. evaluate every segment, work out when time alone will change a membership
     (the sweep's due time), and announce what changed on `profile-changes`;
  5. write each profile once, conditional on the version read; a survivor's
     write buries the profiles folded into it in the same transaction, so
     events a loser takes meanwhile make the merge be redone, never lost.

The change records go out *before* the profile writes, so a crash between the
two re-sends them on the retry instead of losing them; a write that then loses
a race leaves a record the profile never committed, which consumers recognise
by its id missing from the profile's `recent_changes`.

A profile whose write fails (a lost race, throttling) fails only its own
records; Lambda resumes the shard from the first of them, and the records of
profiles already written are recognised by their watermark and skipped.

The sweep (`sweep_due`) runs the same evaluation for profiles whose due time
has come, found through the sparse `sweep` index.

An erased profile is an erasure marker (profiles_store.py): its events still in
flight were all received before the erasure (the identity step took the profile
id from a graph read before it), so they are dropped and counted as `erased`,
its merge records are ignored, and it is never written again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.experiments.book import (
    DAILY_COUNTERS,
    ExperimentBook,
    counter_delta,
    experiment_changes,
)
from functions.profiles.apply import apply_events, expire, fold, remember_change
from functions.profiles.computed import computed_values
from functions.profiles.decision import profile_decision
from functions.profiles.evaluate import Change, CompiledSegments, activation
from functions.profiles.state import Incoming, Position, ProfileState
from functions.profiles.step import ProfileStep
from functions.profiles.stored import Burial, StoredProfile
from functions.shared.decision import Decision
from functions.shared.erasure import ERASED
from functions.shared.ports import StreamPort
from functions.shared.profile_changes import (
    ChangeCause,
    Part,
    ProfileChanged,
    SegmentChange,
    change_id,
    change_json,
    segment_change_id,
)
from functions.shared.resolved import ProfileMerged, ResolvedEvent, parse_record
from functions.shared.segment_definitions import SegmentsConfig
from functions.shared.stream_batch import StreamItem, readable_records
from functions.shared.streams import StreamRecord

STEP = "segments"
CONFLICT_ROUNDS = 3  # reads and writes of a contended profile within one invocation
MAX_REDIRECTS = 5  # tombstone hops followed for a late event of a merged-away profile


@dataclass
class _Work:
    """One profile being updated in this batch."""

    stored: StoredProfile
    before: tuple[dict[str, Any], dict[str, Any], dict[str, bool]]  # traits, computed, consent
    counted: Counter[str]  # its contribution to the experiment counters, as read
    incoming: list[Incoming] = field(default_factory=list)
    sequences: set[str] = field(default_factory=set)  # records that fail if its write fails
    merged_from: list[str] = field(default_factory=list)
    touched: bool = False  # the state changed and must be written
    applied: int = 0
    redelivered: int = 0
    retried: int = 0
    folded: int = 0  # merges folded into this profile
    committed: bool = False  # its write went through in this invocation

    @property
    def state(self) -> ProfileState:
        return self.stored.state


@dataclass(frozen=True)
class _Pending:
    work: _Work
    record: ProfileChanged | None
    due_at: datetime | None
    size_changes: dict[str, int]
    decision: Decision | None = None  # what a page may be told, written if it changed


@dataclass
class BatchOutcome:
    failed: set[str] = field(default_factory=set)  # sequences to report as batch failures
    profiles_written: int = 0
    events_applied: int = 0
    redelivered: int = 0  # records seen again (Lambda retries, replays): not events
    retried: int = 0  # a client's retries of a message id: events, applied once
    merges_folded: int = 0
    changes: int = 0
    segment_changes: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    conflicts: int = 0  # profile writes that lost a race (and were done again)
    evaluation_errors: int = 0
    conflicted: set[str] = field(default_factory=set)  # this round's lost races
    committed: set[str] = field(default_factory=set)  # records whose effects were written
    erased: set[str] = field(default_factory=set)  # events of erased profiles: dropped
    experiments: Counter[str] = field(default_factory=Counter)  # committed counter changes
    finished: bool = False  # no call failed midway (else Lambda redoes the whole batch)


@dataclass(kw_only=True)
class SegmentsStep(ProfileStep):
    config: SegmentsConfig
    changes: StreamPort
    experiments: ExperimentBook = field(default_factory=lambda: ExperimentBook((), (), ()))
    engine: CompiledSegments = field(init=False)

    def __post_init__(self) -> None:
        self.engine = CompiledSegments(self.config)

    # --- the stream -------------------------------------------------------------

    def update_from_batch(self, items: Sequence[StreamItem], batch_id: str) -> BatchOutcome:
        """Update the batch's profiles; a profile whose write lost a race (the sweep or
        the scoring step wrote it meanwhile) is read again and redone, up to
        `CONFLICT_ROUNDS` times, before its records are handed back to Lambda."""
        outcome = BatchOutcome()
        pending = list(items)
        try:
            for _ in range(CONFLICT_ROUNDS):
                outcome.conflicted = set()
                self._update_once(pending, outcome)
                if not outcome.conflicted:
                    break
                pending = [i for i in pending if i.sequence in outcome.conflicted]
            outcome.failed |= outcome.conflicted
            outcome.finished = True
        finally:
            # Also when a call fails midway: what was written is counted, and the retry
            # counts the rest (what was written comes back as redelivered).
            self._record_counts(outcome, batch_id, items)
        return outcome

    def _record_counts(
        self, outcome: BatchOutcome, batch_id: str, items: Sequence[StreamItem]
    ) -> None:
        counts = Counter(
            applied=outcome.events_applied,
            retried=outcome.retried,
            redelivered=outcome.redelivered,
            merges=outcome.merges_folded,
            malformed=outcome.malformed,
        )
        counts[ERASED] = _dropped_for_good(outcome, items)
        # Keyed by what this invocation committed, not by the batch alone: Lambda's retry
        # of a partly failed batch has the same first and last record but commits other
        # records, and must add its counts, not replace the first attempt's.
        committed = hashlib.sha256("\n".join(sorted(outcome.committed)).encode()).hexdigest()
        day = self.clock().date().isoformat()
        self.counters.record_batch(STEP, day, f"{batch_id}#{committed[:16]}", +counts)
        # Each day's experiment counter changes: the dashboard draws the lift over time.
        key = f"{STEP}:{batch_id}#{committed[:16]}"
        self.counters.record_batch(DAILY_COUNTERS, day, key, outcome.experiments)

    def _update_once(self, items: Sequence[StreamItem], outcome: BatchOutcome) -> None:
        now = self.clock()
        read, malformed = readable_records(STEP, items, parse_record, self.failed_events)
        outcome.malformed += malformed
        events = [(item, r) for item, r in read if isinstance(r, ResolvedEvent)]
        merges = [(item, r) for item, r in read if isinstance(r, ProfileMerged)]

        wanted = {r.profile_id for _, r in events}
        wanted |= {p for _, m in merges for p in (m.survivor, m.loser)}
        loaded = self._load_following_tombstones(wanted)
        erased = {pid for pid, p in loaded.items() if p.erased_at is not None}

        def is_erased(profile_id: str) -> bool:
            return profile_id in erased or _live_id(loaded, profile_id) in erased

        # The person was erased: their events still in flight are dropped, their merges
        # ignored, and nothing is written that would bring the profile back.
        outcome.erased |= {item.sequence for item, r in events if is_erased(r.profile_id)}
        events = [(item, r) for item, r in events if not is_erased(r.profile_id)]
        merges = [
            (item, m) for item, m in merges if not (is_erased(m.survivor) or is_erased(m.loser))
        ]
        work: dict[str, _Work] = {}

        def working(profile_id: str) -> _Work:
            live = _live_id(loaded, profile_id)
            if live not in work:
                stored = loaded.get(live) or StoredProfile(live, ProfileState())
                loaded[live] = stored
                counted = self.experiments.counters(stored.state)
                work[live] = _Work(stored, self._view(stored.state, now), counted)
            return work[live]

        buried: dict[str, tuple[_Work, str]] = {}  # loser id -> (its work, survivor id)
        for item, merge in merges:
            survivor = working(merge.survivor)
            survivor.sequences.add(item.sequence)
            known = loaded.get(merge.loser)
            if known is not None and known.merged_into is not None:
                # Buried already (a retry, or a late redirect): only remember the merge.
                if fold(survivor.state, ProfileState(), self.config, merge.merge_id, now):
                    survivor.touched = True
                continue
            # A loser this step never saw still gets a tombstone: its events still in
            # flight on another shard must find the survivor.
            loser = working(merge.loser)
            if loser is survivor:
                continue  # already the same profile through an older redirect
            if fold(survivor.state, loser.state, self.config, merge.merge_id, now):
                survivor.touched = True
                survivor.merged_from.append(merge.loser)
                survivor.folded += 1
            loser.sequences.add(item.sequence)
            survivor.sequences |= loser.sequences
            buried[merge.loser] = (loser, survivor.stored.profile_id)
            loser.stored.merged_into = survivor.stored.profile_id  # its events follow it
            del work[merge.loser]

        # Events after the merges: the loser's events of this batch go to the survivor,
        # whose message-id memory then holds both sides' (a copy of one event on each
        # side of a merge, a client's retry or a redone batch, applies once).
        for item, record in events:
            target = working(record.profile_id)
            target.incoming.append(Incoming(record.event, _position(item)))
            target.sequences.add(item.sequence)
        for target in work.values():
            observe = self.experiments.observe if self.experiments else None
            result = apply_events(target.state, target.incoming, self.config, now, observe)
            target.applied = result.applied
            target.redelivered, target.retried = result.redelivered, result.retried
            target.touched = target.touched or result.applied > 0

        pending = []
        for w in work.values():
            settled = self._settle(w, now, "merge" if w.merged_from else "events", outcome)
            if settled is None:
                w.committed = True  # nothing to write: as stored is as done
            else:
                pending.append(settled)
        try:
            self._commit(pending, now, outcome, buried)
        finally:
            for w in work.values():
                if w.committed:
                    outcome.events_applied += w.applied
                    outcome.retried += w.retried
                    outcome.merges_folded += w.folded
                    outcome.committed |= w.sequences
                outcome.redelivered += w.redelivered

    def _load_following_tombstones(self, wanted: set[str]) -> dict[str, StoredProfile]:
        loaded = self.profiles.load(wanted)
        for _ in range(MAX_REDIRECTS):
            targets = {p.merged_into for p in loaded.values() if p.merged_into} - set(loaded)
            if not targets:
                break
            loaded |= self.profiles.load(targets)
        return loaded

    # --- the sweep --------------------------------------------------------------

    def sweep_due(self, limit: int = 500) -> BatchOutcome:
        """Re-evaluate profiles whose time-based condition is due (a lost race skips one:
        it stays due and the next sweep takes it)."""
        now = self.clock()
        outcome = BatchOutcome()
        loaded = self.profiles.load(self.profiles.due(now, limit))
        pending = []
        for stored in loaded.values():
            if not stored.live:  # a tombstone, or erased since the index was read
                continue
            counted = self.experiments.counters(stored.state)
            work = _Work(stored, self._view(stored.state, now), counted, touched=True)
            expire(stored.state, self.config, now)
            settled = self._settle(work, now, "sweep", outcome)
            if settled is not None:
                pending.append(settled)
        self._commit(pending, now, outcome, {})
        return outcome

    # --- backfill ---------------------------------------------------------------

    def regraft(
        self,
        profile_ids: Collection[str],
        graft: Callable[[StoredProfile, list[str]], list[Change] | None],
    ) -> BatchOutcome:
        """Backfill's write (functions/segments/backfill.py): each live profile the ids
        lead to is read, changed by `graft(profile, ids that led to it)` (None: nothing
        to change), then evaluated, announced (cause `backfill`) and written as a
        batch's profiles are. A lost race puts the ids asked in `conflicted`."""
        now = self.clock()
        outcome = BatchOutcome()
        loaded = self._load_following_tombstones(set(profile_ids))
        asked: dict[str, list[str]] = {}
        for profile_id in profile_ids:
            asked.setdefault(_live_id(loaded, profile_id), []).append(profile_id)
        pending = []
        for live_id, ids in asked.items():
            stored = loaded.get(live_id)
            if stored is None or not stored.live:
                continue  # never written, or erased: nothing to backfill
            work = _Work(
                stored, self._view(stored.state, now), self.experiments.counters(stored.state)
            )
            grafted = graft(stored, ids)
            if grafted is None:
                continue
            work.touched = True
            work.sequences.update(ids)  # what `conflicted` reports here: the ids asked
            settled = self._settle(work, now, "backfill", outcome, grafted)
            if settled is not None:
                pending.append(settled)
        self._commit(pending, now, outcome, {})
        return outcome

    # --- shared: evaluate, announce, write ------------------------------------------

    def _view(
        self, state: ProfileState, now: datetime
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, bool]]:
        return dict(state.traits), computed_values(state, self.config, now), dict(state.consent)

    def _settle(
        self,
        work: _Work,
        now: datetime,
        cause: ChangeCause,
        outcome: BatchOutcome,
        grafted: Sequence[Change] = (),
    ) -> _Pending | None:
        state, stored = work.state, work.stored
        # One activation serves the conditions and the "what changed" comparison.
        variables = activation(
            stored.profile_id, state, self.config, now, scores=stored.scores, consent=state.consent
        )
        evaluation = self.engine.evaluate(stored.profile_id, variables, state.memberships, now)
        outcome.evaluation_errors += len(evaluation.errors)
        state.memberships = evaluation.memberships
        self.experiments.forget_unconfigured(state)  # they count nowhere: no delta
        computed = variables["profile"]["computed"]  # the covariates' source, as of now
        self.experiments.expose(state, stored.profile_id, evaluation.changes, computed=computed)
        counted = counter_delta(work.counted, self.experiments.counters(state))
        after = (dict(state.traits), computed, dict(state.consent))
        names: tuple[Part, ...] = ("traits", "computed", "consent")
        parts = [p for p, was, is_ in zip(names, work.before, after, strict=True) if was != is_]
        changes = (*grafted, *evaluation.changes)
        if changes:
            parts.append("segments")
        if not work.touched and not parts:
            return None  # a pure replay: nothing to write, nothing to announce
        version = stored.version + 1
        record = None
        if parts:
            segment_changes = [
                SegmentChange(
                    id=segment_change_id(stored.profile_id, version, c.type, c.segment_id),
                    type=c.type,
                    segment_id=c.segment_id,
                    at=c.at,
                    held_out=c.held_out,
                    variant=c.variant,
                )
                for c in changes
            ]
            record = ProfileChanged(
                change_id=change_id(stored.profile_id, version),
                profile_id=stored.profile_id,
                version=version,
                at=now,
                cause=cause,
                changed=parts,
                segments=segment_changes,
                merged_from=work.merged_from,
            )
            for change in segment_changes:
                remember_change(state, change.id, now)
        due_at = self.engine.next_recheck(
            stored.profile_id, state, now, scores=stored.scores, consent=state.consent
        )
        decision = None
        if self.decisions is not None:
            # From the computed traits the conditions just read: nothing worked out twice.
            computed = variables["profile"]["computed"]
            arms = self.experiments.arms(state)
            decision = profile_decision(stored, self.decisions, self.config, now, computed, arms)
        sizes = Counter(evaluation.size_changes)
        sizes.update({c.segment_id: 1 if c.type == "segment.entered" else -1 for c in grafted})
        return _Pending(work, record, due_at, dict(sizes) | counted, decision)

    def _commit(
        self,
        pending: list[_Pending],
        now: datetime,
        outcome: BatchOutcome,
        buried: dict[str, tuple[_Work, str]],
    ) -> None:
        announced = [p for p in pending if p.record is not None]
        records = [
            StreamRecord(partition_key=p.work.stored.profile_id, data=change_json(p.record))
            for p in announced
            if p.record is not None
        ]
        refused_positions = set(self.changes.put(records)) if records else set()
        refused = {id(announced[i].work) for i in refused_positions}
        # Each survivor's write buries the profiles folded into it, in one transaction.
        burials: dict[str, list[Burial]] = {}
        for loser, survivor_id in buried.values():
            # Its memberships and its experiment contribution leave with it.
            leaving = {s: -1 for s in loser.state.memberships}
            leaving |= {name: -n for name, n in loser.counted.items()}
            burials.setdefault(survivor_id, []).append(Burial(loser.stored, leaving))
        for p in pending:
            folded = burials.pop(p.work.stored.profile_id, [])
            if id(p.work) in refused:
                outcome.failed |= p.work.sequences
                continue
            try:
                self.profiles.save(
                    p.work.stored,
                    due_at=p.due_at,
                    at=now,
                    size_changes=p.size_changes,
                    buried=folded,
                    decision=p.decision,
                )
            except self.conflict:
                outcome.conflicts += 1
                outcome.conflicted |= p.work.sequences
                continue
            except self.refused:
                outcome.failed |= p.work.sequences
                continue
            p.work.committed = True
            outcome.profiles_written += 1
            for change in (p.size_changes, *(b.size_changes for b in folded)):
                outcome.experiments.update(experiment_changes(change))
            if p.record is not None:
                outcome.changes += 1
                outcome.segment_changes.update(s.type for s in p.record.segments)
        # A survivor with nothing to write held the fold already (an older merge
        # whose burial did not happen): the tombstone goes on its own.
        for survivor_id, losers in burials.items():
            for burial in losers:
                try:
                    self.profiles.bury(burial.loser, survivor_id, now, burial.size_changes)
                    outcome.experiments.update(experiment_changes(burial.size_changes))
                except self.conflict:
                    outcome.conflicts += 1
                    outcome.conflicted |= buried[burial.loser.profile_id][0].sequences
                except self.refused:
                    outcome.failed |= buried[burial.loser.profile_id][0].sequences


def _live_id(loaded: Mapping[str, StoredProfile], profile_id: str) -> str:
    seen = {profile_id}
    while (p := loaded.get(profile_id)) is not None and p.merged_into and p.merged_into not in seen:
        profile_id = p.merged_into
        seen.add(profile_id)
    return profile_id


def _dropped_for_good(outcome: BatchOutcome, items: Sequence[StreamItem]) -> int:
    """Dropped events Lambda will not deliver again, so each is counted once: those
    before the first record handed back (the shard resumes from it), and none when
    the batch did not finish (it is redone whole)."""
    if not outcome.finished:
        return 0
    cut = next((i for i, item in enumerate(items) if item.sequence in outcome.failed), len(items))
    return sum(1 for item in items[:cut] if item.sequence in outcome.erased)


def _position(item: StreamItem) -> Position | None:
    try:
        return Position(item.shard, int(item.sequence))
    except ValueError:
        return None  # not a Kinesis sequence number (a test's or a replay tool's id)
