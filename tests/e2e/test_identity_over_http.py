"""Identity on the local stack: two devices, one shopper, one profile — over real HTTP."""

from __future__ import annotations

import json
import uuid

import pytest

from .conftest import RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually

pytestmark = pytest.mark.e2e
GRANTED = {"consent": {"categoryPreferences": {"personalization": True, "analytics": True}}}


def send(stack: RunningStack, path: str, body: dict) -> None:
    status, answer = call(
        stack, "POST", path, {**body, "context": GRANTED}, basic_auth("local-write-key")
    )
    assert status == 200, answer


def test_two_devices_then_the_same_email_on_both_is_one_profile(stack):
    laptop, phone = f"laptop-{uuid.uuid4()}", f"phone-{uuid.uuid4()}"
    email = f"shopper-{uuid.uuid4().hex[:8]}@example.org"
    send(stack, "/v1/page", {"anonymousId": laptop, "name": "Home"})
    send(stack, "/v1/track", {"anonymousId": laptop, "event": "Product Viewed"})
    send(stack, "/v1/screen", {"anonymousId": phone, "name": "Home"})
    send(stack, "/v1/identify", {"anonymousId": laptop, "traits": {"email": email}})
    send(stack, "/v1/identify", {"anonymousId": phone, "traits": {"email": f"  {email.upper()} "}})

    def one_profile():
        status, profile = call(stack, "GET", f"/v1/profiles/email:{email}", headers=ADMIN)
        if status != 200 or len(profile.get("identifiers", {}).get("anonymous_id", [])) < 2:
            return None
        return profile

    profile = eventually(one_profile, timeout_s=30)
    assert profile, "the two devices were not merged into one profile"
    assert sorted(profile["identifiers"]["anonymous_id"]) == sorted([laptop, phone])
    assert profile["identifiers"]["email"] == [email]
    assert len(profile["merged_from"]) == 1
    # Either device's id finds the same profile.
    for ref in (f"anonymous_id:{laptop}", f"anonymous_id:{phone}"):
        status, same = call(stack, "GET", f"/v1/profiles/{ref}", headers=ADMIN)
        assert status == 200 and same["profile_id"] == profile["profile_id"]
    # The merge travelled the stream, keyed by the survivor, before the event that caused it.
    records = stack.stream_records("beacon-resolved")
    merges = [
        r
        for r in records
        if r.get("kind") == "profile.merged" and r["survivor"] == profile["profile_id"]
    ]
    assert [m["loser"] for m in merges] == profile["merged_from"]
    assert all(
        r["key"] == r.get("profileId", r.get("survivor"))
        for r in records
        if phone in json.dumps(r) or laptop in json.dumps(r)
    )


def test_erasure_reaches_every_identifier_of_the_profile(stack):
    laptop, user = f"laptop-{uuid.uuid4()}", f"user-{uuid.uuid4()}"
    email = f"erase-{uuid.uuid4().hex[:8]}@example.org"
    send(stack, "/v1/identify", {"anonymousId": laptop, "userId": user, "traits": {"email": email}})
    # Consent knows the person at once; wait until identity has resolved them too.
    assert eventually(
        lambda: "profile_id" in call(stack, "GET", f"/v1/profiles/email:{email}", headers=ADMIN)[1],
        timeout_s=30,
    )
    status, export = call(stack, "GET", f"/v1/profiles/email:{email}/export", headers=ADMIN)
    assert status == 200 and export["identity"]["profiles"]
    status, erased = call(stack, "DELETE", f"/v1/profiles/email:{email}", headers=ADMIN)
    assert status == 200 and erased["records_deleted"]["identity"] > 0
    for ref in (f"anonymous_id:{laptop}", f"user_id:{user}", f"email:{email}"):
        assert call(stack, "GET", f"/v1/profiles/{ref}", headers=ADMIN)[0] == 404
