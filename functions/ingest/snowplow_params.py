"""Snowplow tracker-protocol parameters -> the Segment-shaped fields of one event.

`snowplow.py` reads the requests; this module reads one event's parameters,
checks each value's type and says which parameter is at fault when one is wrong
(`FieldError`). What has no place in the Segment shape is kept under
`context.snowplow`, so nothing is silently dropped.

Where the common parameters land (every event type):

    eid                 -> messageId
    dtm / stm           -> originalTimestamp / sentAt (clock-skew corrected)
    ttm                 -> originalTimestamp, no sentAt (a true timestamp: no correction)
    duid / uid          -> anonymousId / userId
    tnuid, else nuid    -> anonymousId when there is neither duid nor uid;
                           context.snowplow.networkUserId always
    ua / ip             -> context.userAgent / context.ip (ip anonymized by build_event)
    lang / tz           -> context.locale / context.timezone
    tv                  -> context.library {name: snowplow, version}
    url / page / refr   -> context.page {url, title, referrer, path, search}
    sid / vid           -> context.session {id, index}
    res / vp            -> context.screen {width, height, viewport {width, height}}
    aid / p / tna       -> context.snowplow {appId, platform, trackerNamespace}
    co, else cx         -> context.snowplow.contexts (+ pageViewId from web_page)
    cookie cs cd ds f_* -> context.snowplow.client
    anything else       -> context.snowplow.unmapped (properties, for unmapped event types)
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from functions.ingest.canonicalize import FieldError
from functions.shared import untrusted_json

SNOWPLOW_VENDOR = "com.snowplowanalytics.snowplow"

IGLU = re.compile(
    r"iglu:(?P<vendor>[a-zA-Z0-9_.-]+)/(?P<name>[a-zA-Z0-9_-]+)"
    r"/(?P<format>[a-zA-Z0-9_-]+)/(?P<version>[0-9]+-[0-9]+-[0-9]+)",
    re.ASCII,
)
_EVENT_CODE = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)
_EPOCH_MS = re.compile(r"[0-9]{1,15}", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_DIMENSIONS = re.compile(r"([0-9]{1,6})x([0-9]{1,6})", re.ASCII)

_CONTEXT_FIELDS = {"ua": "userAgent", "ip": "ip", "lang": "locale", "tz": "timezone"}
_SNOWPLOW_FIELDS = {"aid": "appId", "p": "platform", "tna": "trackerNamespace"}
_CLIENT_FIELDS = frozenset({"cookie", "cs", "cd", "ds"})  # plus every f_* browser feature
_BASE64_FIELDS = frozenset({"cx", "ue_px"})  # the others carrying JSON send it as is
_URL_SAFE = str.maketrans("-_", "+/")


class Params:
    """One event's parameters; remembers which ones found a place in the event."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._taken: set[str] = set()

    def get(self, key: str) -> str | None:
        """The value without taking it (an empty value counts as absent)."""
        return self._values.get(key) or None

    def take(self, key: str) -> str | None:
        """The value, now counted as mapped. Taking twice gives the same value."""
        self._taken.add(key)
        return self.get(key)

    def take_rest(self) -> dict[str, str]:
        """Every parameter nothing else has taken."""
        rest = {k: v for k, v in self._values.items() if k not in self._taken}
        self._taken.update(rest)
        return rest

    def names(self) -> list[str]:
        return list(self._values)


# --- the whole event ---------------------------------------------------------


def event_fields(params: Params) -> dict[str, Any]:
    """The Segment-shaped fields build_event validates."""
    code = params.take("e")
    if code is None:
        raise FieldError("e", "(the event type) is required")
    if not _EVENT_CODE.fullmatch(code):
        raise FieldError("e", f"{short(code)} is not a tracker protocol event type")
    anonymous_id, user_id = _identity(params)
    original, sent_at = _timestamps(params)
    fields: dict[str, Any] = {
        "messageId": params.take("eid"),
        "anonymousId": anonymous_id,
        "userId": user_id,
        "originalTimestamp": original,
        "sentAt": sent_at,
    }
    context = _context(params)
    fields.update(_EVENT_TYPES.get(code, _other_event)(params))
    unmapped = params.take_rest()
    if unmapped:
        context.setdefault("snowplow", {})["unmapped"] = unmapped
    fields["context"] = context
    return _compact(fields)


