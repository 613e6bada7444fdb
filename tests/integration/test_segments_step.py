"""The segments Lambda end to end on moto: real handler, real Kinesis event shapes.

Profiles, tombstones and segment sizes live in the profiles table built from the
wiring table; change records go to `profile-changes`. DynamoDB calls are counted
(and faults injected) with botocore hooks on the handler's own clients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from functions.profiles.apply import apply_events
from functions.profiles.state import Incoming
from functions.segments.step import SegmentsStep
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.stream_batch import MALFORMED
from tests.integration.segments_rig import (
    SegmentsRig,
    at,
    identify,
    merged,
    segments_rig,
    track,
)
from tests.integration.stream_rig import on_calls, refuse_records, throttle_puts, throttle_reads
from tests.integration.test_identity_step import sequences


@pytest.fixture
def rigged(
    mocked_aws: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SegmentsRig, SegmentsStep]]:
    with segments_rig(monkeypatch) as pair:
        yield pair


@pytest.fixture
def rig(rigged: tuple[SegmentsRig, SegmentsStep]) -> SegmentsRig:
    return rigged[0]


def computed(rig: SegmentsRig, profile: str) -> dict[str, Any]:
    from functions.profiles.computed import computed_values

    stored = rig.profile(profile)
    assert stored is not None
    return computed_values(stored.state, rig_config(), rig.clock[0])


def rig_config() -> Any:
    from functions.segments import handler

    return handler.segments_step().config


def views(profile: str, n: int, start: float = 0.0) -> list[Any]:
    return [track(profile, start + i * 0.01) for i in range(n)]


def test_a_batch_touching_a_profile_many_times_reads_once_and_writes_once(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    batch = [*views("p1", 30), *views("p2", 5), identify("p1", 0.5, email="a@example.com")]
    rig.deliver_ok(rig.records(batch))

    assert rig.calls["BatchGetItem"] == 1
    assert rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"] == 2  # one per profile
    assert rig.kinesis_calls["PutRecords"] == 1
    assert computed(rig, "p1")["product_views_7d"] == 30
    assert computed(rig, "p2")["product_views_7d"] == 5
    p1 = rig.profile("p1")
    assert p1 is not None and p1.state.traits == {"email": "a@example.com"}
    assert {"frequent_viewers", "stage_consideration"} <= set(p1.state.memberships)
    changes = {c.profile_id: c for c in rig.changes()}
    assert set(changes) == {"p1", "p2"}
    entered = {s.segment_id for s in changes["p1"].segments if s.type == "segment.entered"}
    assert "frequent_viewers" in entered
    assert {s.id for s in changes["p1"].segments} <= set(p1.state.recent_changes)
    assert rig.sizes()["frequent_viewers"] == 2


def test_a_replayed_batch_counts_nothing_twice_and_writes_nothing(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    event = rig.records(views("p1", 4))
    rig.deliver_ok(event)
    writes = rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"]
    announced = len(rig.changes())

    rig.deliver_ok(event)  # Lambda re-delivers the same records

    assert computed(rig, "p1")["product_views_7d"] == 4
    assert rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"] == writes
    assert len(rig.changes()) == announced


def test_a_clients_retry_with_the_same_message_id_applies_once(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    first = track("p1", 0.1, "Order Completed", {"total": 120.0}, message_id="order-1")
    retry = track("p1", 0.1, "Order Completed", {"total": 120.0}, message_id="order-1")
    rig.deliver_ok(rig.records([first]))
    rig.deliver_ok(rig.records([retry]))  # a new record: new sequence, same messageId

    values = computed(rig, "p1")
    assert values["orders_total"] == 1
    assert values["lifetime_value"] == 120.0


def test_a_merge_folds_the_loser_once_and_leaves_a_tombstone(rig: SegmentsRig) -> None:
    rig.clock[0] = at(2)
    order = {"total": 200.0}
    rig.deliver_ok(rig.records([track("a", 0.1, "Order Completed", order), *views("a", 2)]))
    rig.deliver_ok(rig.records([track("b", 0.2, "Order Completed", order), *views("b", 3)]))
    merge = rig.records([merged("a", "b", 1)])
    rig.deliver_ok(merge)
    rig.deliver_ok(merge)  # a re-sent merge record folds nothing again

    values = computed(rig, "a")
    assert values["orders_total"] == 2
    assert values["lifetime_value"] == 400.0
    assert values["product_views_7d"] == 5
    loser = rig.item("b")
    assert loser["merged_into"] == "a" and "state" not in loser and "expires_at" in loser
    change = [c for c in rig.changes() if c.profile_id == "a"][-1]
    assert change.cause == "merge" and change.merged_from == ["b"]

    # An event for the loser still in flight lands on the survivor.
    rig.deliver_ok(rig.records([track("b", 1.5)]))
    assert computed(rig, "a")["product_views_7d"] == 6
    assert rig.item("b").get("state") is None
    # Two orders together make one retained customer; the loser's membership left with it.
    sizes = rig.sizes()
    assert sizes["stage_retention"] == 1 and sizes["stage_purchase"] == 0


def test_the_sweep_finds_due_profiles_with_a_query_not_a_scan(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    cart = {"product_id": "sku-9", "price": 80.0, "quantity": 1}
    rig.deliver_ok(rig.records([track("shopper", 0.5, "Product Added", cart)]))
    rig.deliver_ok(rig.records(views("browser", 1)))
    assert rig.item("shopper")["sweep_due_at"] == "2026-03-02T12:30:00Z"  # 24 h after the add
    assert "cart_abandoners" not in rig.profile("shopper").state.memberships  # type: ignore[union-attr]

    rig.calls.clear()
    rig.clock[0] = at(20)
    rig.sweep()  # nothing due yet
    assert rig.calls["Query"] >= 1 and rig.calls["Scan"] == 0
    assert rig.calls["UpdateItem"] + rig.calls["TransactWriteItems"] == 0

    rig.clock[0] = at(24.6)
    rig.sweep()
    assert rig.calls["Scan"] == 0
    shopper = rig.profile("shopper")
    assert shopper is not None and "cart_abandoners" in shopper.state.memberships
    last = [c for c in rig.changes() if c.profile_id == "shopper"][-1]
    assert last.cause == "sweep"
    assert [(s.type, s.segment_id) for s in last.segments] == [
        ("segment.entered", "cart_abandoners")
    ]
    assert rig.sizes()["cart_abandoners"] == 1

    # The order that clears the cart takes them out again, in real time.
    order = track("shopper", 24.7, "Order Completed", {"total": 80.0})
    rig.clock[0] = at(24.8)
    rig.deliver_ok(rig.records([order]))
    shopper = rig.profile("shopper")
    assert shopper is not None and "cart_abandoners" not in shopper.state.memberships
    assert rig.sizes()["cart_abandoners"] == 0


CONFLICT = {
    "Error": {"Code": "TransactionCanceledException", "Message": "version moved"},
    "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
    "ResponseMetadata": {"HTTPStatusCode": 400},
}


def test_a_lost_race_is_read_again_and_redone_in_the_same_invocation(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records(views("p1", 1) + views("p2", 1)))
    # p1 enters a segment with this batch (a transactional write) and loses a race once.
    rig.faults["TransactWriteItems"] = on_calls(1, lambda _r: CONFLICT)
    rig.calls.clear()
    rig.deliver_ok(rig.records(views("p1", 3, start=0.1) + views("p2", 2, start=0.1)))
    assert rig.calls["TransactWriteItems"] == 2  # the lost write, and the redone one
    assert rig.calls["BatchGetItem"] == 2  # the batch's read, and p1's again
    assert computed(rig, "p1")["product_views_7d"] == 4
    assert computed(rig, "p2")["product_views_7d"] == 3


def test_a_race_lost_every_round_fails_only_that_profiles_records_and_the_retry_counts_once(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records(views("p1", 1) + views("p2", 1)))
    rig.faults["TransactWriteItems"] = on_calls(3, lambda _r: CONFLICT)
    batch = rig.records(views("p1", 3, start=0.1) + views("p2", 2, start=0.1))
    failed = rig.deliver(batch)
    assert failed and set(failed) < set(sequences(batch))
    rig.faults.clear()

    # Lambda resumes from the first failed record: p2's records come again too.
    first = sequences(batch).index(failed[0])
    retry = dict(batch, Records=batch["Records"][first:])
    rig.deliver_ok(retry)
    assert computed(rig, "p1")["product_views_7d"] == 4
    assert computed(rig, "p2")["product_views_7d"] == 3
    # p1's records came first, so the retry is the same batch (same first and last
    # record); its counts add to the first attempt's: every event counted once.
    assert first == 0
    assert applied_today(rig) == 2 + 5


def applied_today(rig: SegmentsRig) -> int:
    from functions.shared.dal.counters import DailyCounters
    from functions.shared.dal.dynamo import DynamoTable

    counters = DailyCounters(DynamoTable(rig.names.table("counters"), rig.raw_dynamodb))
    return counters.day_totals("segments", rig.clock[0].date().isoformat())["applied"]


def test_throttled_reads_hand_the_whole_batch_back(rig: SegmentsRig) -> None:
    rig.faults["BatchGetItem"] = throttle_reads(10)
    batch = rig.records(views("p1", 2))
    assert rig.deliver(batch) == sequences(batch)
    rig.faults.clear()
    rig.deliver_ok(batch)
    assert computed(rig, "p1")["product_views_7d"] == 2


def test_throttled_profile_writes_fail_their_records_and_the_retry_applies_once(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    # The first profile's write (a new segment member: a transaction, not retried inside).
    rig.faults["TransactWriteItems"] = throttle_puts(1)
    batch = rig.records([*views("p1", 2), *views("p2", 3)])
    failed = rig.deliver(batch)
    assert failed and set(failed) < set(sequences(batch))  # only the throttled profile's
    rig.faults.clear()
    first = sequences(batch).index(min(failed, key=sequences(batch).index))
    rig.deliver_ok(dict(batch, Records=batch["Records"][first:]))  # Lambda resumes there
    assert computed(rig, "p1")["product_views_7d"] == 2
    assert computed(rig, "p2")["product_views_7d"] == 3
    assert sum(stored.state.events_applied for stored in map(rig.profile, ("p1", "p2"))) == 5


def test_refused_change_records_write_no_profile_and_the_retry_announces_once(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    rig.faults["kinesis:PutRecords"] = refuse_records(4)  # every attempt of the writer
    batch = rig.records([*views("p1", 2), *views("p2", 1)])
    assert rig.deliver(batch) == sequences(batch)
    assert rig.profile("p1") is None and rig.changes() == []  # announced nothing, wrote nothing
    rig.faults.clear()
    rig.deliver_ok(batch)
    assert sorted(c.profile_id for c in rig.changes()) == ["p1", "p2"]
    assert computed(rig, "p1")["product_views_7d"] == 2


def test_a_malformed_record_goes_to_failed_events_and_the_rest_applies(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records([b"{not json", *views("p1", 2)]))
    assert computed(rig, "p1")["product_views_7d"] == 2
    keys = [
        o["Key"]
        for o in rig.s3.list_objects_v2(Bucket=rig.names.bucket("failed-events"))["Contents"]
    ]
    assert any(f"reason={MALFORMED}" in k for k in keys)


def test_one_event_on_both_sides_of_a_merge_in_one_batch_is_applied_once(
    rig: SegmentsRig,
) -> None:
    # A client's retry (or a redone upstream batch) resolved once before the merge,
    # to the loser, and once after it, to the survivor, in the batch with the merge.
    rig.clock[0] = at(2)
    rig.deliver_ok(rig.records([track("b", 0.5, message_id="once")]))
    rig.deliver_ok(rig.records([merged("a", "b", 1), track("a", 0.5, message_id="once")]))
    assert computed(rig, "a")["product_views_7d"] == 1
    survivor = rig.profile("a")
    assert survivor is not None and survivor.state.events_applied == 1


def test_an_event_the_loser_takes_while_it_is_being_folded_is_not_left_behind(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(2)
    rig.deliver_ok(rig.records(views("a", 2)))
    rig.deliver_ok(rig.records(views("b", 3)))
    store = ProfilesStore(DynamoTable(rig.names.table("profiles"), rig.raw_dynamodb))

    def loser_takes_a_view(_request: dict[str, Any]) -> None:
        # The loser's shard is processed by another invocation at the same moment:
        # it applies a view to "b" after this one read "b" and before it writes.
        del rig.faults["TransactWriteItems"]
        loser = store.load(["b"])["b"]
        apply_events(loser.state, [Incoming(track("b", 1.5).event)], rig_config(), rig.clock[0])
        store.save(loser, due_at=None, at=rig.clock[0])

    rig.faults["TransactWriteItems"] = loser_takes_a_view
    rig.deliver_ok(rig.records([merged("a", "b", 1)]))
    # The fold and the tombstone are one transaction: it failed, and the merge was
    # redone from what "b" holds now.
    assert computed(rig, "a")["product_views_7d"] == 6
    assert rig.item("b")["merged_into"] == "a" and "state" not in rig.item("b")


def test_consent_from_the_stamp_reaches_the_profile(rig: SegmentsRig) -> None:
    rig.clock[0] = at(1)
    stamp = {"granted": ["analytics", "marketing"], "denied": ["advertising"]}
    rig.deliver_ok(rig.records([track("p1", 0.2, consent=stamp)]))
    stored = rig.profile("p1")
    assert stored is not None
    assert stored.state.consent == {"analytics": True, "marketing": True, "advertising": False}


def test_a_crash_midway_through_the_writes_loses_no_count_and_counts_nothing_twice(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    crash = {
        "Error": {"Code": "InternalServerError", "Message": "the service fell over"},
        "ResponseMetadata": {"HTTPStatusCode": 500},
    }
    # Five new profiles (each enters a segment: a transactional write); the third crashes.
    rig.faults["TransactWriteItems"] = on_calls(10, lambda _r: crash, after=2)
    batch = rig.records([track(f"p{n}", 0.1) for n in range(5)])
    with pytest.raises(Exception, match="InternalServerError"):
        rig.deliver(batch)
    assert applied_today(rig) == 2  # what was written before the crash is counted
    rig.faults.clear()

    rig.deliver_ok(batch)  # Lambda retries the whole batch
    assert applied_today(rig) == 5
    assert all(computed(rig, f"p{n}")["product_views_7d"] == 1 for n in range(5))


# --- erasure: events still in flight (issue 13, the erasure window) ------------------


def profiles_store(rig: SegmentsRig) -> ProfilesStore:
    return ProfilesStore(DynamoTable(rig.names.table("profiles"), rig.raw_dynamodb))


def segment_counts(rig: SegmentsRig) -> Counter[str]:
    table = DynamoTable(rig.names.table("counters"), rig.raw_dynamodb)
    return DailyCounters(table).day_totals("segments", rig.clock[0].date().isoformat())


def test_events_of_an_erased_profile_in_flight_are_dropped_counted_and_never_recreate_it(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records([*views("p1", 5), identify("p1", 0.1, email="ana@example.org")]))
    rig.deliver_ok(rig.records(views("p2", 1)))
    assert rig.sizes()["frequent_viewers"] == 1
    # "p-new": a profile id identity gave out whose first events are still in flight.
    assert profiles_store(rig).erase(["p1", "p-new"], at(2)) == 1
    assert rig.sizes()["frequent_viewers"] == 0  # its memberships left with it
    assert profiles_store(rig).erased_applied() == 6  # and its applied events
    changes_before = Counter(c.profile_id for c in rig.changes())

    in_flight = [*views("p1", 3, start=0.5), track("p-new", 0.6), merged("p1", "p3", 0.7)]
    rig.deliver_ok(rig.records([*in_flight, *views("p2", 2, start=0.8)]))

    for erased in ("p1", "p-new"):
        item = rig.item(erased)
        assert set(item) == {"pk", "sk", "version", "erased_at", "expires_at"}  # no data
    assert rig.profile("p3") is None  # the merge into an erased profile is ignored
    assert computed(rig, "p2")["product_views_7d"] == 3
    assert Counter(c.profile_id for c in rig.changes()) - changes_before == Counter(["p2"])
    assert segment_counts(rig)["erased"] == 4  # three views and the new profile's event
    rig.sweep()
    assert set(rig.item("p1")) == {"pk", "sk", "version", "erased_at", "expires_at"}
    # Erasing again finds nothing: markers are not records about the person.
    assert profiles_store(rig).erase(["p1", "p-new"], at(3)) == 0


def test_an_erasure_between_the_read_and_the_write_is_not_written_over(
    rig: SegmentsRig,
) -> None:
    """Fault drill: the erasure lands while a batch that read the profile is applying
    four more views to it. Its write, conditional on the version read, fails; the
    profile is read again, found erased, and its events are dropped."""
    rig.clock[0] = at(1)
    rig.deliver_ok(rig.records(views("p1", 1)))
    landed: list[int] = []

    def erasure_lands(_request: dict[str, Any]) -> None:
        if not landed:
            landed.append(profiles_store(rig).erase(["p1"], at(2)))

    rig.faults["TransactWriteItems"] = rig.faults["UpdateItem"] = erasure_lands
    rig.deliver_ok(rig.records(views("p1", 4, start=0.5)))

    assert landed == [1]
    assert "state" not in rig.item("p1")
    assert rig.sizes().get("frequent_viewers", 0) == 0
    assert segment_counts(rig)["erased"] == 4
    # The one view applied before the erasure left with the profile, counted as such.
    assert segment_counts(rig)["applied"] == profiles_store(rig).erased_applied() == 1


def test_dropped_events_of_a_batch_handed_back_in_part_are_counted_once(
    rig: SegmentsRig,
) -> None:
    rig.clock[0] = at(1)
    profiles_store(rig).erase(["gone"], at(0.5))
    # p2's write (an update, or a transaction when it enters a segment): handed back.
    rig.faults["UpdateItem"] = rig.faults["TransactWriteItems"] = throttle_puts(1)
    batch = rig.records([track("gone", 0.1), track("p2", 0.2), track("gone", 0.3)])
    failed = rig.deliver(batch)
    assert failed == sequences(batch)[1:2]
    rig.faults.clear()
    rig.deliver_ok(dict(batch, Records=batch["Records"][1:]))  # Lambda resumes at p2
    assert segment_counts(rig)["erased"] == 2
    assert computed(rig, "p2")["product_views_7d"] == 1
