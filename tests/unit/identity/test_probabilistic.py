"""The probabilistic matcher inside the graph: file, find, merge or suggest."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from functions.identity.graph import Graph
from functions.identity.probabilistic import ProbabilisticMatcher
from functions.shared.config import Identity
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = Identity()


class MemoryBlocks:
    """The identity store's blocking-key side, in memory."""

    def __init__(self) -> None:
        self.blocks: dict[str, dict[str, dict[str, str]]] = {}
        self.suggestions: list[dict] = []
        self.queries = 0

    def candidates(self, key: str) -> dict[str, dict[str, str]]:
        self.queries += 1
        return dict(self.blocks.get(key, {}))

    def load_profiles(self, profile_ids):
        return {}

    def write_blocks(self, entries) -> None:
        for key, pid, traits in entries:
            self.blocks.setdefault(key, {})[pid] = traits

    def write_suggestions(self, suggestions) -> None:
        self.suggestions.extend(suggestions)


def identify(anon: str, minute: int, **traits) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "messageId": f"m-{anon}-{minute}",
            "type": "identify",
            "anonymousId": anon,
            "traits": traits,
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": T0 + timedelta(minutes=minute),
            "receivedAt": T0,
        }
    )


def run(events: list[CanonicalEvent], store: MemoryBlocks) -> tuple[Graph, list]:
    counter = itertools.count(1)
    graph = Graph({}, {}, RULES, new_profile_id=lambda: f"p{next(counter)}")
    matcher = ProbabilisticMatcher(RULES, store)
    merges = []
    for event in events:
        resolution = graph.resolve(
            [Identifier("anonymous_id", event.anonymous_id or "")],
            event.timestamp,
            event.message_id,
        )
        merges += matcher.match(graph, resolution.profile_id, event).merges
    matcher.flush()
    return graph, merges


ANA = {
    "firstName": "Ana",
    "lastName": "García",
    "phone": "+1 415 555 0100",
    "address": {"street": "12 Market St", "postalCode": "94103"},
    "email": "ana.garcia@shop.io",
}


def test_the_same_person_on_another_device_merges_probabilistically():
    store = MemoryBlocks()
    typo = {
        **ANA,
        "lastName": "Garcia",
        "phone": "(415) 555-0100",
        "address": {"street": "12 Market Street", "postalCode": "94103"},
    }
    graph, merges = run([identify("laptop", 0, **ANA), identify("phone", 5, **typo)], store)
    [merge] = merges
    assert (merge.rule, merge.loser) == ("probabilistic", "p2")
    assert merge.score is not None and merge.score >= RULES.probabilistic.auto_merge_threshold
    assert graph.profile_of(Identifier("anonymous_id", "phone")) == "p1"
    assert graph.profiles["p1"].block_keys  # filed, so erasure can find the filings


def test_a_family_member_at_the_same_address_is_not_merged():
    store = MemoryBlocks()
    sister = {**ANA, "firstName": "Lucía", "email": "lucia.garcia@shop.io"}
    graph, merges = run([identify("a", 0, **ANA), identify("b", 1, **sister)], store)
    assert merges == []
    assert store.suggestions == []
    assert graph.profile_of(Identifier("anonymous_id", "b")) == "p2"


def test_plausible_but_weak_evidence_is_suggested_not_merged():
    store = MemoryBlocks()
    # Same name and phone, but another address: she moved, or it is someone else.
    moved = {
        "firstName": "Ana",
        "lastName": "Garcia",
        "phone": "+1 415 555 0100",
        "address": {"street": "99 Ocean Ave", "postalCode": "10001"},
    }
    _graph, merges = run([identify("a", 0, **ANA), identify("b", 1, **moved)], store)
    assert merges == []
    [suggestion] = store.suggestions
    assert (suggestion["a"], suggestion["b"], suggestion["status"]) == ("p1", "p2", "open")
    score = float(suggestion["score"])
    assert RULES.probabilistic.review_threshold <= score < RULES.probabilistic.auto_merge_threshold


def test_without_usable_traits_nothing_is_looked_up():
    store = MemoryBlocks()
    run([identify("a", 0, firstName="Ana")], store)
    assert store.queries == 0 and store.blocks == {}
