"""The `destinations:` section of beacon.yaml: where activations are pushed.

Four types, told apart by `type`: a generic `webhook` (Standard Webhooks
signed, payload mapping), and presets for `braze`, `salesforce_journey_builder`
and `iterable`. Every destination names one credential, `secret`: a Secrets
Manager name that the deployed function reads, plus the value the local stack
stores under that same name (`local_secret`), so one file serves both, as
`write_key_secret`/`local_write_key` do for sources. What the local stack does
with `local_secret` and `local_url` is in `infra/local/destinations.py`.

Only the standard library and pydantic here: every function's cold start
validates the whole file, and `functions/shared` is in every bundle.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from functions.shared.activations import ACTIVATION_TYPES, Activation, ActivationType
from functions.shared.schema import Name, SecretName, Strict

_ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
# `{{ traits.first_name }}`: a dotted path into the activation (digits index lists).
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[\w-]+)*)\s*\}\}")
WHSEC_PREFIX = "whsec_"

# Standard Webhooks' (Svix's) schedule after the first attempt: 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h, about a day and a half in all.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
# SQS cannot hide a message for longer (ChangeMessageVisibility), so no delay may.
MAX_RETRY_DELAY_S = 12 * 3600


class SecretRef(Strict):
    """A credential: its Secrets Manager name, and its value on the local stack."""

    secret_name: SecretName = Field(description="Secrets Manager name the deployed function reads")
    local_secret: str | None = Field(
        default=None,
        description=(
            "the value the local stack stores under secret_name, or `${ENV_VAR}` to take it "
            "from the environment; unset: a fixed local value derived from the destination name"
        ),
    )

    @property
    def local_env_var(self) -> str | None:
        found = _ENV_REFERENCE.match(self.local_secret or "")
        return found.group(1) if found else None


class Timeout(Strict):
    connect: float = Field(default=3.0, gt=0, le=30, description="seconds to open the connection")
    total: float = Field(default=10.0, gt=0, le=60, description="seconds for the whole request")

    @model_validator(mode="after")
    def _order(self) -> Timeout:
        if self.connect > self.total:
            raise ValueError("connect must not exceed total")
        return self


class _Destination(Strict):
    # Presets append their documented path to `url`; a webhook's is used as is.
    QUERY_ALLOWED: ClassVar[bool] = False

    name: Name = Field(description="lower-case identifier, e.g. `braze-eu`")
    url: str = Field(description="https base URL; presets append their documented path")
    secret: SecretRef
    activations: tuple[ActivationType, ...] = Field(
        default=ACTIVATION_TYPES, min_length=1, description="activation types it receives"
    )
    segments: tuple[str, ...] | None = Field(
        default=None, description="segment ids it receives (segment types); unset: all"
    )
    models: tuple[str, ...] | None = Field(
        default=None, description="model names it receives (score.crossed); unset: all"
    )
    required_consent: tuple[str, ...] = Field(
        default=("marketing",),
        description="consent categories that must be true in the activation",
    )
    rate_limit_per_s: float | None = Field(default=None, gt=0)
    enabled: bool = True
    timeout: Timeout = Field(default_factory=Timeout)
    retry: tuple[float, ...] = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        max_length=20,
        description="seconds to wait before each retry; after the last, the dead-letter queue",
    )
    allow_private_network: bool = Field(
        default=False,
        description="allow private (RFC 1918, 100.64/10, fc00::/7) and link-local addresses",
    )
    local_url: str | None = Field(
        default=None,
        description="base URL the local stack uses instead of url; unset: the built-in sink",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _base_url(value, https_only=True, query_allowed=cls.QUERY_ALLOWED)

    @field_validator("local_url")
    @classmethod
    def _local_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _base_url(value, https_only=False, query_allowed=cls.QUERY_ALLOWED)

    @field_validator("required_consent")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)

    @field_validator("retry")
    @classmethod
    def _delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < d <= MAX_RETRY_DELAY_S for d in value):
            raise ValueError(f"each delay must be more than 0 and at most {MAX_RETRY_DELAY_S} s")
        return value


class WebhookDestination(_Destination):
    """Any HTTPS endpoint; the body is signed per Standard Webhooks."""

    QUERY_ALLOWED = True

    type: Literal["webhook"]
    url: str = Field(description="the https endpoint, used as is (a query string is allowed)")
    secret: SecretRef = Field(
        description="the signing secret(s): `whsec_...`, several space-separated while rotating"
    )
    mapping: dict[str, Any] | None = Field(
        default=None,
        description="body template; strings may hold `{{ path.in.activation }}`; unset: the "
        "activation itself",
    )
    include: tuple[Literal["recommendations", "persona", "channels"], ...] = Field(
        default=(),
        description="also send the person's recommended item ids, persona and channel "
        "influence (unmapped body)",
    )

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            fields = set(Activation.model_fields)
            for path in template_paths(value):
                if path.split(".", 1)[0] not in fields:
                    raise ValueError(
                        f"{{{{ {path} }}}}: unknown activation field {path.split('.', 1)[0]!r}"
                    )
        return value

    @model_validator(mode="after")
    def _local_signing_secret(self) -> WebhookDestination:
        if self.secret.local_secret is not None and self.secret.local_env_var is None:
            signing_secrets(self.secret.local_secret)  # raises ValueError naming the problem
        return self


class BrazeDestination(_Destination):
    """Braze `POST /users/track`; `url` is the instance's REST endpoint."""

    type: Literal["braze"]
    secret: SecretRef = Field(description="a REST API key with users.track permission")
    segments_attribute: str = Field(
        default="beacon_segments",
        min_length=1,
        description="array custom attribute that segment.entered adds to and exited removes from",
    )
    recommendations_attribute: str = Field(
        default="beacon_recommendations",
        min_length=1,
        description="array custom attribute set to the person's recommended item ids",
    )
    persona_attribute: str = Field(
        default="beacon_persona", min_length=1, description="custom attribute: the persona"
    )


