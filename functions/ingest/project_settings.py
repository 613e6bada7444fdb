"""`GET /v1/projects/{writeKey}/settings`: the settings analytics.js fetches at load.

Segment's analytics.js (`@segment/analytics-next`) reads its project settings from
`<cdnURL>/v1/projects/<writeKey>/settings` before it sends anything. Answering it
here lets the unmodified library run with only its `cdnURL` pointed at Beacon (as
RudderStack's and Jitsu's Segment-compatible endpoints do): the settings name
Beacon itself as the `Segment.io` destination's `apiHost`, enable no other
destination, and turn the library's own telemetry off (`sampleRate: 0`).
"""

from __future__ import annotations

import re
from typing import Any

# A Host header that could not be a host: the settings would send events elsewhere.
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")


def project_settings(write_key: str, host: str, protocol: str) -> dict[str, Any]:
    """What analytics.js needs to send its calls to `protocol://host/v1/...`."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{host}/v1",
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def served_host(host: str | None) -> str | None:
    """The Host the request came to, if it looks like one (else None: refuse)."""
    if host is None or not _HOST.match(host):
        return None
    return host


def served_protocol(forwarded_proto: str | None) -> str:
    """https unless the gateway says the request came over plain http (local stack)."""
    return "http" if (forwarded_proto or "").strip().lower() == "http" else "https"
