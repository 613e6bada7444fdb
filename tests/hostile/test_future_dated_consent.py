"""Finding 1: a future-dated consent grant outranked a later opt-out.

"Newest decision wins" went by the event's own timestamp, and a timestamp sent
without `sentAt` (Snowplow's `ttm`) was trusted as it was: a keyless pixel dated
2572 granting everything for a user id outlived that user's opt-out, which was
not even audited.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from functions.consent.decisions import CONSENT_DENIED, ConsentBook
from functions.shared.identifiers import Identifier
from tests.hostile.conftest import CONFIG, Ingest

SALT = b"salt"
# Ingest's documented tolerance for a clock ahead of the server is a minute.
TOLERANCE = timedelta(minutes=1)
GRANT_ALL = {
    "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
    "data": {
        "schema": "iglu:com.snowplowanalytics.snowplow/consent_preferences/jsonschema/1-0-0",
        "data": {
            "basisForProcessing": "consent",
            "consentUrl": "https://shop.example.com/privacy",
            "consentVersion": "1",
            "consentScopes": ["necessary", "analytics", "personalization", "advertising"],
            "domainsApplied": ["shop.example.com"],
            "eventType": "allow_all",
        },
    },
}


def judge(ingest: Ingest) -> tuple[ConsentBook, list[bool]]:
    book = ConsentBook({}, CONFIG.consent, SALT)
    return book, [book.apply(event).allowed for event in ingest.events()]


def user_key(user_id: str) -> str:
    return Identifier("user_id", user_id).hashed_key(SALT)


def test_a_keyless_pixel_dated_in_2572_does_not_outrank_a_later_opt_out(ingest: Ingest) -> None:
    ue_px = base64.urlsafe_b64encode(json.dumps(GRANT_ALL).encode()).decode()
    ingest.pixel(
        {"e": "ue", "aid": "anything", "uid": "U", "ttm": "19000000000000", "ue_px": ue_px}
    )
    ingest.consent(
        {"userId": "U", "categoryPreferences": dict.fromkeys(CONFIG.consent.categories, False)}
    )
    pixel_event = ingest.events()[0]
    assert pixel_event.timestamp <= pixel_event.received_at + TOLERANCE
    assert pixel_event.clamped_from is not None and pixel_event.clamped_from.year == 2572

    book, _ = judge(ingest)
    state = book.states[user_key("U")]
    assert state.latest("personalization") is not None
    assert state.latest("personalization").granted is False  # type: ignore[union-attr]
    opt_out = ingest.events()[1].message_id
    assert any(entry.message_id == opt_out for entry in book.audit if entry.key == user_key("U"))


def test_orders_dated_2999_after_an_opt_out_reach_no_profile(ingest: Ingest) -> None:
    """With the write key: an identify dated 2999 granting all, an opt-out now, then
    orders dated 2999. The orders were forwarded (and Braze told) after the opt-out."""
    far = "2999-01-01T00:00:00Z"
    grant = dict.fromkeys(CONFIG.consent.categories, True)
    ingest.segment(
        "identify",
        {"userId": "U", "timestamp": far, "context": {"consent": {"categoryPreferences": grant}}},
    )
    ingest.consent({"userId": "U", "categoryPreferences": {"personalization": False}})
    ingest.segment(
        "track",
        {"userId": "U", "event": "Order Completed", "timestamp": far, "properties": {"total": 9}},
    )
    book, allowed = judge(ingest)
    assert allowed == [True, True, False]  # the consent event itself always passes
    order = ingest.events()[2]
    assert book.apply(order).reason == CONSENT_DENIED
    assert order.timestamp - order.received_at <= timedelta(minutes=1)


def test_an_opt_out_with_a_slow_clock_still_outranks_a_grant_received_before_it(
    ingest: Ingest,
) -> None:
    """A withdrawal received after a grant wins even if its client clock says earlier."""
    ingest.consent({"userId": "U", "categoryPreferences": {"personalization": True}})
    ingest.segment(
        "identify",
        {
            "userId": "U",
            "timestamp": (ingest.now - timedelta(hours=2)).isoformat(),
            "context": {"consent": {"categoryPreferences": {"personalization": False}}},
        },
    )
    ingest.segment("track", {"userId": "U", "event": "Product Viewed"})
    _, allowed = judge(ingest)
    assert allowed == [True, False, False]


def test_a_keyless_grant_holds_for_its_device_but_never_for_the_user_id(ingest: Ingest) -> None:
    ue_px = base64.urlsafe_b64encode(json.dumps(GRANT_ALL).encode()).decode()
    ingest.pixel({"e": "ue", "aid": "shop-web", "duid": "D", "uid": "U", "ue_px": ue_px})
    ingest.segment("track", {"userId": "U", "event": "Order Completed"})  # the user id alone
    ingest.pixel({"e": "pv", "aid": "shop-web", "duid": "D", "url": "https://shop.example.com/"})
    book, allowed = judge(ingest)
    assert allowed == [True, False, True]
    assert book.states[user_key("U")].latest("personalization") is None
