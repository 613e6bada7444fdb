"""The consent table: state and audit trail per hashed identifier.

Layout (table `consent`): pk = salted SHA-256 of `type:value`;
sk = `state` for the current decisions, `audit#<time>#<message id>` for each
change (append-only; a replay writes the same key again, so it stays once).
Recent erasures (`pk = erasures`, functions/shared/dal/erasures.py): the keys an
erasure suppressed, kept for `RACE_BOUND`, against which the consent step checks
what it has just written (see `ConsentBatch.commit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from functions.shared.consent_records import AuditEntry, CategoryDecision, ConsentState
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.erasures import ErasureRecord
from functions.shared.erasure import RecentErasures

STATE = "state"
AUDIT = "audit#"
ERASURE = "erasure"  # the message id of an erasure's own audit entry
# How long a consent batch may hold states it read before an erasure: one invocation
# (60 s at most) and clock skew, with room to spare.
RACE_BOUND = timedelta(minutes=15)


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
        """Suppress each key, then delete everything else held under it; how many
        records about the person went.

        The suppressions go in first: an event judged meanwhile finds its identifiers
        suppressed, never absent (an absent one would file the event's own stamp as
        its first decision). What an erasure leaves (the suppression, an `erasure`
        audit entry per request) is not a record about the person, so erasing again
        deletes and counts nothing.
        """
        wanted = sorted(set(keys))
        before = self.load(wanted)
        # Before the suppressions: a consent batch that read these states earlier and
        # writes them after checks its write against this record and puts them back.
        ErasureRecord(self.table, RACE_BOUND).record(wanted, at)
        self.table.batch_write(
            [
                state_to_item(ConsentState(key, suppressed=True, erased_at=at, changed=True))
                for key in wanted
            ]
            + [audit_to_item(AuditEntry(key, at, ERASURE, ERASURE, {})) for key in wanted]
        )
        deleted = sum(1 for state in before.values() if not _left_by_an_erasure(state))
        for key in wanted:
            entries = self.table.query_partition(key, AUDIT)
            gone = [
                {"pk": key, "sk": str(i["sk"])} for i in entries if i.get("message_id") != ERASURE
            ]
            self.table.batch_write(deletes=gone)
            deleted += len(gone)
        return deleted

    # --- the consent step's check against a racing erasure -------------------------

    def erasures_since(self, moment: datetime) -> RecentErasures:
        """The erasures at or after `moment` (one strongly consistent Query)."""
        return ErasureRecord(self.table, RACE_BOUND).since(moment)

    def restore_suppressions(
        self, erased: Mapping[str, datetime], written: Iterable[AuditEntry]
    ) -> None:
        """Put back the suppressions a batch wrote over, and delete the audit entries it
        wrote under those keys."""
        self.table.batch_write(
            [
                state_to_item(ConsentState(key, suppressed=True, erased_at=at, changed=True))
                for key, at in sorted(erased.items())
            ]
        )
        self.table.batch_write(deletes=[audit_key(entry) for entry in written])


def _left_by_an_erasure(state: ConsentState) -> bool:
    return state.suppressed and not state.categories and not state.linked


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


def audit_key(entry: AuditEntry) -> dict[str, str]:
    return {"pk": entry.key, "sk": f"{AUDIT}{entry.at.isoformat()}#{entry.message_id}"}


def audit_to_item(entry: AuditEntry) -> dict[str, Any]:
    return {
        **audit_key(entry),
        "at": entry.at.isoformat(),
        "message_id": entry.message_id,
        "source": entry.source,
        "changes": entry.changes,
    }


def _audit_view(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("at", "message_id", "source", "changes") if k in item}