def _identity(params: Params) -> tuple[str | None, str | None]:
    """(anonymousId, userId): the domain cookie id first, the collector's cookie last."""
    anonymous_id = params.take("duid")
    user_id = params.take("uid")
    if anonymous_id is None and user_id is None:
        anonymous_id = _network_user_id(params)
    return anonymous_id, user_id


def _network_user_id(params: Params) -> str | None:
    # tnuid is the tracker's override of the collector cookie (nuid).
    return params.take("tnuid") or params.take("nuid")


def _timestamps(params: Params) -> tuple[str | None, str | None]:
    """(originalTimestamp, sentAt) as epoch-ms text; parse_time reads it."""
    true_timestamp = _epoch_ms(params, "ttm")
    if true_timestamp is not None:
        # The tracker vouches for ttm: no skew correction, so no sentAt.
        return true_timestamp, None
    return _epoch_ms(params, "dtm"), _epoch_ms(params, "stm")


def _context(params: Params) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for key, destination in _CONTEXT_FIELDS.items():
        context[destination] = params.take(key)
    version = params.take("tv")
    if version is not None:
        context["library"] = {"name": "snowplow", "version": version}
    context["page"] = _page(params) or None
    context["session"] = _compact({"id": params.take("sid"), "index": _integer(params, "vid")})
    context["screen"] = _screen(params)

    snowplow: dict[str, Any] = {
        destination: params.take(key) for key, destination in _SNOWPLOW_FIELDS.items()
    }
    snowplow["networkUserId"] = _network_user_id(params)
    client = {
        key: params.take(key)
        for key in params.names()
        if key in _CLIENT_FIELDS or key.startswith("f_")
    }
    snowplow["client"] = _compact(client)
    contexts = _contexts(params)
    if contexts is not None:
        snowplow["contexts"] = contexts
        snowplow["pageViewId"] = _page_view_id(contexts)
    context["snowplow"] = _compact(snowplow)
    return _compact(context)


def _page(params: Params) -> dict[str, str]:
    """Segment's page fields, from the URL, title and referrer the tracker saw."""
    url = params.take("url")
    page = {"url": url, "title": params.take("page"), "referrer": params.take("refr")}
    if url is not None:
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. a broken IPv6 host: keep the URL as sent, derive nothing
            pass
        else:
            page["path"] = parts.path or ("/" if parts.netloc else None)
            page["search"] = f"?{parts.query}" if parts.query else None
    return _compact(page)


def _screen(params: Params) -> dict[str, Any]:
    screen: dict[str, Any] = _dimensions(params, "res")
    viewport = _dimensions(params, "vp")
    if viewport:
        screen["viewport"] = viewport
    return screen


def _contexts(params: Params) -> list[dict[str, Any]] | None:
    """The entities attached to the event (`co` JSON, or `cx` base64url JSON)."""
    key = "co" if params.get("co") is not None else "cx"
    envelope = _json_param(params, key)
    if envelope is None:
        return None
    entities = _envelope_data(envelope, key, "contexts")
    if not isinstance(entities, list):
        raise FieldError(key, "data must be a list of self-describing entities")
    for entity in entities:
        _self_describing(entity, key)
    return entities


def _page_view_id(contexts: list[dict[str, Any]]) -> str | None:
    # The JS tracker's web_page entity: the id shared by a page view and its pings.
    for entity in contexts:
        iglu = IGLU.fullmatch(entity["schema"])
        data = entity["data"]
        if (
            iglu
            and (iglu["vendor"], iglu["name"]) == (SNOWPLOW_VENDOR, "web_page")
            and isinstance(data, dict)
            and isinstance(data.get("id"), str)
        ):
            page_view_id: str = data["id"]
            return page_view_id
    return None


