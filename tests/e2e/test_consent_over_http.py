"""Consent on the local stack: opt in, opt out, export, erase — over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from functions.consent.step import COUNTER
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable

from .conftest import RunningStack, basic_auth

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": "Bearer local-admin-key"}


def call(
    stack: RunningStack,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        stack.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def track(stack: RunningStack, anon: str, name: str, user: str | None = None, **extra) -> None:
    body = {"anonymousId": anon, "event": name, **extra}
    if user:
        body["userId"] = user
    status, _ = call(stack, "POST", "/v1/track", body, basic_auth("local-write-key"))
    assert status == 200


def consented(stack: RunningStack, marker: str) -> list[str]:
    records = stack.stream_records("beacon-consented")
    return [r.get("event") or r["type"] for r in records if marker in json.dumps(r)]


def consent_counts(stack: RunningStack) -> Counter:
    """Today's consent counters, read from the local stack's DynamoDB."""
    table = DynamoTable("beacon-counters", stack.client("dynamodb"))
    return DailyCounters(table).day_totals(COUNTER, datetime.now(UTC).date().isoformat())


def eventually(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_opt_in_flows_opt_out_stops(stack):
    anon = f"anon-{uuid.uuid4()}"
    track(stack, anon, "Before Any Decision")  # opt-in policy: dropped, counted
    status, _ = call(
        stack,
        "POST",
        "/v1/consent",
        {
            "anonymousId": anon,
            "source": "onetrust",
            "categoryPreferences": {"personalization": True, "analytics": True},
        },
        basic_auth("local-write-key"),
    )
    assert status == 200
    track(stack, anon, "After Opt In")
    assert eventually(lambda: "After Opt In" in consented(stack, anon))
    track(
        stack,
        anon,
        "Opt Out Banner",
        context={"consent": {"categoryPreferences": {"personalization": False}}},
    )
    track(stack, anon, "After Opt Out")
    track(
        stack,
        anon,
        "Marker End",
        context={"consent": {"categoryPreferences": {"personalization": True}}},
    )
    assert eventually(lambda: "Marker End" in consented(stack, anon))
    assert consented(stack, anon) == [
        "Segment Consent Preference Updated",
        "After Opt In",
        "Marker End",
    ]
    status, history = call(stack, "GET", f"/v1/profiles/anonymous_id:{anon}/consent", headers=ADMIN)
    assert status == 200
    changes = [
        h["changes"]["personalization"]
        for h in history["history"]
        if "personalization" in h["changes"]
    ]
    assert changes == [
        {"from": None, "to": True},
        {"from": True, "to": False},
        {"from": False, "to": True},
    ]


def test_decision_under_user_id_reaches_a_new_device(stack):
    user, laptop, phone = f"u-{uuid.uuid4()}", f"l-{uuid.uuid4()}", f"p-{uuid.uuid4()}"
    track(
        stack,
        laptop,
        "Login",
        user=user,
        context={"consent": {"categoryPreferences": {"personalization": True}}},
    )
    # Another anonymous id is another partition key, maybe another shard: send the
    # phone's events once the decision is recorded (ordering holds per key only).
    assert eventually(lambda: "Login" in consented(stack, laptop))
    track(stack, phone, "Login On Phone", user=user)  # links the phone to the user's decision
    track(stack, phone, "Phone Only")  # anonymous-only: still allowed
    assert eventually(lambda: "Phone Only" in consented(stack, phone))


def test_export_then_erase_then_suppressed(stack):
    user, anon = f"u-{uuid.uuid4()}", f"a-{uuid.uuid4()}"
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    track(
        stack,
        anon,
        "Signed Up",
        user=user,
        traits={"email": email},
        context={"consent": {"categoryPreferences": {"personalization": True}}},
    )
    assert eventually(lambda: "Signed Up" in consented(stack, user))
    # Erase once the whole pipeline has the person (identity too): events still in
    # flight past consent are the documented erasure window (docs/consent.md).
    assert eventually(
        lambda: "profile_id" in call(stack, "GET", f"/v1/profiles/user_id:{user}", headers=ADMIN)[1]
    )

    status, profile = call(stack, "GET", f"/v1/profiles/email:{email}", headers=ADMIN)
    assert status == 200 and profile["consent"]["personalization"]["granted"] is True
    status, export = call(stack, "GET", f"/v1/profiles/user_id:{user}/export", headers=ADMIN)
    assert status == 200
    assert len(export["consent"]["identifiers"]) == 3  # user id, anonymous id, email hash
    assert all(i["history"] for i in export["consent"]["identifiers"])

    assert call(stack, "GET", f"/v1/profiles/user_id:{user}", headers={})[0] == 401
    assert (
        call(
            stack,
            "DELETE",
            f"/v1/profiles/user_id:{user}",
            headers={"Authorization": "Bearer wrong"},
        )[0]
        == 401
    )
    status, erased = call(stack, "DELETE", f"/v1/profiles/user_id:{user}", headers=ADMIN)
    # user id, anonymous id, email and (from the identity graph) the email's SHA-256
    assert status == 200 and erased["identifiers_suppressed"] == 4
    assert erased["records_deleted"]["consent"] > 0
    # Idempotent: again deletes nothing more and still answers 200.
    status, again = call(stack, "DELETE", f"/v1/profiles/user_id:{user}", headers=ADMIN)
    assert status == 200 and again["records_deleted"]["consent"] >= 0

    for ref in (f"user_id:{user}", f"anonymous_id:{anon}", f"email:{email}"):
        assert call(stack, "GET", f"/v1/profiles/{ref}", headers=ADMIN)[0] == 404

    # New events from any of the person's identifiers are suppressed, even with a stale opt-in.
    erased_before = consent_counts(stack)["erased"]
    track(
        stack,
        anon,
        "After Erasure",
        context={"consent": {"categoryPreferences": {"personalization": True}}},
        timestamp="2020-01-01T00:00:00Z",
    )
    # Judged, and dropped as erased (the per-day counter says so), never forwarded.
    assert eventually(lambda: consent_counts(stack)["erased"] > erased_before)
    assert "After Erasure" not in consented(stack, anon)


def test_bad_profile_reference_is_400(stack):
    assert call(stack, "GET", "/v1/profiles/no-colon", headers=ADMIN)[0] == 400


def test_an_opt_out_after_a_future_dated_grant_stops_forwarding_and_delivery(stack):
    """Issue 13, finding 1: an identify dated 2999 granting all, an opt-out now, then an
    order dated 2999. The order used to reach the profile (and Braze got
    `segment.entered` seconds after the opt-out)."""
    user = f"u-{uuid.uuid4()}"
    far = "2999-01-01T00:00:00Z"
    everything = {"necessary": True, "analytics": True, "personalization": True}
    status, _ = call(
        stack,
        "POST",
        "/v1/identify",
        {
            "userId": user,
            "timestamp": far,
            "context": {"consent": {"categoryPreferences": everything}},
        },
        basic_auth("local-write-key"),
    )
    assert status == 200
    assert eventually(lambda: consented(stack, user))
    status, _ = call(
        stack,
        "POST",
        "/v1/consent",
        {"userId": user, "categoryPreferences": {"personalization": False}},
        basic_auth("local-write-key"),
    )
    assert status == 200

    def opted_out() -> bool:
        status, answer = call(stack, "GET", f"/v1/profiles/user_id:{user}/consent", headers=ADMIN)
        personalization = answer.get("consent", {}).get("personalization", {})
        return status == 200 and personalization.get("granted") is False

    # The order comes with another anonymous id, so on another shard: a decision still in
    # flight cannot stop an event processed before it lands. Wait for it to land.
    assert eventually(opted_out, timeout_s=60)
    denied_before = consent_counts(stack)["consent_denied"]
    track(
        stack,
        f"a-{uuid.uuid4()}",
        "Order Completed",
        user=user,
        timestamp=far,
        properties={"total": 900},
    )
    assert eventually(lambda: consent_counts(stack)["consent_denied"] > denied_before, 60)
    assert "Order Completed" not in consented(stack, user)
    status, history = call(stack, "GET", f"/v1/profiles/user_id:{user}/consent", headers=ADMIN)
    assert status == 200
    assert history["consent"]["personalization"]["granted"] is False
    # Nothing after the opt-out reached a destination.
    status, deliveries = call(
        stack, "GET", f"/v1/profiles/user_id:{user}/deliveries", headers=ADMIN
    )
    assert status in (200, 404)
    assert not [d for d in deliveries.get("deliveries", []) if "stage_purchase" in json.dumps(d)]
