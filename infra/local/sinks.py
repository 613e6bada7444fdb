"""Local receivers for webhook deliveries: the demo's destinations and the tests'.

Mounted by the local gateway under `/_sink/` (a `LocalPage`):

* `POST /_sink/<name>` — a Standard Webhooks receiver: verifies the signature
  with the secret registered for `<name>` (401 if it does not verify),
  deduplicates by `webhook-id`, records the delivery and answers 204.
* Simulated journey-platform APIs that check what the real ones document:
  `POST /_sink/braze/users/track` (Bearer REST key, ≤ 75 objects per array,
  one identifier per object), `POST /_sink/sfmc/v2/token` and
  `POST /_sink/sfmc/interaction/v1/events` (client credentials, then a Bearer
  token), `POST /_sink/iterable/api/events/track` (`Api-Key`, email or userId).
* `GET /_sink/<name>/received` — what arrived, as JSON; `DELETE /_sink/<name>`
  forgets it.
* `POST /_sink/<name>/act` with `{"segment", "event", "rates": {arm: p}, ...}` — the
  sink's customers convert after a segment's messages (`infra/local/journeys.py`);
  `GET /_sink/<name>/acted` lists who did.
* `POST /_sink/<name>/faults` with `[{"status": 500, "times": 3}, ...]` — the
  next requests to that sink fail as scripted (also `Sinks.script`). The
  Salesforce token endpoint has its own sink name, `sfmc-token`.

The last five are operator pages (`is_operator_request`): the local stack
serves them behind the admin key and a loopback Host (`infra/local/operator_access.py`).
"""

from __future__ import annotations

import binascii
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from functions.shared.destinations import (
    AnyDestination,
    BrazeDestination,
    IterableDestination,
    SalesforceJourneyBuilderDestination,
    WebhookDestination,
)
from infra.local.destinations import SINK_PREFIX, local_secret_value
from infra.local.journeys import Acting, Customers

PREFIX = SINK_PREFIX
SFMC_TOKEN_SINK = "sfmc-token"  # noqa: S105 - a sink's name, not a token
BRAZE_MAX_OBJECTS = 75
BRAZE_IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")
SFMC_TOKEN_LIFETIME_S = 1079  # what Marketing Cloud hands out (about 18 minutes)
_MASKED = frozenset({"authorization", "api-key"})