# --- event types (`e`) -------------------------------------------------------


def _page_view(params: Params) -> dict[str, Any]:
    page = _page(params)
    return {"type": "page", "name": page.get("title"), "properties": page}


def _page_ping(params: Params) -> dict[str, Any]:
    offsets = {key: _whole(params, key) for key in ("pp_mix", "pp_max", "pp_miy", "pp_may")}
    return {"type": "track", "event": "Page Ping", "properties": _compact(offsets)}


def _structured(params: Params) -> dict[str, Any]:
    action = params.take("se_ac")
    if action is None:
        raise FieldError("se_ac", "(the action) is required for a structured event")
    category = params.take("se_ca")
    properties = {
        "category": category,
        "action": action,
        "label": params.take("se_la"),
        "property": params.take("se_pr"),
        "value": _number(params, "se_va"),
    }
    return {
        "type": "track",
        "event": action,
        "category": category,
        "properties": _compact(properties),
    }


def _self_describing_event(params: Params) -> dict[str, Any]:
    """`ue`: the event is named after its schema; its data become the properties.

    Consent events (consent_preferences, consent_granted, ...) arrive this way;
    their data stay intact for the consent step.
    """
    key = "ue_pr" if params.get("ue_pr") is not None else "ue_px"
    envelope = _json_param(params, key)
    if envelope is None:
        raise FieldError("ue_pr", "or ue_px (the event's JSON) is required for a ue event")
    event = _self_describing(_envelope_data(envelope, key, "unstruct_event"), key)
    if not isinstance(event["data"], dict):
        raise FieldError(key, "data must be a JSON object")
    iglu = IGLU.fullmatch(event["schema"])
    assert iglu is not None  # checked by _self_describing
    properties = {**event["data"], "$schema": event["schema"]}
    return {"type": "track", "event": iglu["name"], "properties": properties}


def _transaction(params: Params) -> dict[str, Any]:
    """`tr`: Segment's e-commerce spec calls a completed transaction "Order Completed"."""
    order_id = params.take("tr_id")
    if order_id is None:
        raise FieldError("tr_id", "(the order id) is required for a transaction")
    total = _number(params, "tr_tt")
    properties = {
        "order_id": order_id,
        "affiliation": params.take("tr_af"),
        "total": total,
        "revenue": total,
        "tax": _number(params, "tr_tx"),
        "shipping": _number(params, "tr_sh"),
        "currency": params.take("tr_cu"),
        "city": params.take("tr_ci"),
        "state": params.take("tr_st"),
        "country": params.take("tr_co"),
    }
    return {"type": "track", "event": "Order Completed", "properties": _compact(properties)}


def _transaction_item(params: Params) -> dict[str, Any]:
    order_id = params.take("ti_id")
    if order_id is None:
        raise FieldError("ti_id", "(the order id) is required for a transaction item")
    properties = {
        "order_id": order_id,
        "sku": params.take("ti_sk"),
        "name": params.take("ti_nm"),
        "category": params.take("ti_ca"),
        "price": _number(params, "ti_pr"),
        "quantity": _integer(params, "ti_qu"),
        "currency": params.take("ti_cu"),
    }
    return {"type": "track", "event": "Order Item", "properties": _compact(properties)}


def _other_event(params: Params) -> dict[str, Any]:
    """Ad impressions, legacy `ev`, and codes Beacon has no mapping for: keep every parameter."""
    return {
        "type": "track",
        "event": f"snowplow:{params.take('e')}",
        "properties": params.take_rest(),
    }


_EVENT_TYPES: dict[str, Callable[[Params], dict[str, Any]]] = {
    "pv": _page_view,
    "pp": _page_ping,
    "se": _structured,
    "ue": _self_describing_event,
    "tr": _transaction,
    "ti": _transaction_item,
}


# --- values ------------------------------------------------------------------


