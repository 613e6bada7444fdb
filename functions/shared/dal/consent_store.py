"""The consent table: state and audit trail per hashed identifier.

Layout (table `consent`): pk = salted SHA-256 of `type:value`;
sk = `state` for the current decisions, `audit#<time>#<message id>` for each
change (append-only; a replay writes the same key again, so it stays once).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from functions.shared.consent_records import AuditEntry, CategoryDecision, ConsentState
from functions.shared.dal.dynamo import DynamoTable

STATE = "state"
AUDIT = "audit#"


class ConsentStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # --- the consent step ----------------------------------------------------

    def load(self, keys: Iterable[str]) -> dict[str, ConsentState]:
        """One BatchGetItem (per 100) for every identifier of a batch."""
        items = self.table.batch_get([{"pk": key, "sk": STATE} for key in set(keys)])
        return {item["pk"]: state_from_item(item) for item in items}

    def save(self, states: Iterable[ConsentState], audit: Iterable[AuditEntry]) -> None:
        """Changed states and new audit entries, coalesced into BatchWriteItem calls."""
        # Audit entries first, in calls of their own: their keys are deterministic, and
        # states are written only once every entry is in, so a throttled write retried
        # from the old states files the very same entries again. Nothing is lost.
        entries = [audit_to_item(entry) for entry in audit]
        if entries:
            self.table.batch_write(entries)
        changed = [state_to_item(s) for s in states if s.changed]
        if changed:
            self.table.batch_write(changed)

    # --- the API: export and erasure -----------------------------------------

    def records(self, key: str) -> tuple[ConsentState | None, list[dict[str, Any]]]:
        items = self.table.query_partition(key)
        state = next((state_from_item(i) for i in items if i["sk"] == STATE), None)
        audit = [_audit_view(i) for i in items if str(i["sk"]).startswith(AUDIT)]
        return state, audit

    def erase(self, keys: Iterable[str], at: datetime) -> int:
        """Delete everything under each key; keep only a suppression record and the fact."""
        deleted = 0
        for key in keys:
            items = self.table.query_partition(key)
            self.table.batch_write(deletes=[{"pk": key, "sk": i["sk"]} for i in items])
            deleted += len(items)
            suppression = ConsentState(key, suppressed=True, erased_at=at, changed=True)
            erasure = AuditEntry(key, at, "erasure", "erasure", {})
            self.table.batch_write([state_to_item(suppression), audit_to_item(erasure)])
        return deleted


def state_to_item(state: ConsentState) -> dict[str, Any]:
    return {
        "pk": state.key,
        "sk": STATE,
        "categories": {
            name: [_decision_to_dict(d) for d in history]
            for name, history in state.categories.items()
        },
        "suppressed": state.suppressed,
        "erased_at": state.erased_at.isoformat() if state.erased_at else None,
        "linked": set(state.linked),
    }


def state_from_item(item: dict[str, Any]) -> ConsentState:
    return ConsentState(
        key=item["pk"],
        categories={
            name: [_decision_from_dict(d) for d in history]
            for name, history in (item.get("categories") or {}).items()
        },
        suppressed=bool(item.get("suppressed", False)),
        erased_at=datetime.fromisoformat(item["erased_at"]) if item.get("erased_at") else None,
        linked=set(item.get("linked") or ()),
    )


def _decision_to_dict(decision: CategoryDecision) -> dict[str, Any]:
    out: dict[str, Any] = {
        "granted": decision.granted,
        "at": decision.at.isoformat(),
        "source": decision.source,
        "message_id": decision.message_id,
    }
    if decision.received is not None:
        out["received"] = decision.received.isoformat()
    if decision.device_only:
        out["device_only"] = True
    return out


def _decision_from_dict(data: dict[str, Any]) -> CategoryDecision:
    return CategoryDecision(
        granted=bool(data["granted"]),
        at=datetime.fromisoformat(data["at"]),
        source=str(data["source"]),
        message_id=str(data["message_id"]),
        received=datetime.fromisoformat(data["received"]) if data.get("received") else None,
        device_only=bool(data.get("device_only", False)),
    )


def audit_to_item(entry: AuditEntry) -> dict[str, Any]:
    return {
        "pk": entry.key,
        "sk": f"{AUDIT}{entry.at.isoformat()}#{entry.message_id}",
        "at": entry.at.isoformat(),
        "message_id": entry.message_id,
        "source": entry.source,
        "changes": entry.changes,
    }


def _audit_view(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("at", "message_id", "source", "changes") if k in item}
