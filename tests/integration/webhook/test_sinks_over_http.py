"""Real deliveries, over HTTP, to the local sinks mounted on the local gateway."""

from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from functions.shared.activations import Activation
from functions.shared.destinations import AnyDestination, Destination
from functions.webhook.delivery import Deliverer
from functions.webhook.outcomes import decide
from functions.webhook.presets import destination_accepts
from infra.local.destinations import for_local_stack, local_secret_value
from infra.local.gateway import Gateway
from infra.local.sinks import Fault, Sinks

DESTINATIONS: list[AnyDestination] = [
    TypeAdapter(Destination).validate_python(d)
    for d in (
        {
            "name": "crm-hook",
            "type": "webhook",
            "url": "https://hooks.example.com/beacon",
            "secret": {"secret_name": "beacon/destinations/crm-hook"},
            "mapping": {"event": "{{ type }}", "who": "{{ user_id }}", "score": "{{ score }}"},
        },
        {
            "name": "braze",
            "type": "braze",
            "url": "https://rest.iad-01.braze.com",
            "secret": {"secret_name": "beacon/destinations/braze"},
        },
        {
            "name": "sfmc",
            "type": "salesforce_journey_builder",
            "url": "https://mc1.rest.marketingcloudapis.com",
            "auth_url": "https://mc1.auth.marketingcloudapis.com",
            "client_id": "beacon",
            "event_definition_key": "APIEvent-beacon",
            "secret": {"secret_name": "beacon/destinations/sfmc"},
        },
        {"name": "iterable", "type": "iterable", "secret": {"secret_name": "beacon/it"}},
    )
]

ACTIVATION = Activation.model_validate(
    {
        "id": "act_http_1",
        "type": "score.crossed",
        "profile_id": "prof_9",
        "model": "churn",
        "threshold": "high",
        "score": 0.91,
        "at": "2026-03-01T12:00:00Z",
        "user_id": "u-9",
        "email": "grace@example.com",
        "consent": {"marketing": True},
    }
)


@pytest.fixture
def gateway() -> Iterator[tuple[str, Sinks]]:
    sinks = Sinks.for_destinations(DESTINATIONS, environ={})
    server = Gateway([], pages={"/_sink/": sinks.page})
    port = server.start("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}", sinks
    server.stop()


def deliver(base: str, destination: AnyDestination) -> Any:
    deliverer = Deliverer(allow_loopback_http=True)
    assert destination_accepts(destination, ACTIVATION) is None
    local = for_local_stack(destination, base)
    [result] = deliverer.deliver(local, [ACTIVATION], local_secret_value(destination, {}))
    return result


def test_every_destination_type_delivers_to_its_sink(gateway):
    base, sinks = gateway
    for destination in DESTINATIONS:
        result = deliver(base, destination)
        assert result.outcome.verdict == "delivered", (destination.name, result.outcome)
    [hook] = sinks.received("crm-hook")
    assert hook.webhook_id == "act_http_1"
    assert hook.body == {"event": "score.crossed", "who": "u-9", "score": 0.91}
    assert sinks.received("braze")[0].body["events"][0]["name"] == "score.crossed"
    assert sinks.received("sfmc")[0].body["ContactKey"] == "u-9"
    assert sinks.received("iterable")[0].body["id"] == "act_http_1"
    with urllib.request.urlopen(f"{base}/_sink/crm-hook/received") as answer:
        assert json.load(answer)[0]["webhook_id"] == "act_http_1"


def test_faults_drive_the_retry_decisions(gateway):
    base, sinks = gateway
    [hook] = [d for d in DESTINATIONS if d.name == "crm-hook"]
    sinks.script("crm-hook", Fault(status=500), Fault(status=429, headers={"Retry-After": "120"}))
    rng = random.Random(0)
    first = deliver(base, hook)
    assert decide(first.outcome, 1, hook.retry, rng).action == "retry"
    second = decide(deliver(base, hook).outcome, 2, hook.retry, rng)
    assert second.action == "retry" and second.delay_s is not None and second.delay_s >= 240
    assert deliver(base, hook).outcome.verdict == "delivered"
    # The receiver saw three attempts of one message and kept it once.
    assert sinks.attempts("crm-hook") == 3 and len(sinks.received("crm-hook")) == 1

    sinks.script("crm-hook", Fault(status=410))
    gone = deliver(base, hook)
    assert decide(gone.outcome, 1, hook.retry, rng).action == "disable"
