"""Standard Webhooks signatures, checked with the standardwebhooks verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from functions.webhook.signing import generate_secret, sign, signature_headers
from tests.unit.webhook.factories import OLD_SECRET, SECRET

BODY = b'{"type":"segment.entered","profile_id":"prof_1","name":"Zo\xc3\xab"}'


def test_the_verifier_accepts_our_headers():
    headers = signature_headers("act_01", int(time.time()), BODY, [SECRET])
    assert Webhook(SECRET).verify(BODY, headers) == {
        "type": "segment.entered",
        "profile_id": "prof_1",
        "name": "Zoë",
    }


def test_signature_is_hmac_sha256_of_id_timestamp_body():
    signature = sign("act_01", 1_700_000_000, BODY, [SECRET])
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"act_01.1700000000." + BODY, hashlib.sha256).digest()
    assert signature == "v1," + base64.b64encode(digest).decode()


def test_headers_are_the_three_standard_ones():
    headers = signature_headers("act_01", 1_700_000_000, BODY, [SECRET])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "act_01"
    assert headers["webhook-timestamp"] == "1700000000"


def test_rotation_signs_with_every_secret_and_either_verifies():
    now = int(time.time())
    headers = signature_headers("act_01", now, BODY, [SECRET, OLD_SECRET])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    Webhook(SECRET).verify(BODY, headers)
    Webhook(OLD_SECRET).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b"prof_1", b"prof_2")),
        lambda h, b: ({**h, "webhook-id": "act_02"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
    ],
)
def test_any_change_breaks_the_signature(tamper):
    headers, body = tamper(signature_headers("act_01", int(time.time()), BODY, [SECRET]), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers)


def test_old_timestamps_are_refused_by_receivers():
    headers = signature_headers("act_01", int(time.time()) - 3600, BODY, [SECRET])
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(BODY, headers)


def test_generated_secrets():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    with pytest.raises(ValueError, match="24 to 64"):
        generate_secret(8)
    with pytest.raises(ValueError, match="at least one"):
        sign("a", 1, b"{}", [])