Response = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, applied to the next `times` requests of a sink.

    `status` None only waits `delay_s`, then answers normally (a slow endpoint).
    """

    status: int | None = 500
    times: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    body: bytes = b""


@dataclass(frozen=True)
class Received:
    sink: str
    path: str
    headers: dict[str, str]  # credentials masked
    body: Any  # the parsed JSON
    webhook_id: str | None = None
    at: float = 0.0


@dataclass
class _Scripted:
    fault: Fault
    left: int


@dataclass
class _Sink:
    received: list[Received] = field(default_factory=list)
    webhook_ids: set[str] = field(default_factory=set)
    faults: list[_Scripted] = field(default_factory=list)
    attempts: int = 0
    duplicates: int = 0


class Sinks:
    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._sinks: dict[str, _Sink] = {}
        self._webhook_secrets: dict[str, tuple[str, ...]] = {}
        self._braze_keys: set[str] = set()
        self._iterable_keys: set[str] = set()
        self._sfmc_clients: dict[str, str] = {}
        self._sfmc_tokens: dict[str, float] = {}  # token -> expiry (clock)
        self.customers = Customers()  # its `send` is set by the local stack

    # -- set-up ---------------------------------------------------------------------------------

    @classmethod
    def for_destinations(
        cls, destinations: Iterable[AnyDestination], environ: Mapping[str, str] | None = None
    ) -> Sinks:
        """Sinks that accept what the local stack sends for these destinations."""
        sinks = cls()
        for destination in destinations:
            secret = local_secret_value(destination, environ)
            if isinstance(destination, WebhookDestination):
                sinks.add_webhook(destination.name, secret)
            elif isinstance(destination, BrazeDestination):
                sinks.add_braze_key(secret)
            elif isinstance(destination, IterableDestination):
                sinks.add_iterable_key(secret)
            elif isinstance(destination, SalesforceJourneyBuilderDestination):
                sinks.add_salesforce_client(destination.client_id, secret)
        return sinks

    def add_webhook(self, name: str, secret: str) -> None:
        """`secret`: the signing secret's value; with several `whsec_`, any one verifies."""
        with self._lock:
            self._webhook_secrets[name] = tuple(secret.split())

    def add_braze_key(self, key: str) -> None:
        with self._lock:
            self._braze_keys.add(key)

    def add_iterable_key(self, key: str) -> None:
        with self._lock:
            self._iterable_keys.add(key)

    def add_salesforce_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._sfmc_clients[client_id] = client_secret

    def revoke_salesforce_tokens(self) -> None:
        """Make every issued token invalid, as a rotated client secret would."""
        with self._lock:
            self._sfmc_tokens.clear()

    def script(self, name: str, *faults: Fault) -> None:
        """Queue faults for the next requests to sink `name`, after any already queued."""
        with self._lock:
            self._sink(name).faults.extend(_Scripted(f, f.times) for f in faults if f.times > 0)

    # -- what arrived ---------------------------------------------------------------------------

    def received(self, name: str) -> list[Received]:
        with self._lock:
            return list(self._sink(name).received)

    def attempts(self, name: str) -> int:
        """Requests that reached the sink, faulted ones and duplicates included."""
        with self._lock:
            return self._sink(name).attempts

    def duplicates(self, name: str) -> int:
        with self._lock:
            return self._sink(name).duplicates

    def reset(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._sinks.clear()
            else:
                self._sinks.pop(name, None)

    # -- the page -------------------------------------------------------------------------------

    def page(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        name, rest = _route(path)
        if not name:
            return _json(404, {"message": "no sink named"})
        operation = _operator_operation(method, rest)
        if operation == "received":
            return _json(200, [asdict(r) for r in self.received(name)])
        if operation == "faults":
            return self._program(name, body)
        if operation == "act":
            try:
                self.customers.instruct(name, Acting.from_json(json.loads(body or b"null")))
            except ValueError as err:
                return _json(400, {"message": str(err)})
            return 204, {}, b""
        if operation == "acted":
            return _json(200, self.customers.decisions(name))
        if operation == "reset":
            self.reset(name)
            return 204, {}, b""
        handler = _PRESET_ROUTES.get((name, rest))
        if handler is not None:
            sink = SFMC_TOKEN_SINK if (name, rest) == ("sfmc", "v2/token") else name
            return self._serve(sink, method, path, headers, body, handler)
        if not rest:
            return self._serve(name, method, path, headers, body, Sinks._webhook)
        return _json(404, {"message": f"no sink route {f'{name}/{rest}'!r}"})

    def _serve(
        self,
        sink: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        handler: Callable[[Sinks, str, str, dict[str, str], bytes], Response],
    ) -> Response:
        if method != "POST":
            return _json(405, {"message": "POST only"})
        fault = self._next_fault(sink)
        if fault is not None:
            if fault.delay_s:
                self._sleep(fault.delay_s)  # outside the lock: other sinks keep answering
            if fault.status is not None:
                return fault.status, dict(fault.headers), fault.body
        return handler(self, sink, path, headers, body)

    def _next_fault(self, name: str) -> Fault | None:
        with self._lock:
            sink = self._sink(name)
            sink.attempts += 1
            if not sink.faults:
                return None
            scripted = sink.faults[0]
            scripted.left -= 1
            if scripted.left <= 0:
                sink.faults.pop(0)
            return scripted.fault

    def _program(self, name: str, body: bytes) -> Response:
        try:
            steps = json.loads(body or b"[]")
            faults = [
                Fault(
                    status=step.get("status", 500),
                    times=int(step.get("times", 1)),
                    headers={str(k): str(v) for k, v in step.get("headers", {}).items()},
                    delay_s=float(step.get("delay_s", 0)),
                    body=str(step.get("body", "")).encode(),
                )
                for step in steps
            ]
        except (ValueError, TypeError, AttributeError) as err:
            return _json(400, {"message": f"expected a list of faults: {err}"})
        self.script(name, *faults)
        return 204, {}, b""

    def _record(
        self, sink: str, path: str, headers: dict[str, str], data: Any, webhook_id: str | None
    ) -> bool:
        """Keep a delivery; False if its webhook-id was seen before."""
        masked = {k: "***" if k in _MASKED else v for k, v in headers.items()}
        with self._lock:
            state = self._sink(sink)
            if webhook_id is not None:
                if webhook_id in state.webhook_ids:
                    state.duplicates += 1
                    return False
                state.webhook_ids.add(webhook_id)
            state.received.append(Received(sink, path, masked, data, webhook_id, self._clock()))
            return True

    def _sink(self, name: str) -> _Sink:
        return self._sinks.setdefault(name, _Sink())

    # -- receivers ------------------------------------------------------------------------------

    def _webhook(self, sink: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            secrets = self._webhook_secrets.get(sink)
        if secrets is None:
            return _json(404, {"message": f"no webhook sink named {sink!r}"})
        if not any(_verifies(secret, body, headers) for secret in secrets):
            return _json(401, {"message": "invalid signature"})
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = body.decode("utf-8", "replace")  # signed, so kept, but not JSON
        if self._record(sink, path, headers, data, headers["webhook-id"]):
            self.customers.delivered(sink, data)
        return 204, {}, b""

    def _braze(self, sink: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            known = _bearer(headers) in self._braze_keys
        if not known:
            return _json(401, {"message": "Invalid API key"})
        data, problem = _json_object(headers, body)
        if problem is None:
            problem = _braze_problem(data)
        if problem is not None:
            return _json(400, {"message": problem})
        self._record(sink, path, headers, data, None)
        attributes, events = data.get("attributes", []), data.get("events", [])
        return _json(
            201,
            {
                "message": "success",
                "attributes_processed": len(attributes),
                "events_processed": len(events),
            },
        )

    def _sfmc_token(self, sink: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        data, problem = _json_object(headers, body)
        if problem is not None:
            return _json(400, {"error": "invalid_request", "error_description": problem})
        if data.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        client_id = data.get("client_id")
        with self._lock:
            expected = self._sfmc_clients.get(client_id) if isinstance(client_id, str) else None
        if expected is None or data.get("client_secret") != expected:
            return _json(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed."},
            )
        token = uuid.uuid4().hex
        with self._lock:
            self._sfmc_tokens[token] = self._clock() + SFMC_TOKEN_LIFETIME_S
        self._record(sink, path, headers, {"client_id": client_id}, None)
        return _json(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": SFMC_TOKEN_LIFETIME_S,
                "scope": "journeys_execute",
                "rest_instance_url": "http://127.0.0.1/_sink/sfmc/",
            },
        )

    def _sfmc_event(self, sink: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            expiry = self._sfmc_tokens.get(_bearer(headers) or "")
        if expiry is None or expiry <= self._clock():
            return _json(401, {"message": "Not Authorized", "errorcode": 0})
        data, problem = _json_object(headers, body)
        if problem is None:
            problem = _sfmc_problem(data)
        if problem is not None:
            return _json(400, {"message": problem, "errorcode": 10000})
        self._record(sink, path, headers, data, None)
        return _json(201, {"eventInstanceId": str(uuid.uuid4())})

    def _iterable(self, sink: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            known = headers.get("api-key") in self._iterable_keys
        if not known:
            return _json(401, {"msg": "Invalid API key", "code": "BadApiKey", "params": None})
        data, problem = _json_object(headers, body)
        if problem is None:
            problem = _iterable_problem(data)
        if problem is not None:
            return _json(400, {"msg": problem, "code": "BadParams", "params": None})
        self._record(sink, path, headers, data, None)
        event_id = data.get("id") or uuid.uuid4().hex
        return _json(
            200,
            {
                "msg": f"Event with id: {event_id} tracked.",
                "code": "Success",
                "params": {"id": event_id},
            },
        )


def is_operator_request(method: str, path: str) -> bool:
    """The pages an operator reads or resets the sinks with (admin key); the rest of
    `/_sink/` plays the journey platforms, with their own auth."""
    name, rest = _route(path)
    return bool(name) and _operator_operation(method, rest) is not None


def _route(path: str) -> tuple[str, str]:
    """`/_sink/<name>/<rest>` -> (name, rest); ("", "") when no sink is named."""
    route = urllib.parse.urlsplit(path).path.removeprefix(PREFIX).strip("/")
    name, _, rest = route.partition("/")
    return name, rest


def _operator_operation(method: str, rest: str) -> str | None:
    operations = {
        ("GET", "received"): "received",
        ("POST", "faults"): "faults",
        ("POST", "act"): "act",
        ("GET", "acted"): "acted",
        ("DELETE", ""): "reset",
    }
    return operations.get((method, rest))


_PRESET_ROUTES: dict[
    tuple[str, str], Callable[[Sinks, str, str, dict[str, str], bytes], Response]
] = {
    ("braze", "users/track"): Sinks._braze,
    ("sfmc", "v2/token"): Sinks._sfmc_token,
    ("sfmc", "interaction/v1/events"): Sinks._sfmc_event,
    ("iterable", "api/events/track"): Sinks._iterable,
}


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError):
        return False  # ValueError also covers a signature without "v1,"
    return True


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _json_object(headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], str | None]:
    if "application/json" not in headers.get("content-type", ""):
        return {}, "Content-Type must be application/json"
    try:
        data = json.loads(body)
    except ValueError:
        return {}, "the body is not JSON"
    if not isinstance(data, dict):
        return {}, "the body must be a JSON object"
    return data, None


def _braze_problem(data: dict[str, Any]) -> str | None:
    arrays = ("attributes", "events", "purchases")
    if not any(data.get(key) for key in arrays):
        return "at least one of attributes, events or purchases is required"
    for key in arrays:
        objects = data.get(key, [])
        if not isinstance(objects, list):
            return f"{key} must be an array"
        if len(objects) > BRAZE_MAX_OBJECTS:
            return f"{key}: at most {BRAZE_MAX_OBJECTS} objects per request"
        for i, item in enumerate(objects):
            if not isinstance(item, dict):
                return f"{key}[{i}] must be an object"
            identifiers = [k for k in BRAZE_IDENTIFIERS if k in item]
            if len(identifiers) != 1:
                return f"{key}[{i}] needs exactly one of {', '.join(BRAZE_IDENTIFIERS)}"
            if key == "events" and not (
                isinstance(item.get("name"), str) and isinstance(item.get("time"), str)
            ):
                return f"events[{i}] needs a name and an ISO 8601 time"
    return None


def _sfmc_problem(data: dict[str, Any]) -> str | None:
    for key in ("ContactKey", "EventDefinitionKey"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"{key} is required"
    if not isinstance(data.get("Data", {}), dict):
        return "Data must be an object"
    return None


def _iterable_problem(data: dict[str, Any]) -> str | None:
    if not (data.get("email") or data.get("userId")):
        return "email or userId is required"
    if not isinstance(data.get("eventName"), str) or not data["eventName"]:
        return "eventName is required"
    if not isinstance(data.get("dataFields", {}), dict):
        return "dataFields must be an object"
    if "createdAt" in data and not isinstance(data["createdAt"], int):
        return "createdAt must be a Unix timestamp in seconds"
    return None


def _json(status: int, payload: Any) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()
