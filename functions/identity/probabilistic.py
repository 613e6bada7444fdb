"""Probabilistic matching inside the stream: fuzzy-link profiles from `identify` traits.

For an identify event with usable traits (a name plus phone, address or
email), the profiles filed under the same blocking keys are scored with
`matching.score`. At or above `auto_merge_threshold` the two profiles merge
(rule `probabilistic`, with the score) if the deterministic limits allow it;
between `review_threshold` and that, a suggested link is recorded for
`beacon identity suggestions` to review. The event's traits are then filed
under its own blocking keys, so later events can find this profile.

Candidate lookups are one Query per blocking key, cached for the batch;
filing and suggestions are written once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.identity.comparison import blocking_keys, score
from functions.identity.graph import Graph
from functions.identity.normalization import MatchTraits, match_traits
from functions.shared.config import Identity
from functions.shared.events import CanonicalEvent
from functions.shared.identity_records import MergeNote, Profile
from functions.shared.ports import BlockPort


@dataclass
class MatchOutcome:
    merges: list[MergeNote]
    suggestions: int = 0


class ProbabilisticMatcher:
    def __init__(self, rules: Identity, store: BlockPort) -> None:
        self.rules = rules
        self.settings = rules.probabilistic
        self.store = store
        self.begin_batch()

    def begin_batch(self) -> None:
        self._blocks: dict[str, dict[str, dict[str, Any]]] = {}
        self._filed: dict[tuple[str, str], dict[str, str]] = {}
        self._suggested: dict[tuple[str, str], dict[str, Any]] = {}
        self.queries = 0

    def _block(self, key: str) -> dict[str, dict[str, Any]]:
        if key not in self._blocks:
            self.queries += 1
            self._blocks[key] = self.store.candidates(key)
        return self._blocks[key]

    def prefetch(self, graph: Graph, events: Sequence[CanonicalEvent]) -> None:
        """Read the blocks and candidate profiles of a whole batch up front: one
        Query per distinct key and one BatchGetItem, instead of one per event."""
        wanted: set[str] = set()
        for event in events:
            if event.type != "identify":
                continue
            traits = match_traits(event.traits, self.rules.default_phone_region)
            if traits is not None and traits.usable():
                for key in blocking_keys(traits):
                    wanted.update(self._block(key))
        self._load(graph, sorted(pid for pid in wanted if pid not in graph.profiles))

    def match(self, graph: Graph, profile_id: str, event: CanonicalEvent) -> MatchOutcome:
        traits = match_traits(event.traits, self.rules.default_phone_region)
        outcome = MatchOutcome(merges=[])
        if traits is None or not traits.usable():
            return outcome
        keys = blocking_keys(traits)
        current = graph.current(profile_id)
        candidates: dict[str, MatchTraits] = {}
        for key in keys:
            for pid, stored in self._block(key).items():
                candidates.setdefault(pid, MatchTraits.from_dict(stored))
        self._load(graph, [pid for pid in candidates if pid not in graph.profiles])
        best: tuple[float, str] | None = None
        for pid, other in candidates.items():
            live = graph.current(pid)
            if live == current or live not in graph.profiles:
                continue
            result = score(traits, other, self.settings.weights)
            if best is None or (result.score, live) > best:
                best = (result.score, live)
        if best is not None:
            value, other_id = best
            if value >= self.settings.auto_merge_threshold and graph.can_merge(current, other_id):
                survivor, loser = sorted(
                    (current, other_id),
                    key=lambda p: (graph.profiles[p].created_at, p),
                )
                outcome.merges.append(
                    graph.merge(
                        survivor,
                        loser,
                        event.timestamp,
                        "probabilistic",
                        event.message_id,
                        score=value,
                    )
                )
                current = survivor
            elif value >= self.settings.review_threshold:
                self._suggest(current, other_id, value, event.timestamp)
                outcome.suggestions += 1
        self._file(graph.profiles[current], keys, traits)
        return outcome

    def _load(self, graph: Graph, missing: list[str]) -> None:
        if missing:
            graph.adopt(self.store.load_profiles(missing))

    def _file(self, profile: Profile, keys: list[str], traits: MatchTraits) -> None:
        """File the traits under each key, writing only what is not already there."""
        stored = traits.as_dict()
        for key in keys:
            block = self._block(key)
            if block.get(profile.profile_id) != stored:
                self._filed[(key, profile.profile_id)] = stored
                block[profile.profile_id] = stored
        if not set(keys) <= profile.block_keys:
            profile.block_keys |= set(keys)
            profile.changed = True

    def _suggest(self, a: str, b: str, value: float, at: datetime) -> None:
        first, second = sorted((a, b))
        self._suggested[(first, second)] = {
            "a": first,
            "b": second,
            "score": str(round(value, 4)),
            "status": "open",
            "at": at.isoformat(),
        }

    def flush(self) -> None:
        """Write the batch's filings and suggestions (idempotent puts)."""
        if self._filed:
            self.store.write_blocks([(k, pid, t) for (k, pid), t in self._filed.items()])
        if self._suggested:
            self.store.write_suggestions(list(self._suggested.values()))
        self._filed.clear()
        self._suggested.clear()
