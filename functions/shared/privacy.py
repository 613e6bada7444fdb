"""Raw IP addresses and write keys never leave ingest.

Events: every field named `ip` (any case, any depth, however the key was
escaped in the JSON) is truncated, hashed or dropped before the event exists.
Failed events: the raw input kept as evidence has its IPs and write keys
redacted in every form ingest can read — JSON (parsed, so `"\\u0069p"` is
caught), query strings, and text that is neither (a prefix of a refused
body), where any IP literal is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, Literal

from functions.shared.untrusted_json import dumps, loads, rewrite

IpHandling = Literal["truncate", "hash", "drop"]
IpAnonymizer = Callable[[str | None], str | None]

IP_REMOVED = "[ip removed]"
WRITE_KEY_REMOVED = "[write key removed]"
_SECRET_KEYS = {"ip": IP_REMOVED, "writekey": WRITE_KEY_REMOVED}


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


def is_ip_field(key: str) -> bool:
    return key.lower() == "ip"


def anonymize_nested_ips(value: Any, anonymize: IpAnonymizer) -> Any:
    """A copy of `value` with every `ip` field (any depth) anonymized, or dropped
    when it is not an address (or the handling keeps nothing)."""

    def on_key(key: str, child: Any) -> tuple[bool, Any]:
        if not is_ip_field(key):
            return True, child
        kept = anonymize(child) if isinstance(child, str) else None
        return kept is not None, kept

    return rewrite(value, on_key)


def redact_raw(raw: str) -> str:
    """`raw` (kept in failed events) without IPs and write keys, in any form."""
    try:
        document = loads(raw)
    except (ValueError, RecursionError):
        document = None
    else:
        if not isinstance(document, dict | list):
            document = None
    if document is not None:
        found = False

        def on_key(key: str, child: Any) -> tuple[bool, Any]:
            nonlocal found
            replacement = _SECRET_KEYS.get(key.lower())
            if replacement is None:
                return True, child
            found = True
            return True, replacement

        redacted = rewrite(document, on_key)
        return dumps(redacted) if found else raw
    if _looks_like_query(raw):
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        if any(k.lower() in _SECRET_KEYS for k, _ in pairs):
            raw = urllib.parse.urlencode([(k, _SECRET_KEYS.get(k.lower(), v)) for k, v in pairs])
        return _without_ip_literals(raw)
    return _without_ip_literals(_without_secret_pairs(raw))


def _looks_like_query(raw: str) -> bool:
    return "=" in raw and not raw.lstrip().startswith(("{", "["))


# A JSON string key and its string value, escapes included: `"\u0069p" : "1.2.3.4"`.
_PAIR = re.compile(r'"((?:[^"\\]|\\.){1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


def _without_secret_pairs(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        try:
            key = json.loads(f'"{match[1]}"')
        except ValueError:
            return match[0]
        replacement = _SECRET_KEYS.get(key.lower()) if isinstance(key, str) else None
        if replacement is None:
            return match[0]
        return f'"{match[1]}"{match[2]}"{replacement}"'

    return _PAIR.sub(replace, text)


_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")


def _without_ip_literals(text: str) -> str:
    """Text that could not be parsed (a cut-off prefix, broken JSON): any IP literal
    goes, whatever field it was in. A version string shaped like an address
    (`1.2.3.4`) goes too: failed events are evidence, not data."""

    def replace(match: re.Match[str]) -> str:
        try:
            ipaddress.ip_address(match[0])
        except ValueError:
            return match[0]
        return IP_REMOVED

    return _IPV6.sub(replace, _IPV4.sub(replace, text))
