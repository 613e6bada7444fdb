"""Activations and destinations for the webhook tests."""

from __future__ import annotations

import base64
import socket
from typing import Any

from pydantic import TypeAdapter

from functions.shared.activations import Activation
from functions.shared.destinations import (
    AnyDestination,
    BrazeDestination,
    Destination,
    IterableDestination,
    SalesforceJourneyBuilderDestination,
    WebhookDestination,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
_DESTINATION: TypeAdapter[AnyDestination] = TypeAdapter(Destination)


def activation(**overrides: Any) -> Activation:
    data: dict[str, Any] = {
        "id": "act_01",
        "type": "segment.entered",
        "profile_id": "prof_1",
        "segment_id": "vip",
        "at": "2026-03-01T12:00:00+00:00",
        "held_out": False,
        "user_id": "u-42",
        "email": "ada@example.com",
        "traits": {"first_name": "Ada", "tags": ["a", "b"]},
        "consent": {"marketing": True},
    }
    data.update(overrides)
    return Activation.model_validate(data)


def score_activation(**overrides: Any) -> Activation:
    base: dict[str, Any] = {
        "id": "act_02",
        "type": "score.crossed",
        "segment_id": None,
        "model": "churn",
        "threshold": "high",
        "score": 0.81,
    }
    return activation(**{**base, **overrides})


def destination(**fields: Any) -> AnyDestination:
    kind = fields.get("type", "webhook")
    defaults: dict[str, Any] = {
        "webhook": {"name": "hooks", "url": "https://hooks.example.com/beacon"},
        "braze": {"name": "braze", "url": "https://rest.iad-01.braze.com"},
        "iterable": {"name": "iterable"},
        "salesforce_journey_builder": {
            "name": "sfmc",
            "url": "https://mc123.rest.marketingcloudapis.com",
            "auth_url": "https://mc123.auth.marketingcloudapis.com",
            "client_id": "client-1",
            "event_definition_key": "APIEvent-beacon",
        },
    }.get(kind, {"name": "other", "url": "https://other.example.com"})
    secret = {"secret_name": f"beacon/destinations/{defaults['name']}"}
    if kind == "webhook":
        secret["local_secret"] = SECRET
    data = {"type": kind, "secret": secret, **defaults, **fields}
    return _DESTINATION.validate_python(data)


def resolver_to(*addresses: str) -> Any:
    """A fake getaddrinfo answering every name with these addresses."""

    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    return resolve


def webhook(**fields: Any) -> WebhookDestination:
    made = destination(type="webhook", **fields)
    assert isinstance(made, WebhookDestination)
    return made


def braze(**fields: Any) -> BrazeDestination:
    made = destination(type="braze", **fields)
    assert isinstance(made, BrazeDestination)
    return made


def sfmc(**fields: Any) -> SalesforceJourneyBuilderDestination:
    made = destination(type="salesforce_journey_builder", **fields)
    assert isinstance(made, SalesforceJourneyBuilderDestination)
    return made


def iterable(**fields: Any) -> IterableDestination:
    made = destination(type="iterable", **fields)
    assert isinstance(made, IterableDestination)
    return made
