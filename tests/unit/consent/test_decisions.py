"""Consent decisions: identifiers x stored decisions x policy -> allowed or dropped, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.consent.decisions import (
    CONSENT_DENIED,
    CONSENT_UNKNOWN,
    ERASED,
    ConsentBook,
    explicit_decision,
)
from functions.shared.config import Consent
from functions.shared.consent_records import CategoryDecision, ConsentState
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONSENT_DOCUMENT = "iglu:com.snowplowanalytics.snowplow/consent_document/jsonschema/1-0-0"
SALT = b"salt"
OPT_IN = Consent(default="opt-in", aliases={"C0004": "advertising"})
OPT_OUT = Consent(default="opt-out")


def event(minute: int = 0, *, user=None, anon="a1", name="Product Viewed", prefs=None, **extra):
    fields = {
        "messageId": extra.pop("message_id", f"m{minute}-{name}"),
        "type": "track",
        "event": name,
        "anonymousId": anon,
        "userId": user,
        "source": {"name": "web", "protocol": extra.pop("protocol", "segment")},
        "timestamp": T0 + timedelta(minutes=minute),
        "receivedAt": T0 + timedelta(minutes=minute),
        **extra,
    }
    if prefs is not None:
        fields.setdefault("context", {})["consent"] = {"categoryPreferences": prefs}
    return CanonicalEvent.model_validate(fields)


def key(text: str) -> str:
    return Identifier.parse(text).hashed_key(SALT)


def stored(text: str, minute: int, **categories: bool) -> ConsentState:
    return ConsentState(
        key(text),
        {
            c: [CategoryDecision(g, T0 + timedelta(minutes=minute), "test", f"s{minute}")]
            for c, g in categories.items()
        },
    )


def book(*states: ConsentState, policy: Consent = OPT_IN) -> ConsentBook:
    return ConsentBook({s.key: s for s in states}, policy, SALT)


# identifiers x stored decisions x policy -> verdict
CASES = [
    # (policy, stored states, event kwargs, allowed, reason)
    ("nothing known, opt-in drops", OPT_IN, [], {}, False, CONSENT_UNKNOWN),
    ("nothing known, opt-out allows", OPT_OUT, [], {}, True, None),
    ("granted on the anonymous id", OPT_IN, [("anonymous_id:a1", 0, True)], {}, True, None),
    (
        "denied on the anonymous id",
        OPT_OUT,
        [("anonymous_id:a1", 0, False)],
        {},
        False,
        CONSENT_DENIED,
    ),
    (
        "granted on the user id reaches a new device",
        OPT_IN,
        [("user_id:u1", 0, True)],
        {"user": "u1", "anon": "new-device"},
        True,
        None,
    ),
    (
        "newest wins: user id denied later",
        OPT_IN,
        [("anonymous_id:a1", 0, True), ("user_id:u1", 5, False)],
        {"user": "u1"},
        False,
        CONSENT_DENIED,
    ),
    (
        "newest wins: device granted later",
        OPT_IN,
        [("anonymous_id:a1", 9, True), ("user_id:u1", 5, False)],
        {"user": "u1"},
        True,
        None,
    ),
    (
        "the event's own preferences decide",
        OPT_IN,
        [("anonymous_id:a1", 0, False)],
        {"minute": 1, "prefs": {"Personalization": True}},
        True,
        None,
    ),
    (
        "an older event does not override a newer decision",
        OPT_IN,
        [("anonymous_id:a1", 9, False)],
        {"minute": 1, "prefs": {"personalization": True}},
        True,
        None,
    ),
    (
        "the email hash carries consent",
        OPT_IN,
        [("email:ana@example.org", 0, True)],
        {"anon": "x", "traits": {"email": " Ana@Example.org "}},
        True,
        None,
    ),
]


@pytest.mark.parametrize(
    ("label", "policy", "states", "kwargs", "allowed", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_decision_table(label, policy, states, kwargs, allowed, reason):
    the_book = book(*(stored(i, m, personalization=g) for i, m, g in states), policy=policy)
    verdict = the_book.apply(event(**{"minute": 10, **kwargs}))
    if "older event" in label:
        # A consent event is always forwarded, but it must not flip the newer decision.
        assert the_book.state(key("anonymous_id:a1")).latest("personalization").granted is False
        return
    assert (verdict.allowed, verdict.reason) == (allowed, reason)


def test_consent_events_always_pass_and_are_recorded_under_every_identifier():
    the_book = book()
    verdict = the_book.apply(
        event(
            user="u1",
            name="Segment Consent Preference Updated",
            prefs={"personalization": False, "advertising": False},
        )
    )
    assert verdict.allowed
    assert verdict.stamp.denied == ["advertising", "analytics", "necessary", "personalization"]
    for ident in ("anonymous_id:a1", "user_id:u1"):
        assert the_book.state(key(ident)).latest("personalization").granted is False
    assert {a.key for a in the_book.audit} == {key("anonymous_id:a1"), key("user_id:u1")}


def test_preferences_on_an_ordinary_event_apply_to_that_event():
    verdict = book().apply(event(prefs={"personalization": False}))
    assert (verdict.allowed, verdict.reason) == (False, CONSENT_DENIED)


def test_order_matters_within_a_batch():
    the_book = book()
    verdicts = [
        the_book.apply(event(0, prefs={"personalization": True})),
        the_book.apply(event(1)),
        the_book.apply(
            event(2, name="Segment Consent Preference Updated", prefs={"personalization": False})
        ),
        the_book.apply(event(3)),
    ]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[3].reason == CONSENT_DENIED


def test_a_decision_under_a_user_id_applies_to_later_anonymous_only_events():
    the_book = book(stored("user_id:u1", 0, personalization=True))
    the_book.apply(event(1, user="u1", anon="phone"))  # links the phone to the user
    assert the_book.apply(event(2, anon="phone")).allowed
    audit = [a for a in the_book.audit if a.key == key("anonymous_id:phone")]
    assert audit[0].source.startswith("propagated")
    assert audit[0].changes == {"personalization": {"from": None, "to": True}}


def test_events_are_judged_by_the_decision_in_force_at_their_time():
    """A replay or a late event gets the verdict it got (or would have got) in order."""
    the_book = book()
    withdraw = event(0, name="Segment Consent Preference Updated", prefs={"personalization": False})
    a = event(1, name="A")
    grant = event(2, name="Segment Consent Preference Updated", prefs={"personalization": True})
    b = event(3, name="B")
    first = [the_book.apply(e).allowed for e in (withdraw, a, grant, b)]
    assert first == [True, False, True, True]
    again = [the_book.apply(e).allowed for e in (withdraw, a, grant, b)]
    assert again == first
    assert the_book.apply(event(1, name="Late A")).allowed is False


def test_replay_is_stable_and_writes_nothing_new():
    first = book()
    events = [event(0, prefs={"personalization": True}), event(1), event(2, user="u1")]
    verdicts = [first.apply(e) for e in events]
    for state in first.states.values():
        state.changed = False
    again = ConsentBook(first.states, OPT_IN, SALT)
    assert [again.apply(e) for e in events] == verdicts
    assert not any(s.changed for s in again.states.values())
    assert again.audit == []


def test_erased_identifiers_are_suppressed_until_a_fresh_opt_in():
    erased = ConsentState(key("user_id:u1"), suppressed=True, erased_at=T0 + timedelta(minutes=5))
    the_book = book(erased, policy=OPT_OUT)
    assert the_book.apply(event(6, user="u1")).reason == ERASED
    # A stale opt-in (from before the erasure) does not lift it.
    assert the_book.apply(event(4, user="u1", prefs={"personalization": True})).reason == ERASED
    fresh = the_book.apply(
        event(
            7, user="u1", name="Segment Consent Preference Updated", prefs={"personalization": True}
        )
    )
    assert fresh.allowed
    assert the_book.apply(event(8, user="u1")).allowed


def test_aliases_and_case():
    assert explicit_decision(event(prefs={"C0004": True, "Analytics": False}), OPT_IN)[0] == {
        "advertising": True,
        "analytics": False,
    }


@pytest.mark.parametrize(
    ("name", "properties", "contexts", "expected"),
    [
        (
            "consent_preferences",
            {"eventType": "allow_all"},
            [],
            dict.fromkeys(OPT_IN.categories, True),
        ),
        (
            "consent_preferences",
            {"eventType": "deny_all"},
            [],
            dict.fromkeys(OPT_IN.categories, False),
        ),
        (
            "consent_preferences",
            {"eventType": "allow_selected", "consentScopes": ["analytics"]},
            [],
            {"necessary": False, "analytics": True, "personalization": False, "advertising": False},
        ),
        ("consent_withdrawn", {"all": True}, [], dict.fromkeys(OPT_IN.categories, False)),
        (
            "consent_granted",
            {"expiry": "2027-01-01"},
            [
                {
                    "schema": CONSENT_DOCUMENT,
                    "data": {"id": "doc-1", "name": "Personalization"},
                }
            ],
            {"personalization": True},
        ),
        (
            "consent_withdrawn",
            {"all": False},
            [
                {
                    "schema": CONSENT_DOCUMENT,
                    "data": {"id": "C0004"},
                }
            ],
            {"advertising": False},
        ),
    ],
)
def test_snowplow_consent_events(name, properties, contexts, expected):
    snowplow_event = event(
        name=name,
        properties=properties,
        protocol="snowplow",
        context={"snowplow": {"contexts": contexts}},
    )
    decided, source = explicit_decision(snowplow_event, OPT_IN)
    assert decided == expected
    assert source == f"snowplow:{name}"


def test_stamp_applies_defaults():
    verdict = book(policy=OPT_OUT).apply(event(prefs={"advertising": False}))
    assert "advertising" in verdict.stamp.denied
    assert "personalization" in verdict.stamp.granted  # opt-out default
