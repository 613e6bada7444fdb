"""Segment HTTP Tracking API: request bodies -> canonical events.

Accepts what analytics.js, analytics-node, analytics-python and the mobile
SDKs send: single calls (`/v1/track` ...), their one-letter forms
(`/v1/t` ...), and batches (`/v1/batch`, `/v1/b`, `/v1/import`) whose
`context` and `integrations` merge into every item (the item wins).
"""

from __future__ import annotations

from typing import Any

from functions.ingest.canonicalize import (
    Parsed,
    Rejection,
    RequestMeta,
    build_event,
)
from functions.shared.privacy import IpAnonymizer
from functions.shared.untrusted_json import dumps

SINGLE_CALLS = {
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}
BATCH_CALLS = frozenset({"batch", "b", "import"})
ALL_CALLS = frozenset(SINGLE_CALLS) | BATCH_CALLS


def parse_segment(
    call: str,
    body: dict[str, Any],
    *,
    source_name: str,
    meta: RequestMeta,
    anonymize_ip: IpAnonymizer,
) -> Parsed:
    """Every event in one Segment request, each validated on its own."""
    parsed = Parsed()
    if call in BATCH_CALLS:
        items = body.get("batch")
        if not isinstance(items, list):
            parsed.rejections.append(
                Rejection(
                    reason="malformed_body",
                    message="batch must be a list of events",
                    raw=dumps(body),
                    field="batch",
                    source=source_name,
                    protocol="segment",
                )
            )
            return parsed
        shared = {
            "context": body.get("context"),
            "integrations": body.get("integrations"),
            "sentAt": body.get("sentAt"),
        }
        for index, item in enumerate(items):
            parsed.add(_batch_item(item, index, shared, source_name, meta, anonymize_ip), index)
        return parsed

    item = dict(body)
    item["type"] = SINGLE_CALLS[call]
    raw = dumps(body)
    parsed.add(
        build_event(
            item,
            raw=raw,
            source_name=source_name,
            protocol="segment",
            meta=meta,
            anonymize_ip=anonymize_ip,
        )
    )
    return parsed


def _batch_item(
    item: Any,
    index: int,
    shared: dict[str, Any],
    source_name: str,
    meta: RequestMeta,
    anonymize_ip: IpAnonymizer,
) -> Any:
    raw = dumps(item)
    if not isinstance(item, dict):
        return Rejection(
            reason="invalid_event",
            message=f"batch[{index}] must be an object",
            raw=raw,
            field=f"batch[{index}]",
            index=index,
            source=source_name,
            protocol="segment",
        )
    # The size limit applies to the item as sent (build_event checks `raw`),
    # not to the batch-level context merged into it.
    merged = dict(item)
    for key in ("context", "integrations"):
        if isinstance(shared[key], dict):
            own = item.get(key)
            merged[key] = _deep_merge(shared[key], own if isinstance(own, dict) else {})
    if shared["sentAt"] is not None and "sentAt" not in item:
        merged["sentAt"] = shared["sentAt"]
    if not isinstance(item.get("type"), str) or item["type"] not in SINGLE_CALLS.values():
        return Rejection(
            reason="invalid_event",
            message="type must be one of track, identify, page, screen, group, alias",
            raw=raw,
            field="type",
            index=index,
            message_id=item.get("messageId") if isinstance(item.get("messageId"), str) else None,
            source=source_name,
            protocol="segment",
        )
    return build_event(
        merged,
        raw=raw,
        source_name=source_name,
        protocol="segment",
        meta=meta,
        anonymize_ip=anonymize_ip,
        index=index,
    )


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it; nested objects merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
