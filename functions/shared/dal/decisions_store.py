"""The decision items of the profiles table, as the touchpoint reads them.

`pk = profile#<id>`, `sk = decision` (see profiles_store.py, which writes them with
the profile): one eventually consistent GetItem per request. Kept apart from the
profile store so the touchpoint's bundle never carries the profile model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.shared.dal.dynamo import DynamoTable
from functions.shared.decision import Decision, StoredDecision

DECISION_SK = "decision"


def decision_key(profile_id: str) -> dict[str, str]:
    return {"pk": f"profile#{profile_id}", "sk": DECISION_SK}


def decision_from_item(item: Mapping[str, Any]) -> StoredDecision:
    if item.get("erased_at"):
        return StoredDecision(None, erased=True)
    if item.get("merged_into"):
        return StoredDecision(None, merged_into=str(item["merged_into"]))
    body = item.get("body")
    return StoredDecision(Decision.from_body(str(body)) if body else None)


class DecisionsStore:
    """DecisionsPort over the profiles table."""

    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def decision(self, profile_id: str) -> StoredDecision | None:
        item = self.table.get(decision_key(profile_id))
        return decision_from_item(item) if item is not None else None
