"""Who receives an activation, and the HTTP request each destination type expects.

* generic `webhook`: the activation (or the destination's mapping of it) as
  JSON, signed per Standard Webhooks; one request per activation, `webhook-id`
  = the activation id, so a receiver deduplicates retries.
* Braze `POST {url}/users/track`, `Authorization: Bearer <REST API key>`: an
  event named after the activation type, and an attribute update (the segment
  added to or removed from an array attribute, or the model's score and
  threshold); users by `external_id` (user_id) or else `email`; at most 75
  events and 75 attribute objects per request, Braze's limit.
* Salesforce Marketing Cloud Journey Builder: a client-credentials token from
  `{auth_url}/v2/token` (cached until shortly before it expires), then
  `POST {url}/interaction/v1/events` with `ContactKey`, `EventDefinitionKey`
  and flat `Data`.
* Iterable `POST {url}/api/events/track`, `Api-Key` header; the activation id
  is the Iterable event id, so a retried event updates rather than duplicates.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from functions.shared.activations import SEGMENT_TYPES, Activation
from functions.shared.destinations import (
    AnyDestination,
    BrazeDestination,
    IterableDestination,
    SalesforceJourneyBuilderDestination,
    WebhookDestination,
    signing_secrets,
)
from functions.webhook.mapping import render
from functions.webhook.sender import PreparedRequest
from functions.webhook.signing import signature_headers

USER_AGENT = "Beacon-Webhooks/0.1 (+https://www.standardwebhooks.com)"
BRAZE_MAX_OBJECTS = 75  # per array (events, attributes) in one /users/track request
TOKEN_MARGIN_S = 60.0  # renew a Salesforce token this long before it expires
_ITERABLE_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,512}$")
_JSON = {"Content-Type": "application/json", "User-Agent": USER_AGENT}


def destination_accepts(destination: AnyDestination, activation: Activation) -> str | None:
    """None if the activation goes to the destination, else why not (for the delivery log)."""
    if not destination.enabled:
        return "disabled"
    if activation.held_out:
        return "held_out"
    if activation.type not in destination.activations:
        return f"kind_not_subscribed: {activation.type}"
    if (
        activation.type in SEGMENT_TYPES
        and destination.segments is not None
        and activation.segment_id not in destination.segments
    ):
        return f"segment_not_subscribed: {activation.segment_id}"
    if (
        activation.type == "score.crossed"
        and destination.models is not None
        and activation.model not in destination.models
    ):
        return f"model_not_subscribed: {activation.model}"
    consent = {category.lower(): given for category, given in activation.consent.items()}
    for category in destination.required_consent:
        if consent.get(category) is not True:
            return f"consent_missing: {category}"
    if isinstance(destination, BrazeDestination | IterableDestination) and not (
        activation.user_id or activation.email
    ):
        return f"no_identifier: {destination.type} needs user_id or email"
    if (
        isinstance(destination, SalesforceJourneyBuilderDestination)
        and _contact_key(destination, activation) is None
    ):
        return f"no_identifier: ContactKey needs {destination.contact_key}"
    return None


def activation_fields(activation: Activation) -> dict[str, Any]:
    """The activation's facts that every preset passes on, flat and without nulls."""
    fields: dict[str, Any] = {
        "activation_id": activation.id,
        "type": activation.type,
        "profile_id": activation.profile_id,
        "segment_id": activation.segment_id,
        "model": activation.model,
        "threshold": activation.threshold,
        "score": activation.score,
        "variant": activation.variant,
        "at": activation.at.isoformat(),
    }
    return {k: v for k, v in fields.items() if v is not None}


# -- generic webhook ---------------------------------------------------------------------------


def webhook_body(destination: WebhookDestination, activation: Activation) -> bytes:
    data = activation.payload()
    for extra in ("recommendations", "persona", "channels"):
        if destination.mapping is None and extra not in destination.include:
            data.pop(extra, None)  # only when asked: `include`, or a mapping naming them
    payload = data if destination.mapping is None else render(destination.mapping, data)
    return _json(payload)


def webhook_request(
    destination: WebhookDestination,
    activation: Activation,
    signing_secret: str,
    timestamp: int,
) -> PreparedRequest:
    """Signed with every `whsec_` secret in `signing_secret` (the secret's value)."""
    body = webhook_body(destination, activation)
    headers = {
        **_JSON,
        **signature_headers(activation.id, timestamp, body, signing_secrets(signing_secret)),
    }
    return PreparedRequest("POST", destination.url, headers, body, (activation.id,))


# -- Braze -------------------------------------------------------------------------------------


def braze_requests(
    destination: BrazeDestination, activations: Sequence[Activation], api_key: str
) -> list[PreparedRequest]:
    """One request per 75 activations (each adds one event and one attribute object)."""
    return [
        braze_request(destination, activations[i : i + BRAZE_MAX_OBJECTS], api_key)
        for i in range(0, len(activations), BRAZE_MAX_OBJECTS)
    ]


