"""The per-container identifier -> profile cache: LRU, time to live, remembered misses."""

from __future__ import annotations

from functions.personalize.identifier_cache import IdentifierCache
from functions.shared.identifiers import Identifier


def ident(n: int) -> Identifier:
    return Identifier("anonymous_id", f"d-{n}")


def test_entries_expire_and_misses_expire_sooner() -> None:
    now = [0.0]
    cache = IdentifierCache(max_entries=10, ttl_s=300, miss_ttl_s=2, clock=lambda: now[0])
    cache.put(ident(1), "p-1")
    cache.put(ident(2), None)
    assert cache.get(ident(1)) == "p-1" and cache.get(ident(2)) == ""
    now[0] = 3.0
    assert cache.get(ident(1)) == "p-1" and cache.get(ident(2)) is None
    now[0] = 301.0
    assert cache.get(ident(1)) is None


def test_least_recently_used_goes_first() -> None:
    cache = IdentifierCache(max_entries=2)
    cache.put(ident(1), "p-1")
    cache.put(ident(2), "p-2")
    assert cache.get(ident(1)) == "p-1"  # 1 is now the most recent
    cache.put(ident(3), "p-3")
    assert cache.get(ident(2)) is None and cache.get(ident(1)) == "p-1"
    assert len(cache) == 2


def test_a_zero_sized_cache_keeps_nothing() -> None:
    cache = IdentifierCache(max_entries=0)
    cache.put(ident(1), "p-1")
    assert cache.get(ident(1)) is None
