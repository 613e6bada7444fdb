"""Per-day pipeline counters that survive retries without a write per event.

Each batch writes one item keyed by its first and last record
(`<shard>#<first seq>#<last seq>`), so a retried batch overwrites its own
item instead of adding again. A day's total is one Query.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from functions.shared.dal.dynamo import DynamoTable

RETENTION = timedelta(days=400)


class DailyCounters:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def record_batch(self, name: str, day: str, batch_id: str, counts: Counter[str]) -> None:
        if not counts:
            return
        expires = datetime.fromisoformat(day) + RETENTION
        self.table.batch_write(
            [
                {
                    "pk": f"{name}#{day}",
                    "sk": batch_id,
                    "counts": {k: v for k, v in counts.items() if v},
                    "expires_at": int(expires.timestamp()),
                }
            ]
        )

    def day_totals(self, name: str, day: str) -> Counter[str]:
        totals: Counter[str] = Counter()
        for item in self.table.query_partition(f"{name}#{day}"):
            totals.update({k: int(v) for k, v in item.get("counts", {}).items()})
        return totals
