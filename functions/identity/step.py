"""The identity step for one Kinesis batch: load the graph slice, resolve in order, commit.

Reads: one BatchGetItem for every identifier of the batch, one for the
profiles they point to (plus redirects), and one Query for the recent
erasures. Writes happen only where the graph changed: conditional puts for new
or repointed identifiers and for changed profiles, merge audit in
BatchWriteItem, then one PutRecords carrying the merge records and the events,
keyed by profile id, and a counter item when events were dropped.

An event received at or before the erasure of one of its identifiers was
already past the consent step when the erasure ran: it is dropped, and counted
as `erased`, so it cannot write back the graph the erasure deleted.

Consent events pass the consent step whatever they decide, so that a withdrawal
reaches the person's profile. One that leaves a category profiles need refused,
from someone who has no profile, has nothing to reach: it is dropped here and
counted as `refused_without_profile`, so a refusal alone never makes a profile
(the decision itself is kept by the consent step).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from functions.identity.graph import Graph
from functions.identity.probabilistic import ProbabilisticMatcher
from functions.identity.screening import IdentifierRules
from functions.shared.commands import LinkProfiles
from functions.shared.config import Consent, Identity
from functions.shared.erasure import ERASED
from functions.shared.events import CanonicalEvent
from functions.shared.failed_events import FailedEvent
from functions.shared.identifiers import Identifier
from functions.shared.identity_records import MergeNote
from functions.shared.ports import (
    ErasuresPort,
    GraphPort,
    StreamPort,
)
from functions.shared.resolved import ProfileMerged, ResolvedEvent, record_json
from functions.shared.stream_batch import OrderedBatch, StreamItem, StreamStep, malformed_record
from functions.shared.streams import StreamRecord

COUNTER = "identity"  # per-day counter: events dropped after consent, by reason
REFUSED_WITHOUT_PROFILE = "refused_without_profile"


@dataclass(kw_only=True)
class IdentityStep(StreamStep):
    rules: Identity
    graph_store: GraphPort
    resolved: StreamPort
    erasures: ErasuresPort
    salt: bytes  # the consent step's identifier salt: erased identifiers are its hashes
    # Consent categories an event needs to shape a profile (consent.required_for_profiles).
    profile_consent: tuple[str, ...] = field(
        default_factory=lambda: Consent().required_for_profiles
    )
    matcher: ProbabilisticMatcher | None = None

    def open_batch(self, items: list[StreamItem]) -> IdentityBatch:
        return IdentityBatch(self, items)


@dataclass
class BatchOutcome:
    events: int = 0
    merges: int = 0
    new_profiles: int = 0
    malformed: int = 0
    dropped_identifiers: int = 0
    suggestions: int = 0
    erased: int = 0  # events of an erased person that were still in flight: dropped
    refused: int = 0  # refusals from people without a profile: dropped
    extra: dict[str, Any] = field(default_factory=dict)


class IdentityBatch:
    def __init__(self, step: IdentityStep, items: list[StreamItem]) -> None:
        self.step = step
        self.order = OrderedBatch(items)
        self.screen = IdentifierRules(step.rules)
        self.events: dict[int, CanonicalEvent | LinkProfiles | str] = {}
        self.identifiers: dict[int, list[Identifier]] = {}
        self.blocked: dict[int, list[Identifier]] = {}
        for index, item in enumerate(items):
            decoded = self.events[index] = _decode(item.data)
            if isinstance(decoded, CanonicalEvent):
                screened = self.screen.of(decoded)
                self.identifiers[index] = screened.usable
                self.blocked[index] = screened.blocked
        wanted = sorted({i for ids in self.identifiers.values() for i in ids})
        nodes = step.graph_store.load_nodes(wanted)
        linked = {
            p for e in self.events.values() if isinstance(e, LinkProfiles) for p in (e.a, e.b)
        }
        profiles = step.graph_store.load_profiles(sorted(set(nodes.values()) | linked))
        # A node whose profile is missing (a lost race, or erased meanwhile) is unknown.
        dangling = {i: pid for i, pid in nodes.items() if pid not in profiles}
        nodes = {i: pid for i, pid in nodes.items() if pid in profiles}
        self.graph = Graph(nodes, profiles, step.rules, dangling=dangling)
        # Read after the graph: an erasure records its identifiers before deleting their
        # nodes, so a graph read from before the deletion is met by the record here.
        self.erasures = step.erasures.recent_erasures(step.clock())
        self.erased: list[int] = []  # indexes of the events dropped for an erasure
        self.refused: list[int] = []  # indexes of refusals from people without a profile
        self.dangling = dangling
        # Nodes of dropped events left pointing at an erased profile: a batch that read the
        # graph before the erasure claimed them, then lost its write to it.
        self.forget: dict[int, dict[Identifier, str]] = {}
        if step.matcher is not None:
            step.matcher.begin_batch()
            step.matcher.prefetch(
                self.graph, [e for e in self.events.values() if isinstance(e, CanonicalEvent)]
            )
        self.known_profiles = set(profiles)
        self.records: list[tuple[int, StreamRecord, MergeNote | None]] = []
        self.new_merges: list[tuple[str, MergeNote]] = []
        self.failures: list[tuple[int, FailedEvent]] = []
        self.outcome = BatchOutcome()

    def decide(self, sequence: str) -> None:
        """Record handler: resolve one event, in stream order; effects are buffered."""
        index = self.order.check(sequence)
        try:
            self._resolve(index)
        except Exception:
            self.order.fail_from(index)
            raise

    def _resolve(self, index: int) -> None:
        event = self.events[index]
        item = self.order.items[index]
        if isinstance(event, str):
            self.failures.append((index, malformed_record("identity", item, event)))
            self.outcome.malformed += 1
            return
        if isinstance(event, LinkProfiles):
            self._link(index, event)
            return
        identifiers = self.identifiers[index]
        if self.erasures and self._erased(index, event):
            self.erased.append(index)
            left = {i: self.dangling[i] for i in identifiers if i in self.dangling}
            if left:
                self.forget[index] = left
            return
        if self._refusal_without_profile(event, identifiers):
            self.refused.append(index)
            return
        resolution = self.graph.resolve(identifiers, event.timestamp, event.message_id)
        merges = list(resolution.merges)
        self.outcome.dropped_identifiers += len(resolution.dropped)
        matchable = resolution.profile_id in self.graph.profiles  # not an unlinked event
        if self.step.matcher is not None and event.type == "identify" and matchable:
            match = self.step.matcher.match(self.graph, resolution.profile_id, event)
            merges += match.merges
            self.outcome.suggestions += match.suggestions
        profile_id = self.graph.current(resolution.profile_id)
        self._emit_merges(index, profile_id, merges, event.message_id)
        resolved = ResolvedEvent(profile_id=profile_id, event=event)
        self.records.append((index, StreamRecord(profile_id, record_json(resolved)), None))
        self.outcome.events += 1
        self.outcome.merges += len(resolution.merges)

    def _refusal_without_profile(
        self, event: CanonicalEvent, identifiers: list[Identifier]
    ) -> bool:
        """A consent event leaving a category profiles need refused, from someone with
        no profile yet (none stored, none made earlier in this batch)."""
        stamp = event.consent
        if stamp is None or not set(self.step.profile_consent) & set(stamp.denied):
            return False
        return all(self.graph.profile_of(i) is None for i in identifiers)

    def _erased(self, index: int, event: CanonicalEvent) -> bool:
        """Received at or before the erasure of any identifier it carries (blocked
        ones too: consent hashed those as well)."""
        carried = (*self.identifiers[index], *self.blocked[index])
        keys = [identifier.hashed_key(self.step.salt) for identifier in carried]
        return self.erasures.drops(keys, event.received_at)

    def _link(self, index: int, command: LinkProfiles) -> None:
        """A reviewer linked two profiles: merge them (manual), if the limits allow."""
        merges = []
        graph = self.graph
        known = command.a in graph.profiles and command.b in graph.profiles
        if known and graph.can_merge(command.a, command.b):
            survivor, loser = sorted(
                (graph.current(command.a), graph.current(command.b)),
                key=lambda p: (graph.profiles[p].created_at, p),
            )
            merges.append(graph.merge(survivor, loser, command.at, "manual", command.command_id))
            self.outcome.merges += 1
        elif not known or graph.current(command.a) != graph.current(command.b):
            # Unknown profiles, or limits forbid it: refused, never a batch failure.
            self.outcome.extra["links_refused"] = self.outcome.extra.get("links_refused", 0) + 1
        if command.a in graph.profiles:
            self._emit_merges(index, graph.current(command.a), merges, command.command_id)

    def _emit_merges(
        self, index: int, profile_id: str, merges: list[MergeNote], message_id: str
    ) -> None:
        for note in merges:
            self.new_merges.append((profile_id, note))
        # A retry of an event whose merges were written but never sent sends them now.
        known = {m.merge_id for m in merges}
        unsent = [
            m
            for m in self.graph.unemitted_merges(profile_id, message_id)
            if m.merge_id not in known
        ]
        for note in unsent:  # the commit that wrote it may not have moved every node
            self.graph.finish_merge(profile_id, note)
        merges = merges + unsent
        for note in merges:
            merged = ProfileMerged(
                merge_id=note.merge_id,
                survivor=profile_id,
                loser=note.loser,
                at=note.at,
                rule=note.rule,
                score=note.score,
                identifiers=note.identifiers,
                message_id=note.message_id,
            )
            self.records.append((index, StreamRecord(profile_id, record_json(merged)), note))

    def commit(self, reported: list[str]) -> tuple[list[dict[str, str]], BatchOutcome]:
        """Graph first (conditional: a lost race raises GraphConflict), then the stream."""
        for sequence in reported:
            self.order.fail_from(self.order.position[sequence])
        store, graph = self.step.graph_store, self.graph
        unread = sorted(graph.unread & graph.changed_nodes)
        if unread:  # rare: only merges move nodes this batch did not read
            graph.settle_unread(store.load_nodes(unread))
        # Survivors before losers: the survivor's outbox note lists what the merge moves,
        # so whatever a throttled commit leaves undone, the retry can finish.
        changed = sorted(
            (p for p in graph.profiles.values() if p.changed), key=lambda p: bool(p.merged_into)
        )
        new_nodes = sorted(i for i in graph.changed_nodes if graph.is_new_node(i))
        moved_nodes = sorted(i for i in graph.changed_nodes if not graph.is_new_node(i))
        # 1. Claim the new identifiers: this is where two shards race, so it comes
        #    first — a lost race (GraphConflict) aborts before any profile is written.
        # 2. Profiles: new ones, and for merges the loser's redirect and the survivor's
        #    outbox, so a crash from here on is finished by the retry.
        # 3. Repoint what merges moved, each on the condition it is where it was read.
        # Within each group the writes are independent, so they run side by side.
        store.write_nodes([(i, graph.nodes[i], graph.loaded_nodes.get(i)) for i in new_nodes])
        store.write_profiles([p for p in changed if not p.merged_into])
        store.write_profiles([p for p in changed if p.merged_into])
        store.write_nodes([(i, graph.nodes[i], graph.loaded_nodes.get(i)) for i in moved_nodes])
        if self.new_merges:
            store.write_audit(self.new_merges)
        if self.step.matcher is not None:
            self.step.matcher.flush()
        self.outcome.new_profiles = sum(
            1 for p in changed if p.profile_id not in self.known_profiles and not p.merged_into
        )
        to_send = [(i, r, m) for i, r, m in self.records if self.order.committed(i)]
        refused = self.step.resolved.put([r for _, r, _ in to_send]) if to_send else []
        if refused:
            self.order.fail_from(to_send[min(refused)][0])
        sent = {m.merge_id for i, _, m in to_send if m is not None and self.order.committed(i)}
        self._confirm_emitted(sent)
        failures = [f for i, f in self.failures if self.order.committed(i)]
        if failures:
            self.step.failed_events.put_each(failures)
        for index, nodes in self.forget.items():
            if self.order.committed(index):
                for identifier, was in nodes.items():
                    store.forget_node(identifier, was)
        # Keyed by the batch's first and last record: a retry overwrites its own count.
        self.outcome.erased = sum(1 for i in self.erased if self.order.committed(i))
        day = self.step.clock().date().isoformat()
        self.outcome.refused = sum(1 for i in self.refused if self.order.committed(i))
        counts = Counter(
            {ERASED: self.outcome.erased, REFUSED_WITHOUT_PROFILE: self.outcome.refused}
        )
        self.step.counters.record_batch(COUNTER, day, self.order.batch_id, +counts)
        return self.order.failures(), self.outcome

    def _confirm_emitted(self, sent: set[str]) -> None:
        """The merge outbox: mark what reached the stream so a retry does not resend it."""
        for profile in self.graph.profiles.values():
            notes = [m for m in profile.merges if m.merge_id in sent and not m.emitted]
            for note in notes:
                note.emitted = True
            if notes:
                self.step.graph_store.write_profile(profile)


def _decode(data: bytes) -> CanonicalEvent | LinkProfiles | str:
    """An event, an admin link command, or why the record is unreadable."""
    try:
        return CanonicalEvent.model_validate_json(data)
    except ValidationError as err:
        problem = err.errors()[0]["msg"]
    try:
        return LinkProfiles.model_validate_json(data)
    except ValidationError:
        return f"not a canonical event: {problem}"
