"""The canonical event: the one shape every step of the pipeline reads.

It follows Segment's spec (camelCase on the wire, the same six types) so that
users of Segment recognise every field, and it carries what Snowplow events
map onto. Ingest is the only place that builds one from client input; every
later step reads it with `CanonicalEvent.model_validate_json`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

SCHEMA_VERSION = 1
MAX_PARTITION_KEY = 256

# Namespace for message ids derived from the content of an event that came
# without one, so a client's retry of the same event gets the same id.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c9a52-3c55-4d57-9a43-6e2f3b1f0b7e")


class EventType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class _Wire(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown keys kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        str_strip_whitespace=False,
    )


class ConsentContext(_Wire):
    """`context.consent` as Segment's consent integrations send it."""

    category_preferences: dict[str, bool] = Field(default_factory=dict)


class ExternalId(_Wire):
    id: str
    type: str
    collection: str | None = None
    encoding: str | None = None


class Context(_Wire):
    """`context`: known fields typed, anything else kept as sent."""

    ip: str | None = None
    user_agent: str | None = None
    page: dict[str, Any] | None = None
    consent: ConsentContext | None = None
    library: dict[str, Any] | None = None
    locale: str | None = None
    timezone: str | None = None
    external_ids: list[ExternalId] | None = None
    traits: dict[str, Any] | None = None


class Source(_Wire):
    """Which configured source and which wire protocol the event came through."""

    name: str
    protocol: Literal["segment", "snowplow"]


class ConsentStamp(_Wire):
    """Set by the consent step on what it forwards: the categories in force for this
    event, defaults applied, so later steps (webhook destinations) enforce their own."""

    granted: list[str] = Field(default_factory=list)
    denied: list[str] = Field(default_factory=list)


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class CanonicalEvent(_Wire):
    """One behavioural event, validated, with server-side timestamps."""

    schema_version: int = SCHEMA_VERSION
    message_id: str = Field(min_length=1, max_length=200)
    type: EventType
    event: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=500)
    anonymous_id: str | None = Field(default=None, max_length=400)
    user_id: str | None = Field(default=None, max_length=400)
    previous_id: str | None = Field(default=None, max_length=400)
    group_id: str | None = Field(default=None, max_length=400)
    traits: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    context: Context = Field(default_factory=Context)
    integrations: dict[str, Any] = Field(default_factory=dict)
    source: Source
    # timestamp = receivedAt - (sentAt - originalTimestamp): Segment's clock-skew rule.
    timestamp: AwareDatetime
    original_timestamp: AwareDatetime | None = None
    sent_at: AwareDatetime | None = None
    received_at: AwareDatetime
    # The time the client claimed when it was later than the receipt (plus a small
    # tolerance): `timestamp` is then the receipt time. Time comes from the server.
    clamped_from: AwareDatetime | None = None
    consent: ConsentStamp | None = None  # absent until the consent step has judged it
    # The client's address as it arrived, for ingest's geolocation only: a private
    # attribute is never serialized, so the raw IP never leaves the ingest function.
    _client_ip: str | None = PrivateAttr(default=None)

    def with_client_ip(self, ip: str | None) -> CanonicalEvent:
        self._client_ip = ip
        return self

    @property
    def client_ip(self) -> str | None:
        return self._client_ip

    @field_validator("anonymous_id", "user_id", "previous_id", "group_id", mode="before")
    @classmethod
    def _ids_are_strings(cls, value: Any) -> Any:
        # Segment accepts numeric ids and stores them as strings.
        if isinstance(value, bool):
            raise ValueError("must be a string, not a boolean")
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("timestamp", "original_timestamp", "sent_at", "received_at", "clamped_from")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        try:
            return None if value is None else _as_utc(value)
        except OverflowError as err:
            raise ValueError("is out of the representable range") from err

    @model_validator(mode="after")
    def _required_by_type(self) -> CanonicalEvent:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("userId or anonymousId is required")
        if self.type is EventType.TRACK and not self.event:
            raise ValueError("event is required for a track call")
        if self.type is EventType.ALIAS and (not self.previous_id or not self.user_id):
            raise ValueError("previousId and userId are required for an alias call")
        if self.type is EventType.GROUP and not self.group_id:
            raise ValueError("groupId is required for a group call")
        return self

    @property
    def partition_key(self) -> str:
        """Kinesis key: one person's events stay in order on one shard.

        Kinesis takes at most 256 characters; a longer id (allowed up to 400)
        is replaced by its SHA-256, which is just as stable per person.
        """
        key = self.anonymous_id or self.user_id
        assert key is not None  # guaranteed by _required_by_type
        return key if len(key) <= MAX_PARTITION_KEY else hashlib.sha256(key.encode()).hexdigest()

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def corrected_timestamp(
    received_at: datetime,
    sent_at: datetime | None,
    original_timestamp: datetime | None,
) -> datetime:
    """Segment's clock-skew correction.

    With both client clocks known, the event happened `sentAt - originalTimestamp`
    before the server received it. With only the client's timestamp, trust it;
    with neither, the event happened when it arrived.
    """
    if original_timestamp is None:
        return received_at
    if sent_at is None:
        return original_timestamp
    return received_at - (sent_at - original_timestamp)


def derived_message_id(source_name: str, raw_event: dict[str, Any]) -> str:
    """A stable id for an event sent without `messageId`.

    Derived from the event's content (minus `sentAt`, which a client's retry
    may refresh) so a retried request deduplicates downstream like one that
    carried its own id.
    """
    content = {k: v for k, v in raw_event.items() if k not in ("sentAt", "writeKey")}
    digest = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{source_name}\n{digest}"))
