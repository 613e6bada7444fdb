"""How the local stack reaches the configured destinations: its own sinks.

Deployed, the webhook function sends to each destination's `url` over https,
with the secret Secrets Manager holds under `secret.secret_name`. Locally:

* `local_secret_value` is what the local stack stores under that name (and what
  its sinks check signatures and keys with): `local_secret`, the environment
  variable it names, or a fixed value derived from the destination's name;
* `for_local_stack` points a destination at `local_url`, else at the local
  gateway's sink for it (`/_sink/...`, `infra/local/sinks.py`);
* `send_to_sinks` puts both into this process's webhook function: the local
  runtime calls it once its gateway is up. The deployed handler has no local
  switch; it is handed this routing instead of its default one.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from functions.shared.destinations import (
    WHSEC_PREFIX,
    AnyDestination,
    SalesforceJourneyBuilderDestination,
)
from functions.webhook import handler as webhook_handler
from functions.webhook.handler import Routing

SINK_PREFIX = "/_sink/"


def local_secret_value(
    destination: AnyDestination, environ: Mapping[str, str] | None = None
) -> str:
    """What the local stack stores under `destination.secret.secret_name`.

    `local_secret` itself, the environment variable it names as `${VAR}`, or a
    fixed value derived from the name, so the local sinks and the local stack
    agree without any configuration.
    """
    environ = os.environ if environ is None else environ
    ref = destination.secret
    env_var = ref.local_env_var
    if env_var is not None:
        if env_var not in environ:
            raise KeyError(f"destination {destination.name}: ${{{env_var}}} is not set")
        return environ[env_var]
    if ref.local_secret is not None:
        return ref.local_secret
    seed = hashlib.sha256(f"beacon-local-destination:{destination.name}".encode()).digest()
    if destination.type == "webhook":
        return WHSEC_PREFIX + base64.b64encode(seed[:24]).decode("ascii")
    return f"local-{destination.name}-{seed[:8].hex()}"


LOCAL_SINK_PATHS = {
    "braze": f"{SINK_PREFIX}braze",
    "salesforce_journey_builder": f"{SINK_PREFIX}sfmc",
    "iterable": f"{SINK_PREFIX}iterable",
}


def for_local_stack(destination: AnyDestination, gateway_url: str) -> AnyDestination:
    """The destination as the local stack sends to it.

    `local_url` if set, else the built-in sink under `gateway_url`
    (e.g. http://127.0.0.1:8080): `/_sink/<name>` for a webhook, the type's
    simulated API otherwise. A Salesforce destination takes its token from the
    same base.
    """
    gateway = gateway_url.rstrip("/")
    default = gateway + LOCAL_SINK_PATHS.get(destination.type, f"{SINK_PREFIX}{destination.name}")
    url = destination.local_url or default
    update: dict[str, Any] = {"url": url}
    if isinstance(destination, SalesforceJourneyBuilderDestination):
        update["auth_url"] = url
    return destination.model_copy(update=update)


def sink_routing(gateway_url: str) -> Routing:
    """Every destination to its sink under `gateway_url`, plain http on loopback allowed."""
    return Routing(
        route=partial(for_local_stack, gateway_url=gateway_url), allow_loopback_http=True
    )


def send_to_sinks(gateway_url: str) -> Callable[[], None]:
    """Route this process's webhook function to the sinks under `gateway_url`; returns
    what puts the deployed routing back."""
    previous = webhook_handler.routing
    webhook_handler.routing = sink_routing(gateway_url)
    webhook_handler.webhook_step.cache_clear()

    def restore() -> None:
        webhook_handler.routing = previous
        webhook_handler.webhook_step.cache_clear()

    return restore
