"""Issue 13, finding 7: an erasure is not undone by the same browser's next page view.

analytics.js (and most consent wrappers) stamp `context.consent.categoryPreferences`
on every event. After an erasure, the next track or identify carries the very stamp
it carried before: that is not a new decision, so it must not lift the suppression.
Only a consent change event (`Segment Consent Preference Updated`, which
`POST /v1/consent` produces; Snowplow's `consent_preferences` / `consent_granted`)
received and made after the erasure, granting what profiles need, does.

The erasure window is the second half of the finding: events already past the
consent step when the erasure ran must not recreate what it deleted. The identity
and segments steps drop them and count them as `erased` (on moto, below).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.consent.decisions import ERASED, ConsentBook
from functions.shared.config import Consent
from functions.shared.consent_records import ConsentState
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier

SALT = b"hostile-salt"
ERASED_AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STAMP = {"personalization": True, "analytics": True}  # what the browser held all along


def key(text: str) -> str:
    return Identifier.parse(text).hashed_key(SALT)


def after(seconds: float) -> datetime:
    return ERASED_AT + timedelta(seconds=seconds)


def event(
    name: str | None,
    *,
    at: datetime,
    received: datetime | None = None,
    kind: str = "track",
    prefs: dict[str, bool] | None = None,
    protocol: str = "segment",
    **fields: Any,
) -> CanonicalEvent:
    data: dict[str, Any] = {
        "messageId": f"m-{name}-{at.timestamp()}-{kind}",
        "type": kind,
        "anonymousId": "browser-1",
        "userId": "user-1",
        "source": {"name": "web", "protocol": protocol},
        "timestamp": at,
        "receivedAt": received or at,
        "context": {},
        **fields,
    }
    if name is not None:
        data["event"] = name
    if prefs is not None:
        data["context"]["consent"] = {"categoryPreferences": prefs}
    return CanonicalEvent.model_validate(data)


def erased_book(policy: Consent | None = None) -> ConsentBook:
    """The person's identifiers as an erasure leaves them: suppressed, nothing else."""
    states = {
        k: ConsentState(k, suppressed=True, erased_at=ERASED_AT)
        for k in (key("user_id:user-1"), key("anonymous_id:browser-1"))
    }
    return ConsentBook(states, policy or Consent(default="opt-in"), SALT)


def test_the_old_stamp_on_the_next_page_view_and_identify_does_not_lift_the_suppression() -> None:
    book = erased_book()
    page_view = event("Product Viewed", at=after(5), prefs=STAMP)
    identify = event(
        None, kind="identify", at=after(6), prefs=STAMP, traits={"email": "ana@example.org"}
    )
    assert book.apply(page_view).reason == ERASED
    assert book.apply(identify).reason == ERASED
    erased = (key("user_id:user-1"), key("anonymous_id:browser-1"))
    assert all(book.states[k].suppressed for k in erased)
    # The email the identify brought is not filed anywhere: nothing was recorded.
    assert not book.states[key("email:ana@example.org")].changed
    # Not under an opt-out policy either: the stamp is still not a decision.
    assert erased_book(Consent(default="opt-out")).apply(page_view).reason == ERASED


def test_a_preference_update_received_after_the_erasure_lifts_it() -> None:
    book = erased_book()
    update = event("Segment Consent Preference Updated", at=after(30), prefs=STAMP)
    assert book.apply(update).allowed
    assert not any(state.suppressed for state in book.states.values())
    assert book.apply(event("Product Viewed", at=after(31), prefs=STAMP)).allowed


def test_a_preference_update_dated_before_the_erasure_does_not_lift_it() -> None:
    # Sent late (a queued analytics.js call), or a client clock set back: made before.
    book = erased_book()
    stale = event(
        "Segment Consent Preference Updated", at=after(-60), received=after(30), prefs=STAMP
    )
    assert book.apply(stale).reason == ERASED
    assert all(state.suppressed for state in book.states.values())


def test_a_preference_update_received_before_the_erasure_does_not_lift_it() -> None:
    # Still in the stream when the erasure ran, with a client clock running ahead:
    # Beacon had not seen it, so it was not a decision made after the erasure.
    book = erased_book()
    early = event(
        "Segment Consent Preference Updated", at=after(3600), received=after(-1), prefs=STAMP
    )
    assert book.apply(early).reason == ERASED


def test_a_preference_update_that_withholds_what_profiles_need_does_not_lift_it() -> None:
    book = erased_book()
    partial = {"analytics": True, "personalization": False}
    update = event("Segment Consent Preference Updated", at=after(30), prefs=partial)
    assert book.apply(update).reason == ERASED


@pytest.mark.parametrize(
    ("name", "properties"),
    [("consent_preferences", {"eventType": "allow_all"})],
)
def test_a_snowplow_consent_event_after_the_erasure_lifts_it(
    name: str, properties: dict[str, Any]
) -> None:
    book = erased_book()
    granted = event(name, at=after(30), protocol="snowplow", properties=properties)
    assert book.apply(granted).allowed