def _epoch_ms(params: Params, key: str) -> str | None:
    value = params.take(key)
    if value is not None and not _EPOCH_MS.fullmatch(value):
        raise FieldError(key, "is not a timestamp in epoch milliseconds")
    return value


def _written_as(params: Params, key: str, pattern: re.Pattern[str], what: str) -> str | None:
    """The parameter's value, which must be written as `pattern` says (else FieldError)."""
    value = params.take(key)
    if value is not None and not pattern.fullmatch(value):
        raise FieldError(key, f"is not {what} ({short(value)})")
    return value


def _number(params: Params, key: str) -> float | None:
    value = _written_as(params, key, _DECIMAL, "a number")
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise FieldError(key, "is too large")
    return number


def _integer(params: Params, key: str) -> int | None:
    value = _written_as(params, key, _INTEGER, "a whole number")
    return None if value is None else int(value)


def _whole(params: Params, key: str) -> int | None:
    # Some trackers send fractional scroll offsets; the protocol's type is an integer.
    number = _number(params, key)
    return None if number is None else round(number)


def _dimensions(params: Params, key: str) -> dict[str, int]:
    value = params.take(key)
    if value is None:
        return {}
    match = _DIMENSIONS.fullmatch(value)
    if match is None:
        raise FieldError(key, f"is not WIDTHxHEIGHT ({short(value)})")
    return {"width": int(match[1]), "height": int(match[2])}


def _json_param(params: Params, key: str) -> Any:
    """The JSON a parameter carries (base64url for cx/ue_px, padding optional), or None."""
    value = params.take(key)
    if value is None:
        return None
    encoding = "base64url-encoded JSON" if key in _BASE64_FIELDS else "JSON"
    try:
        text = _base64url(value) if key in _BASE64_FIELDS else value
        decoded = untrusted_json.loads(text)
    except (ValueError, RecursionError) as err:  # binascii, UTF-8 and JSON errors
        raise FieldError(key, f"is not {encoding}") from err
    problem = untrusted_json.find_problem(decoded, root=key)
    if problem is not None:
        problem_text = problem.message.removeprefix(f"{problem.path} ")
        raise FieldError(problem.path, problem_text, problem.reason)
    if not is_text(json.dumps(decoded, ensure_ascii=False)):
        raise FieldError(key, "holds text that is not valid Unicode")
    return decoded


def _base64url(value: str) -> str:
    # Both alphabets, padding optional; a '+' the query string turned into ' ' is put back.
    value = value.replace(" ", "+").translate(_URL_SAFE).rstrip("=")
    decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    return decoded.decode("utf-8")


def _envelope_data(envelope: Any, key: str, name: str) -> Any:
    """The data of one of Snowplow's own envelopes (contexts, unstruct_event) 1-0-x."""
    expected = f"iglu:{SNOWPLOW_VENDOR}/{name}/jsonschema/1-0-x"
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise FieldError(key, f"must be a self-describing JSON object with schema {expected}")
    schema = envelope.get("schema")
    iglu = IGLU.fullmatch(schema) if isinstance(schema, str) else None
    if (
        iglu is None
        or iglu["vendor"] != SNOWPLOW_VENDOR
        or iglu["name"] != name
        or not iglu["version"].startswith("1-0-")
    ):
        raise FieldError(key, f"schema must be {expected}, not {short(schema)}")
    return envelope["data"]


def _self_describing(entity: Any, key: str) -> dict[str, Any]:
    if (
        not isinstance(entity, dict)
        or not isinstance(entity.get("schema"), str)
        or not IGLU.fullmatch(entity["schema"])
        or "data" not in entity
    ):
        raise FieldError(key, "holds an entity that is not {schema: iglu:..., data: ...}")
    return entity


# --- helpers -----------------------------------------------------------------


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Without the absent (None) and empty-dict entries."""
    return {k: v for k, v in values.items() if v is not None and v != {}}


def is_text(value: str) -> bool:
    """Whether the string can be written as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def short(value: Any) -> str:
    """A value quoted for a message, cut short: messages must stay readable."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
