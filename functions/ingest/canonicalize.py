"""Turn one protocol-specific event into a CanonicalEvent, or a Rejection saying why not.

Both wire protocols (Segment, Snowplow) end here, so timestamps, message ids,
IP handling and validation errors behave the same whichever client sent it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from functions.shared import untrusted_json
from functions.shared.events import (
    CanonicalEvent,
    corrected_timestamp,
    derived_message_id,
)
from functions.shared.privacy import IpAnonymizer, anonymize_nested_ips

Protocol = Literal["segment", "snowplow"]

# Largest event as sent (Segment's limit), and of a whole request.
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# Largest record as written to Kinesis: the event as sent plus what Beacon adds
# (batch-level context merged in, the User-Agent header, server timestamps).
MAX_RECORD_BYTES = 40 * 1024
# What one request may write in all: twice its own limit, however its batch
# context multiplies over its items (the rest are refused with a reason).
MAX_WRITTEN_PER_REQUEST = 2 * MAX_BATCH_BYTES
# An event time later than its receipt by more than this is the server's receipt
# time instead (recorded in `clampedFrom`): time comes from the server.
FUTURE_TOLERANCE = timedelta(minutes=1)

# Per-event limits on what later steps keep per person (docs/security.md).
MAX_TRAITS_PER_EVENT = 100
MAX_TRAIT_KEY_CHARS = 128
MAX_TRAIT_VALUE_BYTES = 2 * 1024
MAX_CONSENT_CATEGORIES = 50
MAX_CATEGORY_CHARS = 100
MAX_EXTERNAL_IDS = 20
MAX_IDENTIFIER_TYPE_CHARS = 64
MAX_EMAIL_CHARS = 254  # RFC 5321's longest address
MAX_PHONE_CHARS = 64

# Reasons a failed event names (beside invalid_event and the request-level ones).
EVENT_TOO_LARGE = "event_too_large"
REQUEST_WRITES_TOO_MUCH = "request_writes_too_much"
LIMIT_EXCEEDED = "limit_exceeded"


@dataclass(frozen=True)
class RequestMeta:
    """What ingest knows about the HTTP request an event arrived in."""

    request_id: str
    received_at: datetime
    path: str
    source_ip: str | None = None  # raw: never leaves ingest
    user_agent: str | None = None


@dataclass(frozen=True)
class Rejection:
    """An event (or a whole request) ingest could not accept, and why."""

    reason: str  # machine-readable code, e.g. invalid_event, event_too_large
    message: str  # for people: names the field at fault
    raw: str  # the input exactly as received (decoded text)
    field: str | None = None
    index: int | None = None  # position in the request's batch
    message_id: str | None = None
    source: str | None = None
    protocol: Protocol | None = None

    def as_response_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"reason": self.reason, "message": self.message}
        for key, value in (
            ("index", self.index),
            ("messageId", self.message_id),
            ("field", self.field),
        ):
            if value is not None:
                item[key] = value
        return item


@dataclass
class Parsed:
    """The outcome of parsing one request: the events it holds, and the rejects."""

    events: list[CanonicalEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    indexes: list[int | None] = field(default_factory=list)  # each event's place in the batch

    def add(self, outcome: CanonicalEvent | Rejection, index: int | None = None) -> None:
        if isinstance(outcome, CanonicalEvent):
            self.events.append(outcome)
            self.indexes.append(index)
        else:
            self.rejections.append(outcome)

    def refuse(self, position: int, reason: str, message: str, raw: str) -> None:
        """Turn an accepted event (by its position in `events`) into a rejection."""
        event, index = self.events.pop(position), self.indexes.pop(position)
        self.rejections.append(
            Rejection(
                reason=reason,
                message=message,
                raw=raw,
                index=index,
                message_id=event.message_id,
                source=event.source.name,
                protocol=event.source.protocol,
            )
        )


_DATETIME = TypeAdapter(AwareDatetime | None)


def parse_time(value: Any, field_name: str) -> datetime | None:
    """ISO 8601 (naive means UTC) or epoch milliseconds, as trackers send them."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Converted here, not by pydantic: it reads a number past 2e10 as
            # milliseconds, so a far-future epoch-ms value was divided twice.
            if not math.isfinite(value):
                raise ValueError("not a finite number")
            return datetime.fromtimestamp(value / 1000.0, UTC)
        if isinstance(value, str) and _looks_naive(value):
            value = value + "Z"
        return _DATETIME.validate_python(value)
    except (ValidationError, ValueError, OverflowError, OSError) as err:
        raise FieldError(
            field_name, "is not an ISO 8601 timestamp or epoch milliseconds in range"
        ) from err


def _looks_naive(value: str) -> bool:
    tail = value[10:]
    return "T" in value and not (tail.endswith("Z") or "+" in tail or "-" in tail)


class FieldError(ValueError):
    def __init__(self, field_name: str, problem: str, reason: str = "invalid_event") -> None:
        self.field_name = field_name
        self.reason = reason  # what the failed event names: invalid_event, too_deeply_nested...
        super().__init__(f"{field_name} {problem}")


