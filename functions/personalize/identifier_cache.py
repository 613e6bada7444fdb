"""Identifier -> profile id, remembered per container: an LRU with a time to live.

A visitor's pages ask again and again; after the first answer their identifier's
profile id comes from here, so the request's one DynamoDB read is the decision
item. Misses (a visitor the pipeline does not know yet) are remembered briefly, so
a new visitor's burst of requests does not read the graph each time, yet they are
recognised within `miss_ttl_s` of the pipeline catching up.

A mapping that went stale is caught by the read the request makes anyway: a merged-
away profile's decision item redirects to its survivor, an erased one says so (and
the entry is dropped). See docs/personalize.md.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from functions.shared.identifiers import Identifier
from functions.shared.ports import ProfileIdsPort

_MISSING = ""  # a remembered miss


@dataclass
class IdentifierCache:
    max_entries: int = 50_000
    ttl_s: float = 300.0
    miss_ttl_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[Identifier, tuple[str, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    def get(self, identifier: Identifier) -> str | None:
        """The cached profile id, `""` for a remembered miss, None when not cached."""
        with self._lock:
            entry = self._entries.get(identifier)
            if entry is None or entry[1] <= self.clock():
                self._entries.pop(identifier, None)
                self.misses += 1
                return None
            self._entries.move_to_end(identifier)
            self.hits += 1
            return entry[0]

    def put(self, identifier: Identifier, profile_id: str | None) -> None:
        if self.max_entries == 0:
            return
        ttl = self.ttl_s if profile_id else self.miss_ttl_s
        with self._lock:
            self._entries[identifier] = (profile_id or _MISSING, self.clock() + ttl)
            self._entries.move_to_end(identifier)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, identifier: Identifier) -> None:
        with self._lock:
            self._entries.pop(identifier, None)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class ProfileResolver:
    """The one place an identifier becomes a profile id (cache, then the graph).

    `resolve` takes identifiers most trusted first and answers the profile of the
    first one known: a verified user id's profile wins over the device's.
    """

    graph: ProfileIdsPort
    cache: IdentifierCache

    def resolve(self, identifiers: Sequence[Identifier]) -> str | None:
        known: dict[Identifier, str | None] = {i: self.cache.get(i) for i in identifiers}
        for identifier in identifiers:
            if known[identifier]:
                return known[identifier]  # the most trusted one is cached: nothing to read
            if known[identifier] is None:
                break  # not cached: ask the graph about it and everything after it
        unread = [i for i, p in known.items() if p is None]
        if unread:
            found = self.graph.profile_ids(unread)  # one read for all of them
            for identifier in unread:
                self.cache.put(identifier, found.get(identifier))
                known[identifier] = found.get(identifier) or _MISSING
        return next((p for i in identifiers if (p := known[i])), None)

    def moved(self, identifiers: Sequence[Identifier], was: str, now: str | None) -> None:
        """`was` is merged into `now` (None: erased): entries pointing at it follow."""
        for identifier in identifiers:
            if self.cache.get(identifier) == was:
                if now is None:
                    self.cache.forget(identifier)
                else:
                    self.cache.put(identifier, now)
