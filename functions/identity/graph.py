"""Deterministic identity resolution over one batch's slice of the identity graph.

Pure logic: the step loads the graph nodes (identifier -> profile) and the
profiles a batch touches, resolves the events in stream order, and writes
back only what changed.

Segment Unify's rules:
- an event's identifiers are ranked by the configured priority;
- if they belong to several profiles, the profiles merge into the oldest —
  unless the merged profile would break a per-type limit (one user id by
  default): then the lowest-priority identifier is dropped from the match and
  the rest tried again, so a shared laptop does not fuse two customers;
- identifiers not yet known join the profile the event resolved to, within
  the limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from functions.shared.config import Identity
from functions.shared.identifiers import Identifier
from functions.shared.identity_records import MergeNote, Profile, Rule

MERGE_NAMESPACE = uuid.UUID("0b8a7f4e-93c1-4f43-8f0f-55a1d3f1f2a9")
MAX_MERGE_NOTES = 50  # merges remembered on a survivor (the re-emit outbox)


def merge_id(survivor: str, loser: str) -> str:
    """Stable, so a merge seen twice downstream is folded once."""
    return str(uuid.uuid5(MERGE_NAMESPACE, f"{survivor}<-{loser}"))


MAX_IDENTIFIERS = 100  # identifiers one profile may hold, all types together


@dataclass
class Resolution:
    profile_id: str
    merges: list[MergeNote] = field(default_factory=list)  # to emit before the event
    attached: list[Identifier] = field(default_factory=list)  # newly linked to the profile
    dropped: list[Identifier] = field(default_factory=list)  # left out to respect limits


class Graph:
    """The slice of the identity graph one batch needs, changed event by event."""

    def __init__(
        self,
        nodes: dict[Identifier, str],
        profiles: dict[str, Profile],
        rules: Identity,
        new_profile_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        dangling: dict[Identifier, str] | None = None,
    ) -> None:
        self.nodes = nodes
        self.profiles = profiles
        self.rules = rules
        self.new_profile_id = new_profile_id
        self.loaded_nodes = dict(nodes)  # as stored: conditions for the writes
        # Nodes left pointing at a profile that was never written (a lost race): they
        # count as unknown, and are overwritten on the condition that they still dangle.
        self.loaded_nodes.update(dangling or {})
        self.changed_nodes: set[Identifier] = set()
        self.unread: set[Identifier] = set()  # nodes assumed from a profile, not read
        self.absorbed: dict[str, str] = {}  # loser -> survivor of merges this batch finishes
        # A profile's identifiers all have nodes pointing at it, loaded or not: a merge
        # repoints them, and its conditional write must expect exactly that.
        for pid, profile in list(profiles.items()):
            self._know_nodes_of(pid, profile)

    def adopt(self, profiles: dict[str, Profile]) -> None:
        """Add profiles read later in the batch (match candidates) with their nodes."""
        for pid, profile in profiles.items():
            if pid in self.profiles:
                continue
            self.profiles[pid] = profile
            self._know_nodes_of(pid, profile)

    def _know_nodes_of(self, pid: str, profile: Profile) -> None:
        for identifier in profile.holds():
            if identifier not in self.loaded_nodes:
                self.unread.add(identifier)
            self.nodes.setdefault(identifier, pid)
            self.loaded_nodes.setdefault(identifier, pid)

    def settle_unread(self, actual: dict[Identifier, str]) -> None:
        """Replace the assumed state of unread nodes this batch changes with the real one.

        Already where they should be: nothing to write. Absent, or on a profile that
        is (or redirects to) the target: write, on the condition read here. On some
        other profile (a stale listing after an interrupted commit): leave it alone,
        rather than steal another person's identifier.
        """
        for identifier in sorted(self.unread & self.changed_nodes):
            target, pid = self.nodes[identifier], actual.get(identifier)
            owner = pid if pid is None or pid not in self.profiles else self.current(pid)
            if pid == target:
                self.changed_nodes.discard(identifier)
            elif pid is None or owner == target or self.absorbed.get(pid) == target:
                self.loaded_nodes[identifier] = pid  # type: ignore[assignment]
            else:
                self.changed_nodes.discard(identifier)
            self.unread.discard(identifier)

    # --- lookups -------------------------------------------------------------

    def current(self, profile_id: str) -> str:
        """Follow merge redirects to the live profile."""
        seen = set()
        while (profile := self.profiles.get(profile_id)) and profile.merged_into:
            if profile_id in seen:  # a cycle would be a bug; stop rather than spin
                break
            seen.add(profile_id)
            profile_id = profile.merged_into
        return profile_id

    def profile_of(self, identifier: Identifier) -> str | None:
        pid = self.nodes.get(identifier)
        return None if pid is None else self.current(pid)

    # --- resolution ----------------------------------------------------------

    def resolve(
        self, identifiers: list[Identifier], at: datetime, message_id: str | None
    ) -> Resolution:
        """Attribute one event (identifiers most trusted first) to a profile."""
        if not identifiers:
            # Nothing usable (every id blocked): a profile of its own, derived from the
            # event so a replay lands on the same one, and nothing stored in the graph.
            return Resolution(str(uuid.uuid5(MERGE_NAMESPACE, f"unlinked:{message_id}")))
        candidates = list(identifiers)
        dropped: list[Identifier] = []
        while True:
            owners = self._owners(candidates)
            if self._within_limits(owners, candidates):
                break
            dropped.append(candidates.pop())  # the least trusted goes first
        profile = self.profiles[self._oldest(owners)] if owners else self._create(at)
        resolution = Resolution(profile.profile_id, dropped=dropped)
        for other in owners:
            if other != profile.profile_id:
                resolution.merges.append(
                    self.merge(profile.profile_id, other, at, "deterministic", message_id)
                )
        for identifier in candidates:
            if self.nodes.get(identifier) is None:
                resolution.attached.append(identifier)
            self._point(identifier, profile.profile_id)
        return resolution

    def can_merge(self, a: str, b: str) -> bool:
        pa, pb = self.profiles[self.current(a)], self.profiles[self.current(b)]
        if pa.profile_id == pb.profile_id:
            return False
        return self._within_limits([pa.profile_id, pb.profile_id], [])

    def merge(
        self,
        survivor_id: str,
        loser_id: str,
        at: datetime,
        rule: Rule,
        message_id: str | None,
        score: float | None = None,
    ) -> MergeNote:
        """Fold `loser` into `survivor`: repoint its identifiers, leave a redirect."""
        survivor, loser = self.profiles[survivor_id], self.profiles[loser_id]
        moved = loser.holds()
        for identifier in moved:
            survivor.add(identifier)
            self._point(identifier, survivor_id)
            if identifier in self.unread:
                # Its real node was never read (both profiles may list it after an
                # interrupted commit): the commit reads it and writes only if needed.
                self.changed_nodes.add(identifier)
        loser.identifiers = {}
        loser.merged_into = survivor_id
        loser.changed = True
        note = MergeNote(
            merge_id=merge_id(survivor_id, loser_id),
            loser=loser_id,
            at=at,
            rule=rule,
            message_id=message_id,
            identifiers=[str(i) for i in moved],
            score=score,
        )
        kept = [m for m in survivor.merges if m.merge_id != note.merge_id]  # a retried merge
        survivor.merges = [*kept, note][-MAX_MERGE_NOTES:]
        survivor.changed = True
        return note

    def finish_merge(self, survivor_id: str, note: MergeNote) -> None:
        """Repoint what an interrupted commit of this merge may have left on the loser.

        The retry sees the loser's redirect and would not merge again; the nodes the
        merge moved are listed on its note, so they are moved now (their real state
        is read before the conditional write).
        """
        self.absorbed[note.loser] = survivor_id
        for text in note.identifiers:
            identifier = Identifier.parse(text)
            if identifier not in self.loaded_nodes:
                self.loaded_nodes[identifier] = note.loser
                self.unread.add(identifier)
            if identifier in self.unread:
                # Only assumed: the commit reads the node and moves it if it must.
                self.nodes[identifier] = survivor_id
                self.changed_nodes.add(identifier)
            elif self.profile_of(identifier) == survivor_id:
                self._point(identifier, survivor_id)

    def is_new_node(self, identifier: Identifier) -> bool:
        """Absent, or dangling, when read: the writes other shards may race on."""
        return self.loaded_nodes.get(identifier) not in self.profiles

    def unemitted_merges(self, profile_id: str, message_id: str) -> list[MergeNote]:
        """Merges this event caused whose records never reached the stream (a retry)."""
        profile = self.profiles.get(self.current(profile_id))
        if profile is None:
            return []
        return [m for m in profile.merges if m.message_id == message_id and not m.emitted]

    # --- helpers -------------------------------------------------------------

    def _owners(self, candidates: list[Identifier]) -> list[str]:
        owners: dict[str, None] = {}
        for identifier in candidates:
            pid = self.profile_of(identifier)
            if pid is not None:
                owners[pid] = None
        return list(owners)

    def _within_limits(self, owners: list[str], candidates: list[Identifier]) -> bool:
        counts: dict[str, set[str]] = {}
        for pid in owners:
            for identifier in self.profiles[pid].holds():
                counts.setdefault(identifier.type, set()).add(identifier.value)
        for identifier in candidates:
            counts.setdefault(identifier.type, set()).add(identifier.value)
        total = sum(len(values) for values in counts.values())
        # Per type, and in all: external id types are the client's to name, so a
        # profile's identifiers (one item) stay bounded however many types arrive.
        return total <= MAX_IDENTIFIERS and all(
            len(values) <= self.rules.limit(kind) for kind, values in counts.items()
        )

    def _oldest(self, owners: list[str]) -> str:
        return min(owners, key=lambda pid: (self.profiles[pid].created_at, pid))

    def _create(self, at: datetime) -> Profile:
        profile = Profile(self.new_profile_id(), created_at=at, changed=True)
        self.profiles[profile.profile_id] = profile
        return profile

    def _point(self, identifier: Identifier, profile_id: str) -> None:
        self.profiles[profile_id].add(identifier)
        if self.nodes.get(identifier) != profile_id:
            self.nodes[identifier] = profile_id
            self.changed_nodes.add(identifier)
