"""The deliveries table: the delivery log (TTL) and each destination's disabled state.

Delivery item: `pk = profile#<profile id>`, `sk = delivery#<activation id>#<destination>`,
attempts as JSON, `expires_at` after `RETENTION`. Erasure marker: `pk = profile#<id>`,
`sk = erased`, `erased_at`, `expires_at` after `RETENTION` too — longer than an
activation can wait in the queue and the dead-letter queue (14 days each) after the
profile's last event was in flight. Destination state:
`pk = destination#<name>`, `sk = state` (no TTL: a 410 stays until an operator acts).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from functions.shared.dal.dynamo import DynamoTable
from functions.shared.deliveries import ATTEMPTS, DeliveryRecord, LoadedLog

RETENTION = timedelta(days=30)
DELIVERY, ERASED = "delivery#", "erased"


def delivery_key(profile_id: str, activation_id: str, destination: str) -> dict[str, str]:
    return {"pk": f"profile#{profile_id}", "sk": f"{DELIVERY}{activation_id}#{destination}"}


def erased_key(profile_id: str) -> dict[str, str]:
    return {"pk": f"profile#{profile_id}", "sk": ERASED}


def destination_key(name: str) -> dict[str, str]:
    return {"pk": f"destination#{name}", "sk": "state"}


class DeliveriesStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def load(self, keys: Iterable[tuple[str, str, str]], profile_ids: Iterable[str]) -> LoadedLog:
        """The records under (profile, activation, destination) `keys`, and which of
        `profile_ids` are erased: one BatchGetItem (per 100 keys) for both."""
        markers = [erased_key(p) for p in sorted(set(profile_ids))]
        items = self.table.batch_get([delivery_key(*k) for k in keys] + markers)
        records = [_record(i) for i in items if str(i["sk"]).startswith(DELIVERY)]
        return LoadedLog(
            records={(r.activation_id, r.destination): r for r in records},
            erased=frozenset(_profile_of(i) for i in items if i["sk"] == ERASED),
        )

    def save(self, records: Iterable[DeliveryRecord]) -> None:
        self.table.batch_write([_item(r) for r in records])

    def erased(self, profile_ids: Iterable[str]) -> set[str]:
        """Which of `profile_ids` are erased (one BatchGetItem of their markers' keys)."""
        items = self.table.batch_get([erased_key(p) for p in sorted(set(profile_ids))])
        return {_profile_of(i) for i in items}

    def forget(self, records: Iterable[DeliveryRecord]) -> None:
        """Delete records written after their profile's erasure had deleted its log."""
        self.table.batch_write(
            deletes=[delivery_key(r.profile_id, r.activation_id, r.destination) for r in records]
        )

    def disabled(self, names: Iterable[str]) -> dict[str, str]:
        """Destination name -> why it is disabled, for those that are."""
        items = self.table.batch_get([destination_key(n) for n in names])
        return {str(i["pk"]).removeprefix("destination#"): str(i["reason"]) for i in items}

    def disable(self, name: str, reason: str, at: datetime) -> None:
        self.table.batch_write([{**destination_key(name), "reason": reason, "at": at.isoformat()}])

    def enable(self, name: str) -> None:
        self.table.batch_write(deletes=[destination_key(name)])

    def for_profiles(self, profile_ids: Iterable[str]) -> list[DeliveryRecord]:
        return [
            _record(item)
            for pid in sorted(set(profile_ids))
            for item in self.table.query_partition(f"profile#{pid}", DELIVERY)
        ]

    def erase_profiles(self, profile_ids: Iterable[str], at: datetime) -> int:
        """Mark the profiles erased, then delete their delivery records; how many records
        went (the markers are not records about the person). Marking first means a
        webhook batch either sees the marker and logs nothing, or wrote before this
        deletes, or finds the marker after its write and takes the write back."""
        wanted = sorted(set(profile_ids))
        expires = int((at + RETENTION).timestamp())
        self.table.batch_write(
            [{**erased_key(p), "erased_at": at.isoformat(), "expires_at": expires} for p in wanted]
        )
        records = self.for_profiles(wanted)
        self.forget(records)
        return len(records)


def _item(record: DeliveryRecord) -> dict[str, Any]:
    return {
        **delivery_key(record.profile_id, record.activation_id, record.destination),
        "activation_type": record.activation_type,
        "subject": record.subject,
        "outcome": record.outcome,
        "reason": record.reason,
        "updated_at": record.updated_at.isoformat(),
        "attempts": ATTEMPTS.dump_json(record.attempts).decode(),
        "expires_at": int((record.updated_at + RETENTION).timestamp()),
    }


def _profile_of(item: dict[str, Any]) -> str:
    return str(item["pk"]).removeprefix("profile#")


def _record(item: dict[str, Any]) -> DeliveryRecord:
    _, activation_id, destination = str(item["sk"]).split("#", 2)
    return DeliveryRecord(
        profile_id=str(item["pk"]).removeprefix("profile#"),
        activation_id=activation_id,
        destination=destination,
        activation_type=str(item["activation_type"]),
        subject=item.get("subject"),
        outcome=item["outcome"],
        reason=str(item.get("reason", "")),
        updated_at=datetime.fromisoformat(str(item["updated_at"])),
        attempts=ATTEMPTS.validate_json(str(item.get("attempts", "[]"))),
    )