def braze_request(
    destination: BrazeDestination, activations: Sequence[Activation], api_key: str
) -> PreparedRequest:
    if not 1 <= len(activations) <= BRAZE_MAX_OBJECTS:
        raise ValueError(f"a Braze request carries 1 to {BRAZE_MAX_OBJECTS} activations")
    attributes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for activation in activations:
        user = _braze_user(activation)
        properties = activation_fields(activation)
        del properties["type"], properties["at"]  # they are the event's name and time
        events.append(
            {
                **user,
                "name": activation.type,
                "time": activation.at.isoformat(),
                "properties": properties,
            }
        )
        told: dict[str, Any] = {}
        if activation.recommendations is not None:
            told[destination.recommendations_attribute] = activation.recommendations
        if activation.persona is not None:
            told[destination.persona_attribute] = activation.persona
        # One attribute object per activation (Braze counts them against its 75).
        if activation.type in SEGMENT_TYPES:
            change = "add" if activation.type == "segment.entered" else "remove"
            attributes.append(
                {**user, destination.segments_attribute: {change: [activation.segment_id]}, **told}
            )
        else:
            attributes.append(
                {
                    **user,
                    f"beacon_{activation.model}_score": activation.score,
                    f"beacon_{activation.model}_threshold": activation.threshold,
                    **told,
                }
            )
    headers = {**_JSON, "Authorization": f"Bearer {api_key}"}
    body = _json({"attributes": attributes, "events": events})
    ids = tuple(a.id for a in activations)
    return PreparedRequest("POST", f"{destination.url}/users/track", headers, body, ids)


def _braze_user(activation: Activation) -> dict[str, str]:
    if activation.user_id:
        return {"external_id": activation.user_id}
    if activation.email:
        return {"email": activation.email}
    raise ValueError(f"activation {activation.id} has neither user_id nor email")


# -- Salesforce Marketing Cloud Journey Builder -------------------------------------------------


def salesforce_token_request(
    destination: SalesforceJourneyBuilderDestination, client_secret: str
) -> PreparedRequest:
    payload = {
        "grant_type": "client_credentials",
        "client_id": destination.client_id,
        "client_secret": client_secret,
    }
    if destination.account_id:
        payload["account_id"] = destination.account_id
    return PreparedRequest("POST", f"{destination.auth_url}/v2/token", dict(_JSON), _json(payload))


def parse_salesforce_token(body: bytes) -> tuple[str, float]:
    """(access token, seconds it lives) from the token endpoint's answer."""
    try:
        data = json.loads(body)
        token, expires_in = data["access_token"], float(data["expires_in"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError("the token answer has no access_token and expires_in") from err
    if not isinstance(token, str) or not token:
        raise ValueError("the token answer's access_token is empty")
    return token, expires_in


def salesforce_event_request(
    destination: SalesforceJourneyBuilderDestination, activation: Activation, access_token: str
) -> PreparedRequest:
    contact_key = _contact_key(destination, activation)
    if contact_key is None:
        raise ValueError(f"activation {activation.id} has no {destination.contact_key}")
    data = activation_fields(activation)
    if activation.email:
        data["email"] = activation.email
    payload = {
        "ContactKey": contact_key,
        "EventDefinitionKey": destination.event_definition_key,
        "Data": data,
    }
    headers = {**_JSON, "Authorization": f"Bearer {access_token}"}
    url = f"{destination.url}/interaction/v1/events"
    return PreparedRequest("POST", url, headers, _json(payload), (activation.id,))


def salesforce_token_key(destination: SalesforceJourneyBuilderDestination) -> str:
    return f"{destination.auth_url}|{destination.client_id}|{destination.account_id or ''}"


def _contact_key(
    destination: SalesforceJourneyBuilderDestination, activation: Activation
) -> str | None:
    value: str | None = getattr(activation, destination.contact_key)
    return value or None


class TokenCache:
    """Access tokens by key until `expires_in` minus a margin (clock injectable)."""

    def __init__(
        self, *, margin_s: float = TOKEN_MARGIN_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._margin_s = margin_s
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        found = self._tokens.get(key)
        if found is None:
            return None
        token, good_until = found
        if self._clock() >= good_until:
            del self._tokens[key]
            return None
        return token

    def put(self, key: str, token: str, expires_in_s: float) -> None:
        self._tokens[key] = (token, self._clock() + expires_in_s - self._margin_s)

    def invalidate(self, key: str) -> None:
        """Forget a token the API refused (revoked or expired early)."""
        self._tokens.pop(key, None)


# -- Iterable ----------------------------------------------------------------------------------


def iterable_request(
    destination: IterableDestination, activation: Activation, api_key: str
) -> PreparedRequest:
    payload: dict[str, Any] = {}
    if activation.email:
        payload["email"] = activation.email
    if activation.user_id:
        payload["userId"] = activation.user_id
    if not payload:
        raise ValueError(f"activation {activation.id} has neither user_id nor email")
    data_fields = activation_fields(activation)
    del data_fields["type"]  # it is the event name
    payload |= {
        "eventName": activation.type,
        "id": iterable_event_id(activation.id),
        "createdAt": int(activation.at.timestamp()),
        "dataFields": data_fields,
    }
    headers = {**_JSON, "Api-Key": api_key}
    url = f"{destination.url}/api/events/track"
    return PreparedRequest("POST", url, headers, _json(payload), (activation.id,))


def iterable_event_id(activation_id: str) -> str:
    """The activation id if Iterable accepts it as an event id, else a stable digest of it."""
    if _ITERABLE_EVENT_ID.match(activation_id):
        return activation_id
    return hashlib.sha256(activation_id.encode()).hexdigest()


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
