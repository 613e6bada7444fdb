"""Raw IP addresses never leave ingest: truncate, hash or drop them."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import urllib.parse
from typing import Any, Literal

IpHandling = Literal["truncate", "hash", "drop"]


def anonymize_ip(raw: str | None, handling: IpHandling, salt: bytes = b"") -> str | None:
    """What of `raw` may travel downstream.

    truncate keeps the network (IPv4 /24, IPv6 /48) as Google Analytics does;
    hash gives a salted HMAC-SHA256 that joins events without revealing the
    address; drop keeps nothing. Anything that is not an address is dropped.
    """
    if raw is None or handling == "drop":
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if handling == "hash":
        return "sha256:" + hmac.new(salt, address.packed, hashlib.sha256).hexdigest()
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


_REDACTED = "[ip removed]"
_IP_FIELD = re.compile(r'("ip"\s*:\s*)"[^"]*"')


def scrub_ip(raw: str) -> str:
    """Remove client-supplied IPs (`context.ip`, Snowplow's `ip=`) from raw input kept
    for failed events, so a raw address never leaves ingest even in a rejected event."""
    try:
        document = json.loads(raw)
    except RecursionError:
        return _IP_FIELD.sub(r'\1"' + _REDACTED + '"', raw)
    except ValueError:
        if '"ip"' in raw:
            return _IP_FIELD.sub(r'\1"' + _REDACTED + '"', raw)
        if "ip=" not in raw:
            return raw
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        if not any(key == "ip" for key, _ in pairs):
            return raw
        return urllib.parse.urlencode([(k, _REDACTED if k == "ip" else v) for k, v in pairs])
    return json.dumps(_without_ips(document)) if _has_ip(document) else raw


def _has_ip(value: Any) -> bool:
    if isinstance(value, dict):
        return "ip" in value or any(_has_ip(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_ip(v) for v in value)
    return False


def _without_ips(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (_REDACTED if k == "ip" else _without_ips(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ips(v) for v in value]
    return value