def build_event(
    fields: dict[str, Any],
    *,
    raw: str,
    source_name: str,
    protocol: Protocol,
    meta: RequestMeta,
    anonymize_ip: IpAnonymizer,
    index: int | None = None,
) -> CanonicalEvent | Rejection:
    """Validate `fields` (Segment-shaped, camelCase) into a CanonicalEvent.

    `fields` may carry `originalTimestamp` (or `timestamp`) and `sentAt` as sent
    by the client; the server-side `timestamp` is computed from them with the
    clock-skew rule. The raw IP (from the request or `context.ip`) is replaced
    by its anonymized form before the event exists.
    """
    as_sent = fields
    fields = dict(fields)
    fields.pop("writeKey", None)
    message_id = fields.get("messageId")

    def reject(reason: str, message: str, field_name: str | None = None) -> Rejection:
        return Rejection(
            reason=reason,
            message=message,
            raw=raw,
            field=field_name,
            index=index,
            message_id=message_id if isinstance(message_id, str) else None,
            source=source_name,
            protocol=protocol,
        )

    if len(raw.encode("utf-8")) > MAX_EVENT_BYTES:
        return reject(EVENT_TOO_LARGE, f"event is larger than {MAX_EVENT_BYTES} bytes")
    problem = untrusted_json.find_problem(fields)
    if problem is not None:
        return reject(problem.reason, problem.message, problem.path)
    over = _over_a_limit(fields)
    if over is not None:
        return reject(LIMIT_EXCEEDED, over[1], over[0])
    context = fields.get("context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        return reject("invalid_event", "context must be an object", "context")
    try:
        original = parse_time(
            fields.pop("originalTimestamp", None) or fields.pop("timestamp", None),
            "timestamp",
        )
        fields.pop("timestamp", None)
        sent_at = parse_time(fields.pop("sentAt", None), "sentAt")
    except FieldError as err:
        return reject("invalid_event", str(err), err.field_name)

    context = dict(context)
    client_ip = context.pop("ip", None)
    client_ip = client_ip if isinstance(client_ip, str) else None
    # Every other field named ip, at any depth, is anonymized the same way.
    for part in ("traits", "properties"):
        if isinstance(fields.get(part), dict):
            fields[part] = anonymize_nested_ips(fields[part], anonymize_ip)
    context = anonymize_nested_ips(context, anonymize_ip)
    context["ip"] = anonymize_ip(client_ip or meta.source_ip)
    if context["ip"] is None:
        del context["ip"]
    if meta.user_agent and not context.get("userAgent"):
        context["userAgent"] = meta.user_agent

    if not isinstance(message_id, str) or not message_id:
        message_id = derived_message_id(source_name, as_sent)
    fields.update(
        messageId=message_id,
        context=context,
        source={"name": source_name, "protocol": protocol},
        originalTimestamp=original,
        sentAt=sent_at,
        receivedAt=meta.received_at,
    )
    try:
        timestamp = corrected_timestamp(meta.received_at, sent_at, original)
    except OverflowError:
        return reject("invalid_event", "timestamp and sentAt are too far apart", "timestamp")
    if timestamp > meta.received_at + FUTURE_TOLERANCE:
        # A claim about the future is the client's clock or a forgery: the event
        # happened no later than it arrived. The claim stays in clampedFrom.
        fields["clampedFrom"] = timestamp
        timestamp = meta.received_at
    fields["timestamp"] = timestamp
    try:
        return CanonicalEvent.model_validate(fields).with_client_ip(client_ip or meta.source_ip)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        text = first["msg"].removeprefix("Value error, ")
        message = f"{loc}: {text}" if loc else text
        return reject("invalid_event", message, loc or _field_named_in(text))


def _over_a_limit(fields: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, message) for the first per-event limit `fields` exceeds (docs/security.md)."""
    context: Any = fields.get("context")
    context = context if isinstance(context, dict) else {}
    every_traits = (("traits", fields.get("traits")), ("context.traits", context.get("traits")))
    for name, traits in every_traits:
        if not isinstance(traits, dict):
            continue
        if len(traits) > MAX_TRAITS_PER_EVENT:
            return name, f"{name} has {len(traits)} traits, more than {MAX_TRAITS_PER_EVENT}"
        for key, value in traits.items():
            where = f"{name}.{str(key)[:40]}"
            if len(key) > MAX_TRAIT_KEY_CHARS:
                return where, f"{where} is a trait name over {MAX_TRAIT_KEY_CHARS} characters"
            size = len(untrusted_json.dumps(value).encode("utf-8"))
            if size > MAX_TRAIT_VALUE_BYTES:
                return where, f"{where} is {size} bytes, over {MAX_TRAIT_VALUE_BYTES} per trait"
            limit = {"email": MAX_EMAIL_CHARS, "phone": MAX_PHONE_CHARS}.get(key)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                return where, f"{where} is longer than {limit} characters"
    consent = context.get("consent")
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if isinstance(preferences, dict):
        where = "context.consent.categoryPreferences"
        if len(preferences) > MAX_CONSENT_CATEGORIES:
            return where, f"{where} names more than {MAX_CONSENT_CATEGORIES} categories"
        if any(len(name) > MAX_CATEGORY_CHARS for name in preferences):
            return where, f"{where} has a category name over {MAX_CATEGORY_CHARS} characters"
    external = context.get("externalIds")
    if isinstance(external, list):
        where = "context.externalIds"
        if len(external) > MAX_EXTERNAL_IDS:
            return where, f"{where} lists more than {MAX_EXTERNAL_IDS} identifiers"
        for item in external:
            kind = item.get("type") if isinstance(item, dict) else None
            if isinstance(kind, str) and len(kind) > MAX_IDENTIFIER_TYPE_CHARS:
                return where, f"{where} has a type over {MAX_IDENTIFIER_TYPE_CHARS} characters"
    return None


def _field_named_in(message: str) -> str | None:
    # Model-level rules ("event is required for a track call") name their field first.
    head = message.split(" ", 1)[0]
    return head if head and head[0].islower() else None
