"""The local sinks, called as the gateway calls them (no sockets)."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest

from functions.webhook.delivery import Deliverer
from functions.webhook.presets import TokenCache
from functions.webhook.sender import HttpResult, PreparedRequest
from functions.webhook.signing import signature_headers
from infra.local.destinations import for_local_stack, local_secret_value
from infra.local.sinks import Fault, Sinks, is_operator_request
from tests.unit.webhook.factories import (
    OLD_SECRET,
    SECRET,
    activation,
    braze,
    destination,
    iterable,
    score_activation,
    sfmc,
)

BODY = json.dumps({"id": "act_01", "type": "segment.entered"}).encode()
GATEWAY = "http://127.0.0.1:8080"


def signed(msg_id: str = "act_01", secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return {
        "content-type": "application/json",
        **signature_headers(msg_id, int(time.time()), body, [secret]),
    }


def webhook_sinks() -> Sinks:
    sinks = Sinks(sleep=lambda s: None)
    sinks.add_webhook("hooks", SECRET)
    return sinks


def test_a_good_signature_is_recorded():
    sinks = webhook_sinks()
    status, _, _ = sinks.page("POST", "/_sink/hooks", signed(), BODY)
    assert status == 204
    [received] = sinks.received("hooks")
    assert received.webhook_id == "act_01"
    assert received.body == {"id": "act_01", "type": "segment.entered"}


@pytest.mark.parametrize(
    "headers",
    [
        signed(secret=OLD_SECRET),
        signed(body=b'{"other":1}'),
        {"content-type": "application/json"},
        {**signed(), "webhook-signature": "garbage"},
        {**signed(), "webhook-timestamp": "1"},
    ],
)
def test_a_bad_signature_gets_401(headers):
    sinks = webhook_sinks()
    status, _, body = sinks.page("POST", "/_sink/hooks", headers, BODY)
    assert status == 401 and b"invalid signature" in body
    assert sinks.received("hooks") == []


def test_rotation_on_the_receiving_side():
    sinks = Sinks()
    sinks.add_webhook("hooks", f"{SECRET} {OLD_SECRET}")
    assert sinks.page("POST", "/_sink/hooks", signed("a"), BODY)[0] == 204
    assert sinks.page("POST", "/_sink/hooks", signed("b", OLD_SECRET), BODY)[0] == 204


def test_duplicates_by_webhook_id_are_answered_but_kept_once():
    sinks = webhook_sinks()
    for _ in range(3):
        assert sinks.page("POST", "/_sink/hooks", signed(), BODY)[0] == 204
    sinks.page("POST", "/_sink/hooks", signed("act_02"), BODY)
    assert [r.webhook_id for r in sinks.received("hooks")] == ["act_01", "act_02"]
    assert sinks.duplicates("hooks") == 2
    assert sinks.attempts("hooks") == 4


def test_fault_script():
    slept: list[float] = []
    sinks = Sinks(sleep=slept.append)
    sinks.add_webhook("hooks", SECRET)
    sinks.script(
        "hooks",
        Fault(status=500, times=3),
        Fault(status=429, headers={"Retry-After": "2"}),
        Fault(status=None, delay_s=1.5),  # slow but fine
        Fault(status=410),
    )
    answers = [sinks.page("POST", "/_sink/hooks", signed(f"m{i}"), BODY) for i in range(7)]
    assert [a[0] for a in answers] == [500, 500, 500, 429, 204, 410, 204]
    assert answers[3][1] == {"Retry-After": "2"}
    assert slept == [1.5]
    assert [r.webhook_id for r in sinks.received("hooks")] == ["m4", "m6"]


def test_faults_and_records_over_http_paths():
    sinks = webhook_sinks()
    script = json.dumps([{"status": 503, "times": 2, "headers": {"Retry-After": "1"}}]).encode()
    assert sinks.page("POST", "/_sink/hooks/faults", {}, script)[0] == 204
    assert sinks.page("POST", "/_sink/hooks", signed(), BODY)[0] == 503
    assert sinks.page("POST", "/_sink/hooks", signed(), BODY)[0] == 503
    assert sinks.page("POST", "/_sink/hooks", signed(), BODY)[0] == 204
    status, headers, body = sinks.page("GET", "/_sink/hooks/received?x=1", {}, b"")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert [r["webhook_id"] for r in json.loads(body)] == ["act_01"]
    assert sinks.page("DELETE", "/_sink/hooks", {}, b"")[0] == 204
    assert json.loads(sinks.page("GET", "/_sink/hooks/received", {}, b"")[2]) == []
    assert sinks.page("POST", "/_sink/hooks/faults", {}, b"{")[0] == 400
    assert sinks.page("POST", "/_sink/unknown", signed(), BODY)[0] == 404
    assert sinks.page("GET", "/_sink/hooks", {}, b"")[0] == 405


# -- simulated platform APIs ------------------------------------------------------------------


def _json_headers(**extra: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        **{k.replace("_", "-"): v for k, v in extra.items()},
    }


def test_braze_checks_key_and_shape():
    sinks = Sinks()
    sinks.add_braze_key("bk")
    good = json.dumps(
        {"events": [{"external_id": "u", "name": "e", "time": "2026-01-01T00:00:00Z"}]}
    )
    path = "/_sink/braze/users/track"
    assert (
        sinks.page("POST", path, _json_headers(authorization="Bearer nope"), good.encode())[0]
        == 401
    )
    status, _, body = sinks.page(
        "POST", path, _json_headers(authorization="Bearer bk"), good.encode()
    )
    assert status == 201 and json.loads(body)["events_processed"] == 1
    for bad, message in [
        ({}, "at least one of"),
        ({"events": [{"name": "e", "time": "t"}]}, "exactly one of"),
        (
            {"events": [{"external_id": "u", "email": "e@x", "name": "e", "time": "t"}]},
            "exactly one",
        ),
        ({"events": [{"external_id": "u"}]}, "name and an ISO 8601 time"),
        ({"attributes": [{"external_id": str(i)} for i in range(76)]}, "at most 75"),
    ]:
        status, _, body = sinks.page(
            "POST", path, _json_headers(authorization="Bearer bk"), json.dumps(bad).encode()
        )
        assert status == 400 and message in json.loads(body)["message"]


def test_salesforce_token_then_event():
    sinks = Sinks()
    sinks.add_salesforce_client("cid", "csecret")
    token_path, event_path = "/_sink/sfmc/v2/token", "/_sink/sfmc/interaction/v1/events"
    wrong = {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "x"}
    assert sinks.page("POST", token_path, _json_headers(), json.dumps(wrong).encode())[0] == 401
    right = {**wrong, "client_secret": "csecret"}
    status, _, body = sinks.page("POST", token_path, _json_headers(), json.dumps(right).encode())
    token = json.loads(body)
    assert status == 200 and token["expires_in"] == 1079 and token["token_type"] == "Bearer"
    event = {"ContactKey": "u", "EventDefinitionKey": "k", "Data": {"a": 1}}
    auth = _json_headers(authorization=f"Bearer {token['access_token']}")
    assert sinks.page("POST", event_path, auth, json.dumps(event).encode())[0] == 201
    assert sinks.page("POST", event_path, auth, b'{"ContactKey":"u"}')[0] == 400
    sinks.revoke_salesforce_tokens()
    assert sinks.page("POST", event_path, auth, json.dumps(event).encode())[0] == 401


def test_iterable_checks_key_and_shape():
    sinks = Sinks()
    sinks.add_iterable_key("ik")
    path = "/_sink/iterable/api/events/track"
    event = {"email": "a@example.com", "eventName": "e", "createdAt": 1, "id": "x1"}
    assert (
        sinks.page("POST", path, _json_headers(api_key="no"), json.dumps(event).encode())[0] == 401
    )
    status, _, body = sinks.page(
        "POST", path, _json_headers(api_key="ik"), json.dumps(event).encode()
    )
    assert status == 200 and json.loads(body)["params"] == {"id": "x1"}
    for bad in (
        {"eventName": "e"},
        {"email": "a@x", "eventName": ""},
        {**event, "createdAt": "now"},
    ):
        assert (
            sinks.page("POST", path, _json_headers(api_key="ik"), json.dumps(bad).encode())[0]
            == 400
        )
    assert sinks.page("POST", path, {"api-key": "ik"}, json.dumps(event).encode())[0] == 400


# -- the real request builders against the sinks --------------------------------------------------


class SinkTransport:
    """Hands requests for the local gateway straight to the sinks' page."""

    def __init__(self, sinks: Sinks) -> None:
        self.sinks = sinks
        self.sent: list[PreparedRequest] = []

    def __call__(self, request: PreparedRequest, **options: Any) -> HttpResult:
        assert options["allow_loopback_http"] is True
        self.sent.append(request)
        parts = urllib.parse.urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, out_headers, body = self.sinks.page(request.method, path, headers, request.body)
        return HttpResult(status, {k.lower(): v for k, v in out_headers.items()}, body)


