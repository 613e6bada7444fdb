"""The identity Lambda end to end on moto: real handler, real Kinesis event shapes.

Each test drives `functions.identity.handler.lambda_handler` with Kinesis events
as Lambda delivers them, with the identity table, the `consented` and `resolved`
streams and the failed-events bucket built from the wiring table on moto
in-process (see `identity_rig.py`). DynamoDB and Kinesis calls are counted, and
faults injected, with botocore `before-call` hooks on the handler's own clients.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.api.identity_data import IdentityData
from functions.identity import handler
from functions.identity.graph import merge_id
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.erasures import KEYS_PER_ITEM
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.erasure import IN_FLIGHT_BOUND, Person
from functions.shared.identifiers import Identifier
from functions.shared.resolved import ProfileMerged, ResolvedEvent
from functions.shared.stream_batch import MALFORMED, stream_items
from tests.integration.identity_rig import (
    OTHER_SHARD,
    SALT,
    SHARD,
    IdentityRig,
    at,
    event,
    identify,
    identity_rig,
    link,
    refuse_records,
    throttle_puts,
    throttle_reads,
)


@pytest.fixture
def rig(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityRig]:
    with identity_rig(monkeypatch) as running:
        yield running


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sequences(kinesis_event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in kinesis_event["Records"]]


def only(values: set[str]) -> str:
    assert len(values) == 1, values
    return next(iter(values))


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# --- one profile per person ----------------------------------------------------


def test_two_devices_then_login_with_one_email_on_both_is_one_profile(rig: IdentityRig) -> None:
    laptop_visit = event(0, anon="d-laptop")
    phone_visit = event(1, anon="d-phone")
    laptop_login = identify(2, anon="d-laptop", email="Ana.Lopez@Example.org")
    rig.deliver_ok(rig.batch([laptop_visit, phone_visit, laptop_login]))
    phone_login = identify(3, anon="d-phone", email="  ana.lopez@example.ORG ")
    phone_after = event(4, anon="d-phone", name="Order Completed")
    rig.deliver_ok(rig.batch([phone_login, phone_after]))

    laptop = only(rig.profile_of_message(laptop_visit.message_id))
    phone = only(rig.profile_of_message(phone_visit.message_id))
    assert laptop != phone
    assert list(rig.live_profiles()) == [laptop]
    survivor = rig.live_profiles()[laptop]
    assert sorted(survivor.identifiers["anonymous_id"]) == ["d-laptop", "d-phone"]
    assert survivor.identifiers["email"] == ["ana.lopez@example.org"]
    assert survivor.identifiers["email_sha256"] == [sha256("ana.lopez@example.org")]
    assert rig.profiles()[phone].merged_into == laptop
    assert set(rig.nodes().values()) == {laptop}
    assert set(rig.nodes()) == {
        "anonymous_id:d-laptop",
        "anonymous_id:d-phone",
        "email:ana.lopez@example.org",
        f"email_sha256:{sha256('ana.lopez@example.org')}",
    }
    for later in (laptop_login, phone_login, phone_after):
        assert rig.profile_of_message(later.message_id) == {laptop}

    [(key, merged)] = rig.merged_records()
    assert key == merged.survivor == laptop
    assert (merged.loser, merged.rule, merged.message_id) == (
        phone,
        "deterministic",
        phone_login.message_id,
    )
    assert merged.merge_id == merge_id(laptop, phone)
    assert merged.identifiers == ["anonymous_id:d-phone"]
    # Keyed by the survivor, so on the survivor's shard the merge comes first.
    [survivor_shard] = [
        records
        for records in rig.resolved_by_shard().values()
        if any(isinstance(r, ProfileMerged) for _, r in records)
    ]
    order = [
        r.merge_id if isinstance(r, ProfileMerged) else r.event.message_id
        for k, r in survivor_shard
        if k == laptop
    ]
    assert order.index(merged.merge_id) < order.index(phone_login.message_id)

    [audit] = rig.audit()
    assert audit["pk"] == f"profile#{laptop}"
    assert (audit["merge_id"], audit["loser"], audit["rule"]) == (
        merged.merge_id,
        phone,
        "deterministic",
    )
    assert audit["identifiers"] == ["anonymous_id:d-phone"]


def test_a_shared_laptop_keeps_two_customers_apart(rig: IdentityRig) -> None:
    ana_login = identify(0, anon="d-shared", user="u-ana", email="ana@example.org")
    ana_visit = event(1, anon="d-shared", user="u-ana")
    logged_out = event(2, anon="d-shared")
    rig.deliver_ok(rig.batch([ana_login, ana_visit, logged_out]))
    ben_login = identify(3, anon="d-shared", user="u-ben", email="ben@example.org")
    ben_visit = event(4, anon="d-shared", user="u-ben")
    rig.deliver_ok(rig.batch([ben_login, ben_visit]))

    ana = only(rig.profile_of_message(ana_login.message_id))
    ben = only(rig.profile_of_message(ben_login.message_id))
    assert ana != ben
    assert set(rig.live_profiles()) == {ana, ben}
    assert rig.profile_of_message(logged_out.message_id) == {ana}
    assert rig.profile_of_message(ben_visit.message_id) == {ben}
    nodes = rig.nodes()
    assert nodes["anonymous_id:d-shared"] == ana
    assert nodes["user_id:u-ben"] == nodes["email:ben@example.org"] == ben
    profiles = rig.live_profiles()
    assert profiles[ana].identifiers["user_id"] == ["u-ana"]
    assert profiles[ben].identifiers["user_id"] == ["u-ben"]
    assert "anonymous_id" not in profiles[ben].identifiers
    assert rig.merged_records() == []
    assert rig.audit() == []


def test_a_chain_across_batches_is_one_profile(rig: IdentityRig) -> None:
    """a ~ b in one batch, b ~ c in the next, then c alone: one profile throughout."""
    a_b = event(0, anon="d-a", email="b@example.org")
    b_c = event(1, user="u-c", email="b@example.org")
    c = event(2, user="u-c")
    for item in (a_b, b_c, c):
        rig.deliver_ok(rig.batch([item]))

    profile = only(rig.profile_of_message(a_b.message_id))
    assert (
        rig.profile_of_message(b_c.message_id) == rig.profile_of_message(c.message_id) == {profile}
    )
    assert list(rig.live_profiles()) == [profile]
    assert set(rig.nodes().values()) == {profile}
    assert set(rig.nodes()) == {
        "anonymous_id:d-a",
        "email:b@example.org",
        f"email_sha256:{sha256('b@example.org')}",
        "user_id:u-c",
    }
    assert rig.merged_records() == []


def test_three_profiles_merge_into_the_oldest_through_one_event(rig: IdentityRig) -> None:
    oldest_visit = event(0, anon="d-1", email="three@example.org")
    by_user = event(1, user="u-2")
    by_device = event(2, anon="d-3")
    rig.deliver_ok(rig.batch([oldest_visit, by_user, by_device]))
    oldest = only(rig.profile_of_message(oldest_visit.message_id))
    second = only(rig.profile_of_message(by_user.message_id))
    third = only(rig.profile_of_message(by_device.message_id))
    assert len({oldest, second, third}) == 3

    everything = identify(3, anon="d-3", user="u-2", email="three@example.org")
    rig.deliver_ok(rig.batch([everything]))

    assert rig.profile_of_message(everything.message_id) == {oldest}
    assert list(rig.live_profiles()) == [oldest]
    assert {p.profile_id: p.merged_into for p in rig.profiles().values()} == {
        oldest: None,
        second: oldest,
        third: oldest,
    }
    assert set(rig.nodes().values()) == {oldest}
    merged = rig.merged_records()
    assert sorted(r.loser for _, r in merged) == sorted([second, third])
    assert {(k, r.survivor, r.message_id) for k, r in merged} == {
        (oldest, oldest, everything.message_id)
    }
    assert sorted(a["loser"] for a in rig.audit()) == sorted([second, third])
    survivor = rig.live_profiles()[oldest]
    assert sorted(survivor.identifiers["anonymous_id"]) == ["d-1", "d-3"]
    assert survivor.identifiers["user_id"] == ["u-2"]


def test_a_merge_repoints_the_losers_identifiers_that_the_event_did_not_carry(
    rig: IdentityRig,
) -> None:
    """The phone's profile also holds a newsletter email; the login on the phone carries
    only the phone's anonymous id and the main email. The merge moves the newsletter
    email (and its hash) to the survivor: their nodes exist and point at the loser."""
    laptop_login = identify(0, anon="d-laptop", email="ana@example.org")
    newsletter = identify(1, anon="d-phone", email="ana.news@example.org")
    rig.deliver_ok(rig.batch([laptop_login, newsletter]))
    laptop = only(rig.profile_of_message(laptop_login.message_id))
    phone = only(rig.profile_of_message(newsletter.message_id))
    phone_login = identify(2, anon="d-phone", email="ana@example.org")
    kinesis_event = rig.batch([phone_login])

    assert rig.deliver(kinesis_event) == []

    assert rig.profile_of_message(phone_login.message_id) == {laptop}
    assert rig.nodes()["email:ana.news@example.org"] == laptop
    assert set(rig.nodes().values()) == {laptop}
    [(_, merged)] = rig.merged_records()
    assert (merged.survivor, merged.loser) == (laptop, phone)


@pytest.mark.parametrize("crash_at", range(5), ids=lambda n: f"put-{n + 1}-of-5")
def test_a_commit_interrupted_by_throttling_is_finished_by_the_retry(
    rig: IdentityRig, crash_at: int
) -> None:
    """The merge batch's commit is five conditional puts (survivor, loser's redirect,
    then the three nodes the merge moves); DynamoDB throttles one of them. The retry
    must leave the graph as an uninterrupted commit would: every node on the survivor,
    so that a later merge of the survivor does not trip over a node it never read."""
    oldest = event(0, anon="d-old")
    laptop = identify(1, anon="d-laptop", email="ana@example.org")
    phone = identify(2, anon="d-phone", email="ana.news@example.org")
    rig.deliver_ok(rig.batch([oldest, laptop, phone]))
    merge = rig.batch([identify(3, anon="d-phone", email="ana@example.org")])
    rig.faults["PutItem"] = throttle_puts(1, after=crash_at)

    assert rig.deliver(merge) == sequences(merge)
    del rig.faults["PutItem"]
    rig.deliver_ok(merge)

    survivor = only(rig.profile_of_message(laptop.message_id))
    assert len(rig.merged_records()) == 1
    stale = sorted(k for k, v in rig.nodes().items() if v != survivor and "d-old" not in k)
    assert stale == []
    later = event(4, anon="d-old", email="ana@example.org")  # merges into the oldest
    assert rig.deliver(rig.batch([later])) == []
    assert len(rig.live_profiles()) == 1


def test_blocked_values_never_become_graph_nodes(rig: IdentityRig) -> None:
    anonymous_null = event(0, anon="null")
    zero_user = event(1, user="0", anon="d-real")
    test_email = identify(2, anon="d-real", email="test@test.com")
    all_blocked = event(3, anon="NULL", user="0", email="TEST@test.com")
    rig.deliver_ok(rig.batch([anonymous_null, zero_user, test_email, all_blocked]))

    assert set(rig.nodes()) == {"anonymous_id:d-real"}
    held = {
        f"{kind}:{value}"
        for profile in rig.profiles().values()
        for kind, values in profile.identifiers.items()
        for value in values
    }
    assert held == {"anonymous_id:d-real"}
    real = only(rig.profile_of_message(zero_user.message_id))
    assert rig.profile_of_message(test_email.message_id) == {real}
    assert len(rig.resolved_events()) == 4  # every event still goes on, under some profile


# --- replays -------------------------------------------------------------------


def story() -> list[list[Any]]:
    """Two batches with three merges: one inside the first batch, two in the second."""
    return [
        [
            event(0, anon="d-1"),
            event(1, anon="d-2"),
            identify(2, anon="d-1", email="ana@example.org"),
            identify(3, anon="d-2", email="ana@example.org"),  # merges d-2's profile
        ],
        [
            event(4, anon="d-3"),
            event(5, user="u-ana"),
            identify(6, anon="d-3", user="u-ana", email="ana@example.org"),  # merges two
            event(7, anon="d-3", user="u-ana", name="Order Completed"),
        ],
    ]


def test_a_replayed_batch_creates_nothing_writes_nothing_and_sends_no_merge(
    rig: IdentityRig,
) -> None:
    batches = [rig.batch(items) for items in story()]
    for kinesis_event in batches:
        rig.deliver_ok(kinesis_event)
    profiles, nodes, audit = rig.profiles(), rig.nodes(), rig.audit()
    merged = rig.merged_records()
    assert len(merged) == 3 and len(audit) == 3 and len(rig.live_profiles()) == 1
    assert len({r.merge_id for _, r in merged}) == 3
    first_ids = rig.resolved_ids()
    mark = rig.mark()
    rig.calls.clear()

    for kinesis_event in batches:
        rig.deliver_ok(kinesis_event)

    assert rig.graph_writes == 0
    assert rig.profiles() == profiles  # same profile ids, same versions, nothing new
    assert rig.nodes() == nodes
    assert rig.audit() == audit
    assert rig.merged_records() == merged  # no profile.merged at all on the replay
    assert rig.resolved_ids() == {m: 2 * n for m, n in first_ids.items()}
    [survivor] = rig.live_profiles()
    replayed = rig.resolved_after(mark)
    assert all(isinstance(r, ResolvedEvent) for _, r in replayed)
    assert {key for key, _ in replayed} == {survivor}
    assert {r.profile_id for _, r in replayed if isinstance(r, ResolvedEvent)} == {survivor}


def test_a_replayed_identify_with_match_traits_writes_nothing(rig: IdentityRig) -> None:
    """Name and address traits are filed under blocking keys for probabilistic matching;
    a replay finds them filed already and must not write them again."""
    traits = {
        "firstName": "Ana",
        "lastName": "Lopez",
        "address": {"street": "12 Oak Street", "city": "Austin", "postalCode": "78701"},
    }
    kinesis_event = rig.batch(
        [identify(0, anon="d-ana", user="u-ana", email="ana@example.org", traits=traits)]
    )
    rig.deliver_ok(kinesis_event)
    items = rig.items()
    assert any(str(i["pk"]).startswith("block#") for i in items)
    rig.calls.clear()

    rig.deliver_ok(kinesis_event)

    assert rig.items() == items
    assert rig.graph_writes == 0


def test_a_replayed_event_with_only_blocked_identifiers_creates_no_new_profile(
    rig: IdentityRig,
) -> None:
    """Clients do send anonymousId "null"; replaying such an event must not mint a
    profile (and a write) every time."""
    kinesis_event = rig.batch([event(0, anon="null"), event(1, anon="d-real")])
    rig.deliver_ok(kinesis_event)
    profiles = rig.profiles()
    rig.calls.clear()

    rig.deliver_ok(kinesis_event)

    assert rig.profiles() == profiles
    assert rig.graph_writes == 0


# --- the cross-shard race ------------------------------------------------------------


@pytest.mark.parametrize(
    ("second_anon", "second_minute"),
    [(None, 5), ("d-app", -5)],
    ids=["second-batch-carries-only-x", "second-batch-also-has-its-own-device-and-is-older"],
)
def test_two_shards_racing_on_a_new_identifier_end_with_one_profile(
    rig: IdentityRig, second_anon: str | None, second_minute: int
) -> None:
    """Both batches read "X unknown"; the first commits; the second's commit conflicts.

    The first batch is driven through IdentityStep directly (open, decide, commit);
    the second through the real handler, with the first committing between the
    second's graph reads and its first write. The second batch is the server's
    order events for the same user id X, alone or with the app's device id.
    """
    x = "u-racer"  # a user id neither batch has seen
    first_items = [identify(0, anon="d-web", user=x, email="racer@example.org")]
    second_items = [
        event(second_minute, user=x, anon=second_anon, name="Order Completed"),
        event(second_minute + 1, user=x, anon=second_anon),
    ]
    first = rig.batch(first_items, shard=SHARD)
    second = rig.batch(second_items, shard=OTHER_SHARD)

    step = handler.identity_step()
    first_batch = step.open_batch(stream_items(first))  # reads: X unknown
    for sequence in sequences(first):
        first_batch.decide(sequence)
    committed: list[Any] = []
    # The second batch's writes run side by side: the first to arrive commits the first
    # batch while the others wait; the first batch's own writes pass (they carry the flag).
    first_commits = contextvars.ContextVar("first_commits", default=False)
    one_at_a_time = threading.Lock()

    def commit_first_meanwhile(_request: dict[str, Any]) -> None:
        if first_commits.get():
            return
        with one_at_a_time:
            if not committed:  # the second batch has read the graph and is about to write
                token = first_commits.set(True)
                try:
                    committed.append(first_batch.commit([]))
                finally:
                    first_commits.reset(token)

    rig.faults["PutItem"] = commit_first_meanwhile
    assert rig.deliver(second) == sequences(second)  # GraphConflict: all failed
    del rig.faults["PutItem"]
    assert committed and committed[0][0] == []

    winner = only(rig.profile_of_message(first_items[0].message_id))
    assert rig.nodes()[f"user_id:{x}"] == winner
    for item in second_items:
        assert rig.profile_of_message(item.message_id) == set()  # nothing of the lost attempt

    rig.deliver_ok(second)  # the redelivery reads the winner's profile

    assert rig.resolved_ids() == {item.message_id: 1 for item in first_items + second_items}
    for item in second_items:
        assert rig.profile_of_message(item.message_id) == {winner}
    assert rig.nodes()[f"user_id:{x}"] == winner
    assert rig.holders(f"user_id:{x}") == [winner]  # one profile holds X
    assert list(rig.live_profiles()) == [winner]
    assert rig.merged_records() == []  # the race left no second profile to merge


# --- faults ----------------------------------------------------------------------


def test_a_merge_whose_record_could_not_be_sent_is_sent_once_on_the_redelivery(
    rig: IdentityRig,
) -> None:
    first, second = story()
    rig.deliver_ok(rig.batch(first))
    merges_before = rig.merged_records()
    events_before = rig.resolved_ids()
    kinesis_event = rig.batch(second)
    attempts = handler.identity_step().resolved.max_attempts  # type: ignore[attr-defined]
    rig.faults["kinesis:PutRecords"] = refuse_records(attempts)

    assert rig.deliver(kinesis_event) == sequences(kinesis_event)
    assert rig.merged_records() == merges_before
    assert rig.resolved_ids() == events_before
    [survivor] = rig.live_profiles()
    pending = rig.live_profiles()[survivor].merges[-2:]
    assert [note.emitted for note in pending] == [False, False]  # written, not yet sent

    rig.deliver_ok(kinesis_event)  # Kinesis is back

    known = {m.merge_id for _, m in merges_before}
    new = [r for _, r in rig.merged_records() if r.merge_id not in known]
    assert sorted(r.merge_id for r in new) == sorted(note.merge_id for note in pending)
    assert {r.message_id for r in new} == {second[2].message_id}
    notes = rig.live_profiles()[survivor].merges
    assert [note.emitted for note in notes] == [True, True, True]
    assert len(rig.audit()) == 3
    assert rig.resolved_ids() == {**events_before, **{e.message_id: 1 for e in second}}

    rig.deliver_ok(kinesis_event)  # and once more: the outbox holds nothing to resend
    assert len(rig.merged_records()) == 3


@pytest.mark.parametrize("after", [0, 1], ids=["node-reads", "profile-reads"])
def test_throttled_reads_fail_the_batch_and_the_redelivery_resolves_it_once(
    rig: IdentityRig, after: int
) -> None:
    first, second = story()
    rig.deliver_ok(rig.batch(first))
    merges_before, events_before = rig.merged_records(), rig.resolved_ids()
    items_before = rig.items()
    kinesis_event = rig.batch(second)
    attempts = handler.identity_step().graph_store.table.max_attempts  # type: ignore[attr-defined]
    rig.faults["BatchGetItem"] = throttle_reads(attempts, after=after)
    rig.calls.clear()
    rig.kinesis_calls.clear()

    assert rig.deliver(kinesis_event) == sequences(kinesis_event)
    assert rig.calls["BatchGetItem"] == after + attempts
    assert rig.graph_writes == 0
    assert rig.kinesis_calls["PutRecords"] == 0
    assert rig.items() == items_before

    rig.deliver_ok(kinesis_event)

    assert rig.resolved_ids() == {**events_before, **{e.message_id: 1 for e in second}}
    assert len(rig.merged_records()) == len(merges_before) + 2
    assert len(rig.live_profiles()) == 1


def test_throttled_graph_writes_report_the_batch_for_retry_like_throttled_reads(
    rig: IdentityRig,
) -> None:
    """A conditional PutItem that DynamoDB throttles (after botocore's own retries) must
    end like StorageThrottled: every record reported failed, nothing sent."""
    first, _second = story()
    kinesis_event = rig.batch(first)
    rig.faults["PutItem"] = throttle_puts(1)

    assert rig.deliver(kinesis_event) == sequences(kinesis_event)
    assert rig.resolved() == []

    rig.deliver_ok(kinesis_event)
    assert rig.resolved_ids() == {e.message_id: 1 for e in first}


# --- reviewers' links ------------------------------------------------------------


def two_people(rig: IdentityRig, users: tuple[str | None, str | None]) -> tuple[str, str]:
    a = identify(0, anon="d-a", user=users[0], email="a@example.org")
    b = identify(1, anon="d-b", user=users[1], email="b@example.org")
    rig.deliver_ok(rig.batch([a, b]))
    return only(rig.profile_of_message(a.message_id)), only(rig.profile_of_message(b.message_id))


def test_a_reviewers_link_merges_two_profiles_manually(rig: IdentityRig) -> None:
    older, newer = two_people(rig, (None, None))
    command = link(newer, older)
    [kinesis_event] = rig.via_stream([command])

    rig.deliver_ok(kinesis_event)

    [(key, merged)] = rig.merged_records()
    assert (key, merged.survivor, merged.loser) == (older, older, newer)
    assert (merged.rule, merged.message_id) == ("manual", command.command_id)
    assert list(rig.live_profiles()) == [older]
    assert set(rig.nodes().values()) == {older}
    [audit] = rig.audit()
    assert audit["rule"] == "manual"

    rig.deliver_ok(kinesis_event)  # a redelivered command merges nothing again
    assert len(rig.merged_records()) == 1


def test_a_reviewers_link_between_two_user_ids_is_refused(rig: IdentityRig) -> None:
    ana, ben = two_people(rig, ("u-ana", "u-ben"))
    [kinesis_event] = rig.via_stream([link(ana, ben)])
    rig.calls.clear()

    rig.deliver_ok(kinesis_event)

    assert rig.merged_records() == []
    assert set(rig.live_profiles()) == {ana, ben}
    assert rig.audit() == []
    assert rig.graph_writes == 0


def test_a_link_naming_an_unknown_profile_is_refused_without_failing_the_batch(
    rig: IdentityRig,
) -> None:
    """A link to a profile that is gone (erased, mistyped) cannot apply; it must not
    hold up the shard: the command and its neighbours go on."""
    ana, _ben = two_people(rig, (None, None))
    later = event(9, anon="d-a")

    rig.deliver_ok(rig.batch([link(ana, "no-such-profile"), later]))

    assert rig.profile_of_message(later.message_id) == {ana}
    assert rig.merged_records() == []


# --- bad input -------------------------------------------------------------------


def test_a_malformed_record_goes_to_failed_events_and_its_neighbours_go_on(
    rig: IdentityRig,
) -> None:
    good = [event(0, anon="d-good"), event(1, anon="d-good")]
    bad = b'{"type": "track", "not": "a canonical event"'

    rig.deliver_ok(rig.batch([good[0], bad, good[1]]))

    assert rig.resolved_ids() == {g.message_id: 1 for g in good}
    [object_key] = rig.failed_event_keys()
    assert object_key.startswith(f"identity/dt={today()}/reason={MALFORMED}/")
    body = rig.s3.get_object(Bucket=rig.names.bucket("failed-events"), Key=object_key)
    [line] = body["Body"].read().decode().splitlines()
    failure = json.loads(line)
    assert (failure["raw"], failure["step"], failure["reason"]) == (
        bad.decode(),
        "identity",
        MALFORMED,
    )


# --- cost ------------------------------------------------------------------------


@pytest.mark.parametrize("with_email", [False, True], ids=["80-identifiers", "160-identifiers"])
def test_a_batch_of_known_people_costs_batched_reads_no_writes_and_one_put_records(
    rig: IdentityRig, with_email: bool
) -> None:
    people = 40

    def visit(minute: int, p: int) -> Any:
        email = f"person{p}@example.org" if with_email else None
        return event(minute, user=f"u-{p}", anon=f"d-{p}", email=email)

    rig.deliver_ok(rig.batch([visit(0, p) for p in range(people)]))
    assert len(rig.live_profiles()) == people
    events = [visit(n, p) for n in range(1, 6) for p in range(people)]  # interleaved
    assert len(events) == 200
    distinct = len(rig.nodes())
    assert distinct == people * (4 if with_email else 2)
    rig.calls.clear()
    rig.kinesis_calls.clear()

    rig.deliver_ok(rig.batch(events))

    assert rig.calls["BatchGetItem"] == math.ceil(distinct / 100) + math.ceil(people / 100)
    assert rig.calls["PutItem"] == rig.calls["UpdateItem"] == 0
    assert rig.calls["Query"] == 1  # the recent erasures, once per batch
    assert set(rig.calls) == {"BatchGetItem", "Query"}
    assert rig.kinesis_calls["PutRecords"] == 1
    assert len(rig.resolved_events()) == people + 200


# --- erasure: events still in flight (issue 13, the erasure window) ------------------

ERASED_AT = at(60)


def erase(rig: IdentityRig, ref: str, moment: datetime = ERASED_AT) -> int:
    """What the API's erasure does to the identity table (its `IdentityData` participant)."""
    salt = SALT.encode()
    store = IdentityStore(DynamoTable(rig.names.table("identity"), rig.raw_dynamodb))
    identifier = Identifier.parse(ref)
    person = Person(identifier, {identifier.hashed_key(salt)}, {identifier})
    data = IdentityData(store, salt)
    data.widen(person)
    return data.erase(person, moment)


def erased_count(rig: IdentityRig) -> int:
    table = DynamoTable(rig.names.table("counters"), rig.raw_dynamodb)
    return DailyCounters(table).day_totals("identity", ERASED_AT.date().isoformat())["erased"]


def test_events_of_an_erased_person_still_in_flight_are_dropped_counted_and_write_nothing_back(
    rig: IdentityRig,
) -> None:
    handler.identity_step().clock = lambda: ERASED_AT + timedelta(minutes=1)
    rig.deliver_ok(
        rig.batch(
            [
                identify(0, anon="d-ana", user="u-ana", email="ana@example.org"),
                event(1, anon="d-ana", user="u-ana"),
            ]
        )
    )
    assert erase(rig, "email:ana@example.org") > 0
    assert rig.nodes() == {}
    mark = rig.mark()
    # Received before the erasure, past consent already: on their way when it ran.
    in_flight = [
        event(2, anon="d-ana"),
        event(3, anon="d-new-phone", user="u-ana"),  # a device the erasure never saw
        identify(4, user="u-ana", email="ana@example.org", phone="+1 415 555 2671"),
    ]
    bob = event(5, anon="d-bob")
    rig.deliver_ok(rig.batch([*in_flight, bob]))

    assert [r.event.message_id for _, r in rig.resolved_after(mark)] == [bob.message_id]
    assert set(rig.nodes()) == {"anonymous_id:d-bob"}  # nothing of Ana came back
    assert erased_count(rig) == len(in_flight)
    # One received after the erasure got past consent with a fresh opt-in: it goes on.
    fresh = event(61, anon="d-ana", user="u-ana", name="Segment Consent Preference Updated")
    rig.deliver_ok(rig.batch([fresh]))
    assert rig.profile_of_message(fresh.message_id)
    assert erased_count(rig) == len(in_flight)


def test_a_refusal_alone_makes_no_profile_but_reaches_a_profile_that_exists(
    rig: IdentityRig,
) -> None:
    """Consent events pass consent whatever they decide, so that a withdrawal reaches
    the profile; from someone without one, a refusal is dropped and counted."""
    refusal = "Segment Consent Preference Updated"
    stranger = event(0, anon="d-bob", name=refusal, denied=("personalization",))
    first_visit = event(1, anon="d-cy")  # made in this batch: the refusal after it reaches it
    withdrawal = event(2, anon="d-cy", name=refusal, denied=("personalization",))
    analytics_only = event(3, anon="d-dee", name=refusal, denied=("advertising",))
    mark = rig.mark()
    batch = rig.batch([stranger, first_visit, withdrawal, analytics_only])
    rig.deliver_ok(batch)

    resolved = [r.event.message_id for _, r in rig.resolved_after(mark)]
    # Partitioned by profile id: in order per person, in any order across shards.
    assert sorted(resolved) == sorted(
        [first_visit.message_id, withdrawal.message_id, analytics_only.message_id]
    )
    assert resolved.index(first_visit.message_id) < resolved.index(withdrawal.message_id)
    assert set(rig.nodes()) == {"anonymous_id:d-cy", "anonymous_id:d-dee"}
    table = DynamoTable(rig.names.table("counters"), rig.raw_dynamodb)
    assert DailyCounters(table).day_totals("identity", today()) == {"refused_without_profile": 1}
    # Redelivered, the batch counts the same refusal once and makes no profile for it.
    rig.deliver_ok(batch)
    assert DailyCounters(table).day_totals("identity", today()) == {"refused_without_profile": 1}
    assert set(rig.nodes()) == {"anonymous_id:d-cy", "anonymous_id:d-dee"}


def test_the_recent_erasures_hold_salted_hashes_only(rig: IdentityRig) -> None:
    rig.deliver_ok(rig.batch([identify(0, anon="d-ana", user="u-ana", email="ana@example.org")]))
    erase(rig, "user_id:u-ana")
    [record] = [i for i in rig.items() if i["pk"] == "erasures"]
    stored = json.dumps(record, default=str)
    for raw in ("u-ana", "d-ana", "ana@example.org", sha256("ana@example.org")):
        assert raw not in stored
    expected = {
        Identifier.parse(ref).hashed_key(SALT.encode())
        for ref in ("user_id:u-ana", "anonymous_id:d-ana", "email:ana@example.org")
    }
    assert expected <= record["keys"]
    assert record["expires_at"] == int((ERASED_AT + IN_FLIGHT_BOUND).timestamp())


def test_an_erasure_between_the_graph_read_and_its_writes_is_not_written_back(
    rig: IdentityRig,
) -> None:
    """Fault drill: the erasure lands while a batch that read Ana's profile is committing.
    Its claim of a new device succeeds, its profile write finds the profile gone, the
    batch is handed back, and the redelivery drops the event and removes the claim."""
    handler.identity_step().clock = lambda: ERASED_AT + timedelta(minutes=1)
    rig.deliver_ok(rig.batch([identify(0, anon="d-ana", user="u-ana")]))
    landed: list[int] = []

    def erasure_lands(_request: dict[str, Any]) -> None:
        if not landed:
            landed.append(erase(rig, "user_id:u-ana"))

    rig.faults["PutItem"] = erasure_lands  # before the batch's first graph write
    racing = rig.batch([event(2, anon="d-phone", user="u-ana")])
    assert rig.deliver(racing) == sequences(racing)  # GraphConflict: handed back whole
    assert landed and rig.nodes() == {"anonymous_id:d-phone": only(set(rig.nodes().values()))}

    rig.deliver_ok(racing)

    assert rig.nodes() == {} and rig.live_profiles() == {}
    assert rig.resolved_events()[1:] == []
    assert erased_count(rig) == 1


def test_a_large_erasure_is_split_below_the_item_size_limit_and_read_in_one_query(
    rig: IdentityRig,
) -> None:
    store = IdentityStore(DynamoTable(rig.names.table("identity"), rig.raw_dynamodb))
    keys = [sha256(f"k{n}") for n in range(2 * KEYS_PER_ITEM + 500)]
    store.record_erasure(keys, ERASED_AT)
    records = [i for i in rig.items() if i["pk"] == "erasures"]
    assert [len(r["keys"]) for r in records] == [1000, 1000, 500]
    assert max(len(json.dumps(r, default=str)) for r in records) < 100_000  # of 400 KB
    recent = store.recent_erasures(ERASED_AT + timedelta(hours=1))
    assert set(recent.erased_at) == set(keys)
    # Older than the longest an event can be in flight: no longer read.
    assert not store.recent_erasures(ERASED_AT + IN_FLIGHT_BOUND + timedelta(seconds=1))
