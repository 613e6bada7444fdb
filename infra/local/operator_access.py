"""Who may open the operator pages: the dashboard and the sinks' read/admin pages.

They show people's emails and let their caller reset the demo's receivers,
so they need the admin key, as the read API does: `Authorization: Bearer
<key>`, or HTTP Basic with the key as password (any user name), which a
browser prompts for. And they answer only under a loopback `Host` (the
address they are served on): a web page that rebinds its own name to
127.0.0.1 reaches the port, but under its own name, and gets 421.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

Response = tuple[int, dict[str, str], bytes]
Page = Callable[[str, str, dict[str, str], bytes], Response]
REALM = "Beacon"
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind


@dataclass(frozen=True)
class OperatorAccess:
    admin_key: str
    hosts: frozenset[str]  # accepted `Host` values, lower case, with the port

    @classmethod
    def served_at(cls, admin_key: str, host: str, port: int) -> OperatorAccess:
        """For pages served on host:port: the loopback names, and `host` itself when
        the user bound a particular address."""
        names = {"127.0.0.1", "localhost", "[::1]"}
        if host not in _WILDCARD_HOSTS:
            names.add(f"[{host}]" if ":" in host else host)
        hosts = {f"{name.lower()}:{port}" for name in names}
        if port == 80:  # a browser leaves the default port out
            hosts |= {name.lower() for name in names}
        return cls(admin_key, frozenset(hosts))

    def refusal(self, headers: dict[str, str]) -> Response | None:
        """421 for a foreign Host, 401 without the admin key; None lets the caller in."""
        if headers.get("host", "").strip().lower() not in self.hosts:
            return _answer(421, "Misdirected Request: operator pages answer on loopback only")
        if not self.authorized(headers.get("authorization", "")):
            answer = _answer(401, "Unauthorized: the admin key is required")
            answer[1]["WWW-Authenticate"] = f'Basic realm="{REALM}"'
            return answer
        return None

    def authorized(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.strip().partition(" ")
        offered: str | None = None
        if scheme.lower() == "bearer":
            offered = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            _, colon, password = decoded.partition(":")
            offered = password if colon else None
        if not offered:
            return False
        return hmac.compare_digest(offered.encode(), self.admin_key.encode())

    def guard(self, page: Page, applies: Callable[[str, str], bool] | None = None) -> Page:
        """`page` behind this access check; with `applies(method, path)`, only for the
        requests it names (the sinks' receivers keep their own auth)."""

        def guarded(method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
            if applies is None or applies(method, path):
                refused = self.refusal(headers)
                if refused is not None:
                    return refused
            return page(method, path, headers, body)

        return guarded


def _answer(status: int, message: str) -> Response:
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    return status, headers, json.dumps({"message": message}).encode()