def test_every_preset_is_accepted_by_its_sink():
    destinations = [
        destination(),
        braze(),
        iterable(),
        sfmc(),
    ]
    sinks = Sinks.for_destinations(destinations, environ={})
    deliverer = Deliverer(
        transport=SinkTransport(sinks), allow_loopback_http=True, tokens=TokenCache()
    )
    acts = [activation(), score_activation()]
    for configured in destinations:
        local = for_local_stack(configured, GATEWAY)
        results = deliverer.deliver(local, acts, local_secret_value(configured, {}))
        assert {r.outcome.verdict for r in results} == {"delivered"}, [r.outcome for r in results]
    assert [r.webhook_id for r in sinks.received("hooks")] == ["act_01", "act_02"]
    assert len(sinks.received("braze")) == 1  # both activations in one request
    assert [r.body["id"] for r in sinks.received("iterable")] == ["act_01", "act_02"]
    assert len(sinks.received("sfmc")) == 2
    assert len(sinks.received("sfmc-token")) == 1  # the token was reused
    assert sinks.received("braze")[0].headers["authorization"] == "***"


def test_the_operator_pages_are_the_read_and_admin_ones():
    operator = [
        ("GET", "/_sink/hooks/received"),
        ("DELETE", "/_sink/hooks"),
        ("POST", "/_sink/hooks/faults"),
    ]
    assert all(is_operator_request(method, path) for method, path in operator)
    receivers = [
        ("POST", "/_sink/hooks"),
        ("POST", "/_sink/braze/users/track"),
        ("POST", "/_sink/sfmc/v2/token"),
        ("GET", "/_sink/hooks"),
        ("GET", "/_sink/"),
    ]
    assert not any(is_operator_request(method, path) for method, path in receivers)
