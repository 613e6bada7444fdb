"""Finding 9: the operator pages (dashboard, sink read/admin pages) against strangers.

On main before issue 13 the dashboard and the sink pages answered anyone, with
any `Host` (a DNS-rebinding page could read them): every 401 and 421 below was
a 200. They now need the admin key (Bearer, or Basic with the key as password)
and a loopback `Host`; the sinks' receiving endpoints keep their own auth.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator

import pytest

from functions.shared.config import load_config
from functions.shared.destinations import BrazeDestination
from infra.local.destinations import local_secret_value
from tests.e2e.conftest import ROOT, RunningStack, free_port

pytestmark = pytest.mark.e2e

ADMIN_KEY = "local-admin-key"
BEARER = {"Authorization": f"Bearer {ADMIN_KEY}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"operator:{ADMIN_KEY}".encode()).decode()}
WRONG = {"Authorization": "Bearer not-the-admin-key"}

DASHBOARD_PAGES = [("GET", "/"), ("GET", "/dashboard/profile?ref=email:ana@example.org")]
SINK_PAGES = [
    ("GET", "/_sink/crm-webhook/received"),
    ("DELETE", "/_sink/hostile-probe"),
    ("POST", "/_sink/hostile-probe/faults"),
]


def call(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.port
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        answer = connection.getresponse()
        answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}
    finally:
        connection.close()


def body_for(method: str) -> bytes | None:
    return b"[]" if method == "POST" else None  # an empty fault script


@pytest.mark.parametrize(("method", "path"), DASHBOARD_PAGES + SINK_PAGES)
def test_operator_pages_need_the_admin_key(stack: RunningStack, method: str, path: str) -> None:
    status, headers = call(stack.url, method, path, {}, body_for(method))
    assert status == 401
    assert headers["www-authenticate"] == 'Basic realm="Beacon"'  # a browser prompts
    assert call(stack.url, method, path, WRONG, body_for(method))[0] == 401
    for credentials in (BEARER, BASIC):
        status, _ = call(stack.url, method, path, credentials, body_for(method))
        assert status in (200, 204), (credentials, status)


@pytest.mark.parametrize(("method", "path"), DASHBOARD_PAGES + SINK_PAGES)
def test_operator_pages_refuse_a_foreign_host(stack: RunningStack, method: str, path: str) -> None:
    """A DNS-rebinding page reaches the loopback port under its own name: 421."""
    rebound = {**BEARER, "Host": f"evil.example:{urllib.parse.urlsplit(stack.url).port}"}
    assert call(stack.url, method, path, rebound, body_for(method))[0] == 421
    port = urllib.parse.urlsplit(stack.url).port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        status, _ = call(stack.url, method, path, {**BEARER, "Host": host}, body_for(method))
        assert status in (200, 204), host


def test_sink_receivers_keep_their_own_auth(stack: RunningStack) -> None:
    """The sinks play Braze and friends: no admin key, their own API key.

    The guard against over-reaching: this one passed before the fix too."""
    config = load_config(ROOT / "beacon.yaml")
    [braze] = [d for d in config.destinations if isinstance(d, BrazeDestination)]
    event = {"external_id": "hostile-1", "name": "probe", "time": "2026-01-01T00:00:00Z"}
    body = json.dumps({"events": [event]}).encode()
    json_type = {"Content-Type": "application/json"}
    rest_key = {"Authorization": f"Bearer {local_secret_value(braze)}", **json_type}
    assert call(stack.url, "POST", "/_sink/braze/users/track", rest_key, body)[0] == 201
    assert call(stack.url, "POST", "/_sink/braze/users/track", json_type, body)[0] == 401


@pytest.fixture(scope="module")
def deployed_dashboard(stack: RunningStack) -> Iterator[str]:
    """`beacon dashboard` as an operator runs it against a deployed stack (here, the local one)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "dashboard",
            "--endpoint",
            stack.url,
            "--aws-endpoint",
            stack.aws_endpoint,
            "--admin-key",
            ADMIN_KEY,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        assert "Beacon dashboard on" in line, line + process.stdout.read()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(2)
        process.wait(timeout=20)


def test_beacon_dashboard_needs_the_admin_key_and_a_loopback_host(deployed_dashboard: str) -> None:
    port = urllib.parse.urlsplit(deployed_dashboard).port
    assert call(deployed_dashboard, "GET", "/", {})[0] == 401
    rebound = {**BEARER, "Host": f"evil.example:{port}"}
    assert call(deployed_dashboard, "GET", "/", rebound)[0] == 421
    assert call(deployed_dashboard, "GET", "/", BEARER)[0] == 200
    assert call(deployed_dashboard, "GET", "/", BASIC)[0] == 200
