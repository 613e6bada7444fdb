"""Deterministic identity rules: priority, limits, blocked values, chains, merges, replays."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from functions.identity.graph import Graph, Profile, merge_id
from functions.identity.screening import IdentifierRules, normalize_phone
from functions.shared.config import Identity
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = Identity()


def ids(*texts: str, rules: Identity = RULES) -> list[Identifier]:
    found = [Identifier.parse(t) for t in texts]
    return sorted(found, key=lambda i: rules.rank(i.type))


def graph(rules: Identity = RULES) -> Graph:
    counter = itertools.count(1)
    return Graph({}, {}, rules, new_profile_id=lambda: f"p{next(counter)}")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_unknown_identifiers_make_one_new_profile():
    g = graph()
    r = g.resolve(ids("anonymous_id:a1", "user_id:u1"), at(0), "m1")
    assert r.profile_id == "p1"
    assert {str(i) for i in r.attached} == {"anonymous_id:a1", "user_id:u1"}
    assert g.profile_of(Identifier("anonymous_id", "a1")) == "p1"


def test_two_devices_then_login_on_both_is_one_profile():
    g = graph()
    laptop = g.resolve(ids("anonymous_id:laptop"), at(0), "m1").profile_id
    phone = g.resolve(ids("anonymous_id:phone"), at(1), "m2").profile_id
    assert laptop != phone
    g.resolve(ids("anonymous_id:laptop", "email:ana@shop.io"), at(2), "m3")
    r = g.resolve(ids("anonymous_id:phone", "email:ana@shop.io"), at(3), "m4")
    assert r.profile_id == laptop  # the oldest survives
    [merge] = r.merges
    assert (merge.loser, merge.rule) == (phone, "deterministic")
    assert merge.merge_id == merge_id(laptop, phone)
    assert g.profiles[phone].merged_into == laptop
    assert g.profile_of(Identifier("anonymous_id", "phone")) == laptop


def test_chain_a_b_c_is_one_profile():
    g = graph()
    g.resolve(ids("anonymous_id:a"), at(0), "m1")
    g.resolve(ids("anonymous_id:c"), at(1), "m2")
    g.resolve(ids("anonymous_id:a", "email:b@x.io"), at(2), "m3")
    r = g.resolve(ids("email:b@x.io", "anonymous_id:c"), at(3), "m4")
    assert (
        len({g.profile_of(i) for i in ids("anonymous_id:a", "email:b@x.io", "anonymous_id:c")}) == 1
    )
    assert r.profile_id == "p1"


def test_three_profiles_merge_in_one_event():
    g = graph()
    for n, ident in enumerate(("anonymous_id:a", "anonymous_id:b", "email:c@x.io")):
        g.resolve(ids(ident), at(n), f"m{n}")
    r = g.resolve(ids("anonymous_id:a", "anonymous_id:b", "email:c@x.io"), at(9), "m9")
    assert r.profile_id == "p1"
    assert sorted(m.loser for m in r.merges) == ["p2", "p3"]


def test_shared_laptop_does_not_fuse_two_customers():
    g = graph()
    ana = g.resolve(ids("anonymous_id:laptop", "user_id:ana"), at(0), "m1").profile_id
    r = g.resolve(ids("anonymous_id:laptop", "user_id:ben"), at(1), "m2")
    assert r.profile_id != ana
    assert r.merges == []
    assert r.dropped == [Identifier("anonymous_id", "laptop")]
    assert g.profile_of(Identifier("anonymous_id", "laptop")) == ana  # stays with Ana
    assert g.profile_of(Identifier("user_id", "ben")) == r.profile_id


def test_priority_decides_what_is_dropped_first():
    rules = Identity(priority=("user_id", "phone", "email"), limits={"user_id": 1, "email": 1})
    g = graph(rules)
    g.resolve(ids("email:x@shop.io", "user_id:u1", rules=rules), at(0), "m1")
    # u2 + a new phone + x@shop.io (held by u1's profile): the email ranks last, goes first.
    r = g.resolve(
        ids("user_id:u2", "phone:+14155550100", "email:x@shop.io", rules=rules), at(1), "m2"
    )
    assert r.dropped == [Identifier("email", "x@shop.io")]
    assert Identifier("email", "x@shop.io") in r.dropped
    assert g.profile_of(Identifier("phone", "+14155550100")) == r.profile_id


def test_per_type_limit_for_anything_else():
    g = graph(Identity(default_limit=2))
    g.resolve(ids("user_id:u", "anonymous_id:a1"), at(0), "m1")
    g.resolve(ids("user_id:u", "anonymous_id:a2"), at(1), "m2")
    r = g.resolve(ids("user_id:u", "anonymous_id:a3"), at(2), "m3")
    assert r.dropped == [Identifier("anonymous_id", "a3")]
    assert g.profiles[r.profile_id].identifiers["anonymous_id"] == ["a1", "a2"]


def test_replay_is_idempotent():
    g = graph()
    events = [
        (ids("anonymous_id:a"), "m1"),
        (ids("anonymous_id:b"), "m2"),
        (ids("anonymous_id:a", "anonymous_id:b", "user_id:u"), "m3"),
    ]
    first = [g.resolve(i, at(n), m) for n, (i, m) in enumerate(events)]
    for profile in g.profiles.values():
        profile.changed = False
    g.changed_nodes.clear()
    again = [g.resolve(i, at(n), m) for n, (i, m) in enumerate(events)]
    assert [r.profile_id for r in again] == [first[2].profile_id] * 3
    assert all(r.merges == [] for r in again)
    assert g.changed_nodes == set()
    assert not any(p.changed for p in g.profiles.values())


def test_unemitted_merges_can_be_sent_again_after_a_failed_forward():
    g = graph()
    g.resolve(ids("anonymous_id:a"), at(0), "m1")
    g.resolve(ids("anonymous_id:b"), at(1), "m2")
    r = g.resolve(ids("anonymous_id:a", "anonymous_id:b"), at(2), "m3")
    assert [m.merge_id for m in g.unemitted_merges(r.profile_id, "m3")] == [r.merges[0].merge_id]
    r.merges[0].emitted = True
    assert g.unemitted_merges(r.profile_id, "m3") == []


def test_redirects_are_followed():
    profiles = {
        "old": Profile("old", T0, {"anonymous_id": ["a"]}),
        "gone": Profile("gone", T0, {}, merged_into="old"),
    }
    g = Graph({Identifier("anonymous_id", "z"): "gone"}, profiles, RULES)
    assert g.profile_of(Identifier("anonymous_id", "z")) == "old"


def event(**fields) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "messageId": "m",
            "type": "identify",
            "anonymousId": "a1",
            "source": {"name": "web", "protocol": "segment"},
            "timestamp": T0,
            "receivedAt": T0,
            **fields,
        }
    )


@pytest.mark.parametrize(
    "value", ["null", "undefined", "anonymous", "00000000-0000-0000-0000-000000000000", "0", "NULL"]
)
def test_blocked_values_never_match(value):
    screened = IdentifierRules(RULES).of(event(anonymousId=value, userId="u1"))
    assert [str(i) for i in screened.usable] == ["user_id:u1"]
    assert Identifier("anonymous_id", value) in screened.blocked


def test_identifiers_of_an_event_normalized_and_ranked():
    screened = IdentifierRules(RULES).of(
        event(
            userId="u1",
            traits={"email": " Ana@Shop.IO ", "phone": "(415) 555-0100"},
            context={"device": {"id": "dev-1"}, "externalIds": [{"id": "C-9", "type": "crm_id"}]},
        )
    )
    kinds = [i.type for i in screened.usable]
    assert kinds[:3] == ["user_id", "email", "phone"]
    assert set(kinds) == {
        "user_id",
        "email",
        "phone",
        "anonymous_id",
        "email_sha256",
        "device_id",
        "crm_id",
    }
    assert Identifier("email", "ana@shop.io") in screened.usable
    assert Identifier("phone", "+14155550100") in screened.usable


def test_test_emails_are_blocked_with_their_hash():
    screened = IdentifierRules(RULES).of(event(traits={"email": "test@test.com"}))
    assert {i.type for i in screened.usable} == {"anonymous_id"}


def test_phone_normalization():
    assert normalize_phone("+44 20 7946 0958", "US") == "+442079460958"
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalize_phone("12", "US") is None
    assert normalize_phone("not a phone", "US") is None
