"""Deliverer: build, send and classify, with a scripted transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from functions.webhook.delivery import Deliverer
from functions.webhook.presets import TokenCache
from functions.webhook.sender import HttpResult, PreparedRequest
from tests.unit.webhook.factories import SECRET, activation, braze, sfmc, webhook

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TOKEN = json.dumps({"access_token": "tok-1", "expires_in": 1080}).encode()


class ScriptedTransport:
    def __init__(self, answer: Callable[[PreparedRequest], HttpResult]) -> None:
        self.answer = answer
        self.calls: list[tuple[PreparedRequest, dict[str, Any]]] = []

    def __call__(self, request: PreparedRequest, **options: Any) -> HttpResult:
        self.calls.append((request, options))
        return self.answer(request)

    @property
    def urls(self) -> list[str]:
        return [request.url for request, _ in self.calls]


def deliverer(transport: ScriptedTransport, clock: list[float] | None = None) -> Deliverer:
    ticks = clock or [0.0]
    return Deliverer(
        transport=transport,
        now=lambda: NOW,
        tokens=TokenCache(clock=lambda: ticks[0]),
    )


def test_webhook_options_come_from_the_destination():
    transport = ScriptedTransport(lambda r: HttpResult(204))
    dest = webhook(timeout={"connect": 1, "total": 4}, allow_private_network=True)
    [result] = deliverer(transport).deliver(dest, [activation()], SECRET)
    assert result.outcome.verdict == "delivered"
    assert result.activation_ids == ("act_01",)
    request, options = transport.calls[0]
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert options == {
        "connect_timeout": 1,
        "total_timeout": 4,
        "allow_private_network": True,
        "allow_loopback_http": False,
        "resolver": None,
    }


def test_braze_batch_shares_one_result():
    transport = ScriptedTransport(lambda r: HttpResult(503, {"retry-after": "20"}))
    acts = [activation(id=f"a{i}") for i in range(80)]
    results = deliverer(transport).deliver(braze(), acts, "key")
    assert [len(r.activation_ids) for r in results] == [75, 5]
    assert all(r.outcome.verdict == "retry" and r.outcome.retry_after_s == 20 for r in results)


def test_salesforce_token_is_fetched_once_and_renewed_when_expired():
    clock = [0.0]

    def answer(request: PreparedRequest) -> HttpResult:
        return HttpResult(200, body=TOKEN) if request.url.endswith("/v2/token") else HttpResult(201)

    transport = ScriptedTransport(answer)
    sender = deliverer(transport, clock)
    results = sender.deliver(sfmc(), [activation(id="a"), activation(id="b")], "cs")
    assert [r.outcome.verdict for r in results] == ["delivered", "delivered"]
    assert [u.rsplit("/", 1)[-1] for u in transport.urls] == ["token", "events", "events"]
    assert transport.calls[1][0].headers["Authorization"] == "Bearer tok-1"
    clock[0] = 1080 - 60
    sender.deliver(sfmc(), [activation()], "cs")
    assert transport.urls[-2].endswith("/v2/token")


def test_salesforce_401_renews_the_token_once():
    answers = iter(
        [
            HttpResult(200, body=TOKEN),
            HttpResult(401),
            HttpResult(200, body=TOKEN.replace(b"tok-1", b"tok-2")),
            HttpResult(201),
        ]
    )
    transport = ScriptedTransport(lambda r: next(answers))
    [result] = deliverer(transport).deliver(sfmc(), [activation()], "cs")
    assert result.outcome.verdict == "delivered"
    assert transport.calls[3][0].headers["Authorization"] == "Bearer tok-2"


def test_salesforce_token_failures():
    transport = ScriptedTransport(lambda r: HttpResult(401, body=b'{"error":"invalid_client"}'))
    results = deliverer(transport).deliver(sfmc(), [activation(id="a"), activation(id="b")], "cs")
    [result] = results
    assert result.activation_ids == ("a", "b") and result.request is None
    assert result.outcome.verdict == "failed" and result.outcome.reason == "token: HTTP 401"
    assert len(transport.calls) == 1  # not once per activation

    down = ScriptedTransport(lambda r: HttpResult(None, error="timed out", error_kind="timeout"))
    [result] = deliverer(down).deliver(sfmc(), [activation()], "cs")
    assert result.outcome.verdict == "retry"

    garbled = ScriptedTransport(lambda r: HttpResult(200, body=b"<html>"))
    [result] = deliverer(garbled).deliver(sfmc(), [activation()], "cs")
    assert result.outcome.verdict == "retry" and "access_token" in result.outcome.reason


def test_nothing_to_deliver():
    transport = ScriptedTransport(lambda r: HttpResult(204))
    assert deliverer(transport).deliver(webhook(), [], SECRET) == []
    assert transport.calls == []
