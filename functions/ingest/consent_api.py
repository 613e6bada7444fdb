"""`POST /v1/consent`: a consent-management platform records a decision server-side.

The decision becomes a `Segment Consent Preference Updated` track event with
`context.consent.categoryPreferences`, the same shape Segment's consent
wrapper sends, so it travels the stream in order with the person's other
events and the consent step records it like any other decision.

Body: `{"userId" | "anonymousId": ..., "categoryPreferences": {"analytics": true, ...},
"source": "onetrust", "timestamp": ..., "messageId": ...}`.
"""

from __future__ import annotations

from typing import Any

from functions.ingest.canonicalize import Parsed, Rejection, RequestMeta, build_event
from functions.shared.privacy import IpAnonymizer
from functions.shared.untrusted_json import dumps

CONSENT_EVENT = "Segment Consent Preference Updated"


def parse_consent_call(
    body: dict[str, Any], *, source_name: str, meta: RequestMeta, anonymize_ip: IpAnonymizer
) -> Parsed:
    parsed = Parsed()
    raw = dumps(body)
    preferences = body.get("categoryPreferences")
    if (
        not isinstance(preferences, dict)
        or not preferences
        or not all(isinstance(k, str) and isinstance(v, bool) for k, v in preferences.items())
    ):
        parsed.rejections.append(
            Rejection(
                reason="invalid_event",
                message="categoryPreferences must be an object of category -> true/false",
                raw=raw,
                field="categoryPreferences",
                source=source_name,
                protocol="segment",
            )
        )
        return parsed
    cmp = body.get("source") if isinstance(body.get("source"), str) else "api"
    context: dict[str, Any] = body["context"] if isinstance(body.get("context"), dict) else {}
    fields: dict[str, Any] = {
        key: body[key]
        for key in ("userId", "anonymousId", "timestamp", "messageId", "traits")
        if key in body
    }
    fields.update(
        type="track",
        event=CONSENT_EVENT,
        properties={"source": cmp},
        context={**context, "consent": {"categoryPreferences": preferences}},
    )
    parsed.add(
        build_event(
            fields,
            raw=raw,
            source_name=source_name,
            protocol="segment",
            meta=meta,
            anonymize_ip=anonymize_ip,
        )
    )
    return parsed
