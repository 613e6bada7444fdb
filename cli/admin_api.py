"""The read/admin API (local or deployed), over HTTP like any client, with the admin key.

The one client the `beacon` verbs (`profile`, `consent`, `segments`, ...) and
the dashboard share.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from cli import defaults


@dataclass(frozen=True)
class AdminApi:
    url: str
    admin_key: str
    timeout_s: float = 30

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"--endpoint must be an http(s) URL, got {self.url!r}")

    def request(self, method: str, path: str) -> Any:
        """The JSON answer; urllib's HTTPError for a 4xx or 5xx."""
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
            self.url.rstrip("/") + path,
            method=method,
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
            return json.loads(answer.read())

    def get(self, path: str) -> dict[str, Any] | None:
        """GET `path`; None for a 404 (nobody by that name)."""
        try:
            data: dict[str, Any] = self.request("GET", path)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise
        return data


def profile_path(ref: str, view: str = "") -> str:
    """`/v1/profiles/<type:value>[/view]`, the identifier quoted for the path."""
    return f"/v1/profiles/{urllib.parse.quote(ref, safe=':@')}{view}"


# --- for the verbs -------------------------------------------------------------------


def admin_arguments(parser: argparse.ArgumentParser, endpoint_help: str | None = None) -> None:
    """Where the read/admin API answers, and its key: the local stack's by default."""
    parser.add_argument("--endpoint", default=defaults.ENDPOINT, help=endpoint_help)
    parser.add_argument("--admin-key", default=defaults.ADMIN_KEY)


def print_answer(args: argparse.Namespace, method: str, path: str) -> int:
    """Call the API named by --endpoint/--admin-key and print its JSON answer (status 0),
    or the error it answered on stderr (status 1)."""
    try:
        api = AdminApi(args.endpoint, args.admin_key)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    try:
        print(json.dumps(api.request(method, path), indent=2))
    except urllib.error.HTTPError as err:
        print(f"{err.code}: {err.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    return 0
