"""Turn one protocol-specific event into a CanonicalEvent, or a Rejection saying why not.

Both wire protocols (Segment, Snowplow) end here, so timestamps, message ids,
IP handling and validation errors behave the same whichever client sent it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from functions.shared.events import (
    CanonicalEvent,
    corrected_timestamp,
    derived_message_id,
)

Protocol = Literal["segment", "snowplow"]

# Largest serialized event (Segment's limit), and of a whole request.
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


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

    def add(self, outcome: CanonicalEvent | Rejection) -> None:
        if isinstance(outcome, CanonicalEvent):
            self.events.append(outcome)
        else:
            self.rejections.append(outcome)


IpAnonymizer = Callable[[str | None], str | None]

_DATETIME = TypeAdapter(AwareDatetime | None)


def parse_time(value: Any, field_name: str) -> datetime | None:
    """ISO 8601 (naive means UTC) or epoch milliseconds, as trackers send them."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = value / 1000.0  # trackers send epoch milliseconds
        if isinstance(value, str) and _looks_naive(value):
            value = value + "Z"
        return _DATETIME.validate_python(value)
    except (ValidationError, ValueError, OverflowError) as err:
        raise FieldError(field_name, "is not an ISO 8601 timestamp or epoch milliseconds") from err


def _looks_naive(value: str) -> bool:
    tail = value[10:]
    return "T" in value and not (tail.endswith("Z") or "+" in tail or "-" in tail)


class FieldError(ValueError):
    def __init__(self, field_name: str, problem: str) -> None:
        self.field_name = field_name
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
        return reject("event_too_large", f"event is larger than {MAX_EVENT_BYTES} bytes")
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
    client_ip = context.get("ip") if isinstance(context.get("ip"), str) else None
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
        fields["timestamp"] = corrected_timestamp(meta.received_at, sent_at, original)
    except OverflowError:
        return reject("invalid_event", "timestamp and sentAt are too far apart", "timestamp")
    try:
        return CanonicalEvent.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        text = first["msg"].removeprefix("Value error, ")
        message = f"{loc}: {text}" if loc else text
        return reject("invalid_event", message, loc or _field_named_in(text))


def _field_named_in(message: str) -> str | None:
    # Model-level rules ("event is required for a track call") name their field first.
    head = message.split(" ", 1)[0]
    return head if head and head[0].islower() else None
