"""The delivery log in exports and erasure: a person's records, by profile."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from functions.api.delivery_data import DeliveryData
from functions.shared.deliveries import Attempt, DeliveryRecord
from functions.shared.erasure import Person
from functions.shared.identifiers import Identifier

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FakeLog:
    def __init__(self, records: list[DeliveryRecord]) -> None:
        self.records = records

    def for_profiles(self, profile_ids: Iterable[str]) -> list[DeliveryRecord]:
        wanted = set(profile_ids)
        return [r for r in self.records if r.profile_id in wanted]

    def erase_profiles(self, profile_ids: Iterable[str], at: datetime) -> int:
        gone = self.for_profiles(profile_ids)
        self.records = [r for r in self.records if r not in gone]
        return len(gone)


def record(profile: str, destination: str, outcome: str = "delivered") -> DeliveryRecord:
    return DeliveryRecord(
        profile_id=profile,
        activation_id=f"act-{profile}",
        destination=destination,
        activation_type="segment.entered",
        subject="cart_abandoners",
        outcome=outcome,  # type: ignore[arg-type]
        reason="HTTP 204",
        updated_at=T0,
        attempts=[Attempt(at=T0, round=0, status=204, latency_ms=12.5, reason="HTTP 204")],
    )


def person(*profile_ids: str) -> Person:
    return Person(asked_for=Identifier.parse("user_id:u-1"), profile_ids=set(profile_ids))


def test_a_persons_deliveries_are_exported_and_erased_and_nobody_elses() -> None:
    log = FakeLog([record("p-1", "braze"), record("p-1", "crm"), record("p-2", "braze")])
    data = DeliveryData(log)
    assert data.view(person("p-1")) is None  # not in the profile view: its own route
    exported = data.export(person("p-1"))["deliveries"]
    assert {(d["destination"], d["outcome"]) for d in exported} == {
        ("braze", "delivered"),
        ("crm", "delivered"),
    }
    assert exported[0]["attempts"][0]["status"] == 204
    assert data.erase(person("p-1"), T0) == 2
    assert [r.profile_id for r in log.records] == ["p-2"]