class SalesforceJourneyBuilderDestination(_Destination):
    """Marketing Cloud Journey Builder entry events (`POST /interaction/v1/events`)."""

    type: Literal["salesforce_journey_builder"]
    url: str = Field(description="REST base URI, https://<subdomain>.rest.marketingcloudapis.com")
    auth_url: str = Field(
        description="auth base URI, https://<subdomain>.auth.marketingcloudapis.com"
    )
    client_id: str = Field(min_length=1, description="the installed package's client id")
    secret: SecretRef = Field(description="the installed package's client secret")
    account_id: str | None = Field(default=None, description="business unit MID (optional)")
    event_definition_key: str = Field(min_length=1, description="the entry event's key")
    contact_key: Literal["user_id", "email", "profile_id"] = Field(
        default="user_id", description="which identifier is the Marketing Cloud ContactKey"
    )

    @field_validator("auth_url")
    @classmethod
    def _auth_url(cls, value: str) -> str:
        return _base_url(value, https_only=True, query_allowed=False)

    @field_validator("account_id", mode="before")
    @classmethod
    def _mid_as_text(cls, value: object) -> object:
        # A MID is digits, so YAML reads an unquoted one as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class IterableDestination(_Destination):
    """Iterable `POST /api/events/track`."""

    type: Literal["iterable"]
    url: str = Field(
        default="https://api.iterable.com", description="https://api.eu.iterable.com for EU"
    )
    secret: SecretRef = Field(description="a server-side API key")


AnyDestination = (
    WebhookDestination
    | BrazeDestination
    | SalesforceJourneyBuilderDestination
    | IterableDestination
)
Destination = Annotated[AnyDestination, Field(discriminator="type")]


def _unique_names(value: tuple[AnyDestination, ...]) -> tuple[AnyDestination, ...]:
    names = [d.name for d in value]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate destination name: {', '.join(dupes)}")
    return value


# The field type for BeaconConfig: `destinations: Destinations = ()`.
Destinations = Annotated[tuple[Destination, ...], AfterValidator(_unique_names)]
DestinationsConfig = Destinations


def template_paths(template: Any) -> Iterator[str]:
    """Every `{{ path }}` in a mapping template, depth first."""
    if isinstance(template, str):
        for found in PLACEHOLDER.finditer(template):
            yield found.group(1)
    elif isinstance(template, dict):
        for value in template.values():
            yield from template_paths(value)
    elif isinstance(template, list):
        for value in template:
            yield from template_paths(value)


def signing_secrets(value: str) -> tuple[str, ...]:
    """The `whsec_` secrets in a signing secret's value (space-separated while rotating).

    Each is base64 of 24 to 64 random bytes, as Standard Webhooks requires.
    """
    secrets = tuple(value.split())
    if not secrets:
        raise ValueError("the signing secret is empty")
    for position, secret in enumerate(secrets, start=1):
        if not secret.startswith(WHSEC_PREFIX):
            raise ValueError(f"signing secret #{position} must start with {WHSEC_PREFIX}")
        try:
            key = base64.b64decode(secret.removeprefix(WHSEC_PREFIX), validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError(f"signing secret #{position} is not valid base64") from err
        if not 24 <= len(key) <= 64:
            raise ValueError(f"signing secret #{position} must encode 24 to 64 bytes")
    return secrets


def _base_url(value: str, *, https_only: bool, query_allowed: bool) -> str:
    parts = urllib.parse.urlsplit(value.strip())
    schemes = ("https",) if https_only else ("https", "http")
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{value!r} is not an {' or '.join(schemes)} URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not supported; use the secret")
    if parts.fragment or (parts.query and not query_allowed):
        raise ValueError(f"{value!r} must not have a {'fragment' if parts.fragment else 'query'}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as err:
        raise ValueError(f"{value!r} has an invalid port") from err
    if not query_allowed:
        return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/")))
    return urllib.parse.urlunsplit(parts)
