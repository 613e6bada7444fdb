"""Snowplow tracker protocol -> canonical events.

The Snowplow trackers (JS, mobile, server) send the tracker protocol: one event
in the query string of the pixel (`GET /i`), or a `payload_data` batch posted
to `/com.snowplowanalytics.snowplow/tp2`. Each event is mapped onto the
Segment-shaped canonical event, so later steps never care which client sent
it. What has no place in the Segment shape is kept under `context.snowplow`,
so nothing is silently dropped; what cannot be read becomes a Rejection that
names the parameter at fault.

The parameters themselves are read in `snowplow_params.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from functions.ingest.canonicalize import (
    MAX_EVENT_BYTES,
    FieldError,
    Parsed,
    Rejection,
    RequestMeta,
    build_event,
)
from functions.ingest.http import parse_json_object
from functions.ingest.snowplow_params import (
    IGLU,
    SNOWPLOW_VENDOR,
    Params,
    event_fields,
    is_text,
    short,
)
from functions.shared import untrusted_json
from functions.shared.config import BeaconConfig
from functions.shared.events import CanonicalEvent
from functions.shared.privacy import IpAnonymizer

PROTOCOL: Final = "snowplow"
# tp2 envelopes the trackers have sent over the years; all have the same shape.
PAYLOAD_DATA_VERSIONS = frozenset({"1-0-0", "1-0-1", "1-0-2", "1-0-3", "1-0-4"})


def parse_pixel(
    query: Mapping[str, str],
    *,
    meta: RequestMeta,
    config: BeaconConfig,
    anonymize_ip: IpAnonymizer,
) -> Parsed:
    """The one event in a `GET /i` query string (already URL-decoded)."""
    parsed = Parsed()
    # surrogatepass: the raw text must be storable whatever the handler decoded.
    raw = urlencode(query, errors="surrogatepass")
    if not query:
        parsed.add(_malformed("the pixel request carries no tracker parameters", raw))
        return parsed
    parsed.add(
        _to_event(query, raw=raw, index=None, meta=meta, config=config, anonymize_ip=anonymize_ip)
    )
    return parsed


def parse_tp2(
    body: str,
    *,
    meta: RequestMeta,
    config: BeaconConfig,
    anonymize_ip: IpAnonymizer,
) -> Parsed:
    """Every event in a `payload_data` POST body, each validated on its own."""
    parsed = Parsed()
    items = _payload_items(body)
    if isinstance(items, str):
        parsed.add(_malformed(items, body))
        return parsed
    for index, item in enumerate(items):
        raw = _item_raw(item)
        if not isinstance(item, dict):
            parsed.add(
                _reject("invalid_event", "the event must be a JSON object", raw, index=index)
            )
            continue
        parsed.add(
            _to_event(
                item, raw=raw, index=index, meta=meta, config=config, anonymize_ip=anonymize_ip
            ),
            index,
        )
    return parsed


def _payload_items(body: str) -> list[Any] | str:
    """The `data` list of a payload_data envelope, or a sentence saying what is wrong."""
    envelope = parse_json_object(body)
    if isinstance(envelope, str):
        return envelope
    schema = envelope.get("schema")
    key = IGLU.fullmatch(schema) if isinstance(schema, str) else None
    if (
        key is None
        or key["vendor"] != SNOWPLOW_VENDOR
        or key["name"] != "payload_data"
        or key["version"] not in PAYLOAD_DATA_VERSIONS
    ):
        return (
            f"schema must be iglu:{SNOWPLOW_VENDOR}/payload_data/jsonschema/1-0-0 to 1-0-4,"
            f" not {short(schema)}"
        )
    if not isinstance(envelope.get("data"), list):
        return "data must be a list of events"
    items: list[Any] = envelope["data"]
    return items


def _item_raw(item: Any) -> str:
    if untrusted_json.depth_of(item, untrusted_json.MAX_DEPTH) > untrusted_json.MAX_DEPTH:
        return untrusted_json.dumps(item)  # refused anyway: not a flat parameter map
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    # A lone surrogate from a \ud800 escape cannot be stored as UTF-8: keep it escaped.
    return text if is_text(text) else json.dumps(item, separators=(",", ":"))


def _to_event(
    values: Mapping[str, Any],
    *,
    raw: str,
    index: int | None,
    meta: RequestMeta,
    config: BeaconConfig,
    anonymize_ip: IpAnonymizer,
) -> CanonicalEvent | Rejection:
    """One tracker-protocol event into a CanonicalEvent, or a Rejection naming why not."""
    strings, problem = _as_strings(values)
    eid = strings.get("eid") or None

    def reject(reason: str, message: str, field: str | None, source: str | None) -> Rejection:
        return _reject(reason, message, raw, field, index, eid, source)

    aid = strings.get("aid") or None
    source = config.source_for_app_id(aid)
    if source is None:
        where = f"aid {short(aid)} belongs to no source" if aid else "the event has no aid"
        return reject(
            "unknown_app_id",
            f"{where}, and no source in beacon.yaml lists it or '*' in snowplow_app_ids",
            "aid",
            None,
        )
    if len(raw.encode("utf-8")) > MAX_EVENT_BYTES:
        # Before decoding anything: an oversized event is refused whatever it holds.
        return reject(
            "event_too_large", f"event is larger than {MAX_EVENT_BYTES} bytes", None, source.name
        )
    try:
        if problem is not None:
            raise problem
        fields = event_fields(Params(strings))
    except FieldError as err:
        return reject(err.reason, str(err), err.field_name, source.name)
    return build_event(
        fields,
        raw=raw,
        source_name=source.name,
        protocol=PROTOCOL,
        meta=meta,
        anonymize_ip=anonymize_ip,
        index=index,
    )


def _as_strings(values: Mapping[str, Any]) -> tuple[dict[str, str], FieldError | None]:
    """Parameters as text (the protocol's type), and the first one that is not text.

    JSON numbers are accepted as their text (some server trackers send dtm as a
    number); null means absent.
    """
    strings: dict[str, str] = {}
    problem: FieldError | None = None
    for key, value in values.items():
        name = key if is_text(key) else key.encode("utf-8", "backslashreplace").decode()
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            problem = problem or FieldError(name, "must be a string")
        elif not (is_text(key) and is_text(value)):
            problem = problem or FieldError(name, "is not valid Unicode text")
        else:
            strings[key] = value
    return strings, problem


def _malformed(message: str, raw: str) -> Rejection:
    return _reject("malformed_body", message, raw)


def _reject(
    reason: str,
    message: str,
    raw: str,
    field: str | None = None,
    index: int | None = None,
    message_id: str | None = None,
    source: str | None = None,
) -> Rejection:
    return Rejection(
        reason=reason,
        message=message,
        raw=raw,
        field=field,
        index=index,
        message_id=message_id,
        source=source,
        protocol=PROTOCOL,
    )
