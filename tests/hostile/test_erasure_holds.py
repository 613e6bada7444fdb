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

import boto3
import pytest

from functions.api.consent_data import ConsentData
from functions.api.delivery_data import DeliveryData
from functions.api.identity_data import IdentityData
from functions.api.people import People
from functions.api.profile_data import ProfileData
from functions.consent.decisions import ERASED, ConsentBook
from functions.identity import handler as identity_handler
from functions.segments import handler as segments_handler
from functions.shared.config import Consent, load_config
from functions.shared.consent_records import ConsentState
from functions.shared.dal.consent_store import ConsentStore
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.deliveries_store import DeliveriesStore
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier
from infra.topology import ResourceNames
from tests.integration.aws_helpers import (
    REGION,
    create_bucket,
    create_stream,
    create_table,
    read_stream,
)
from tests.integration.conftest import aws_environment, mocked_aws  # noqa: F401 - fixtures
from tests.integration.identity_rig import IdentityRig
from tests.integration.identity_rig import event as identity_event
from tests.integration.segments_rig import SegmentsRig
from tests.integration.stream_rig import CONFIG, use_function_environment

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


# --- on moto: what was already past consent when the erasure ran ----------------------

NAMES = ResourceNames()
HOSTILE_SALT = "hostile-integration-salt"
EMAIL = "ana@example.org"


def people_on_moto(raw_dynamodb: Any) -> People:
    """The API's erasure, as `functions/api/handler.py` builds it, on moto's tables."""

    def table(logical: str) -> DynamoTable:
        return DynamoTable(NAMES.table(logical), raw_dynamodb)

    salt = HOSTILE_SALT.encode()
    return People(
        identity=IdentityData(IdentityStore(table("identity")), salt),
        consent=ConsentData(ConsentStore(table("consent"))),
        others=(
            ProfileData(ProfilesStore(table("profiles")), load_config(CONFIG).segments),
            DeliveryData(DeliveriesStore(table("deliveries"))),
        ),
        salt=salt,
    )


def counted(raw_dynamodb: Any, step: str) -> int:
    counters = DailyCounters(DynamoTable(NAMES.table("counters"), raw_dynamodb))
    return counters.day_totals(step, datetime.now(UTC).date().isoformat())["erased"]


@pytest.mark.usefixtures("mocked_aws")
def test_events_already_past_consent_do_not_bring_an_erased_person_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13, finding 7 (the erasure window): Ana browses; the erasure runs while some
    of her events are still between consent and identity, and some between identity and
    segments. Both steps drop them and count them as `erased`, nothing of her comes
    back, and a second erasure finds nothing to delete."""
    identity = IdentityRig.on_moto(NAMES)
    raw, kinesis = identity.raw_dynamodb, identity.kinesis
    for logical in ("identity", "counters", "profiles", "consent", "deliveries"):
        create_table(raw, NAMES, logical)
    for logical in ("consented", "resolved", "profile-changes"):
        create_stream(kinesis, NAMES, logical)
    create_bucket(identity.s3, NAMES, "failed-events")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=load_config(CONFIG).consent.identifier_salt_secret, SecretString=HOSTILE_SALT
    )
    browsing = [
        identity_event(0, kind="identify", anon="d-ana", user="u-ana", email=EMAIL),
        *(identity_event(minute, anon="d-ana", user="u-ana") for minute in range(1, 7)),
    ]
    use_function_environment(monkeypatch, "identity", NAMES)
    with identity.running(identity_handler.identity_step):
        identity.deliver_ok(identity.batch(browsing))
    [(shard, resolved)] = [
        (shard, records)
        for shard, records in read_stream(kinesis, NAMES.stream("resolved")).items()
        if records
    ]
    segments = SegmentsRig.on_moto(NAMES)
    use_function_environment(monkeypatch, "segments", NAMES)
    with segments.running(segments_handler.segments_step):
        segments.deliver_ok(segments.kinesis_event(resolved[:4], shard))  # the rest in flight

    people = people_on_moto(raw)
    first = people.erase(f"email:{EMAIL}")
    assert first["records_deleted"]["identity"] > 0 and first["records_deleted"]["profile"] == 1

    # Received before the erasure, judged by consent before its suppression: in flight.
    in_flight = [identity_event(minute, anon="d-ana", user="u-ana") for minute in (7, 8, 9)]
    use_function_environment(monkeypatch, "identity", NAMES)
    with identity.running(identity_handler.identity_step):
        mark = identity.mark()
        identity.deliver_ok(identity.batch(in_flight))
        assert identity.resolved_after(mark) == []
        assert identity.nodes() == {}
    use_function_environment(monkeypatch, "segments", NAMES)
    with segments.running(segments_handler.segments_step):
        segments.deliver_ok(segments.kinesis_event(resolved[4:], shard))

    assert counted(raw, "identity") == len(in_flight)
    assert counted(raw, "segments") == len(resolved) - 4
    [profile_id] = {r.profile_id for _, r in identity.resolved_events()}
    assert "state" not in segments.item(profile_id)  # an erasure marker, never recreated
    again = people.erase(f"email:{EMAIL}")
    assert again["records_deleted"] == {"consent": 0, "identity": 0, "profile": 0, "deliveries": 0}
