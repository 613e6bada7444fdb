"""Recent erasures: the salted hashes of identifiers erased lately, in one partition.

Layout (in the table of the step that reads it): `pk = erasures`,
`sk = <erased at>#<digest>#<n>`, `keys` (a string set of salted hashes, never raw
values), `erased_at`, and `expires_at` (TTL) once the record has done its job.
A reader wants the erasures since some moment: one strongly consistent Query on
the sort key, which also skips what TTL has not deleted yet (it lags by up to
two days). A person with more than `KEYS_PER_ITEM` identifiers takes several
items, so an item stays far below DynamoDB's 400 KB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from functions.shared.dal.dynamo import DynamoTable
from functions.shared.erasure import RecentErasures

PARTITION = "erasures"
# 64 hexadecimal characters a hash: about 70 KB an item.
KEYS_PER_ITEM = 1000


def stamp(moment: datetime) -> str:
    """Sortable as a string (the sort key): fixed width, UTC, microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ErasureRecord:
    def __init__(self, table: DynamoTable, lifetime: timedelta) -> None:
        self.table = table
        self.lifetime = lifetime  # how long a reader may still need an erasure

    def record(self, keys: Iterable[str], at: datetime) -> None:
        """Keyed by the moment and the hashes, so a retried request writes the same items."""
        hashes = sorted(set(keys))
        if not hashes:
            return
        digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:16]
        expires = int((at + self.lifetime).timestamp())
        self.table.batch_write(
            [
                {
                    "pk": PARTITION,
                    "sk": f"{stamp(at)}#{digest}#{n}",
                    "keys": set(hashes[start : start + KEYS_PER_ITEM]),
                    "erased_at": at.isoformat(),
                    "expires_at": expires,
                }
                for n, start in enumerate(range(0, len(hashes), KEYS_PER_ITEM))
            ]
        )

    def since(self, moment: datetime) -> RecentErasures:
        """Every erasure at or after `moment`, the newest per key: one Query."""
        erased_at: dict[str, datetime] = {}
        for item in self.table.query_from(PARTITION, stamp(moment)):
            at = datetime.fromisoformat(str(item["erased_at"]))
            for key in item.get("keys") or ():
                erased_at[str(key)] = max(at, erased_at.get(str(key), at))
        return RecentErasures(erased_at)
