"""The operator pages' door: a loopback Host, then the admin key (Bearer or Basic)."""

from __future__ import annotations

import base64

import pytest

from infra.local.operator_access import OperatorAccess

KEY = "local-admin-key"
ACCESS = OperatorAccess.served_at(KEY, "127.0.0.1", 8080)
BEARER = f"Bearer {KEY}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def status(access: OperatorAccess, host: str, authorization: str = "") -> int | None:
    headers = {"host": host, **({"authorization": authorization} if authorization else {})}
    refused = access.refusal(headers)
    return refused[0] if refused else None


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST:8080"]
)
def test_loopback_hosts_with_the_key_get_in(host: str) -> None:
    assert status(ACCESS, host, BEARER) is None
    assert status(ACCESS, host, basic("anyone", KEY)) is None
    assert status(ACCESS, host, basic("", KEY)) is None


@pytest.mark.parametrize(
    "host", ["evil.example:8080", "127.0.0.1:8081", "127.0.0.1", "localhost.evil.example:8080", ""]
)
def test_any_other_host_gets_421_even_with_the_key(host: str) -> None:
    assert status(ACCESS, host, BEARER) == 421


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer wrong", f"Basic {KEY}", basic(KEY, ""), "Basic !!!", f"Token {KEY}"],
)
def test_without_the_key_401_and_a_basic_challenge(authorization: str) -> None:
    refused = ACCESS.refusal({"host": "127.0.0.1:8080", "authorization": authorization})
    assert refused is not None
    assert refused[0] == 401
    assert refused[1]["WWW-Authenticate"] == 'Basic realm="Beacon"'


def test_a_bound_address_is_accepted_and_port_80_may_be_left_out() -> None:
    lan = OperatorAccess.served_at(KEY, "192.168.1.20", 8080)
    assert status(lan, "192.168.1.20:8080", BEARER) is None
    assert status(OperatorAccess.served_at(KEY, "0.0.0.0", 8080), "0.0.0.0:8080", BEARER) == 421
    assert status(OperatorAccess.served_at(KEY, "::1", 80), "[::1]", BEARER) is None


def test_the_guard_applies_only_where_told() -> None:
    def page(method: str, path: str, headers: dict[str, str], body: bytes):
        return 200, {}, b"page"

    guarded = ACCESS.guard(page, applies=lambda method, path: path.endswith("/received"))
    assert guarded("GET", "/_sink/a/received", {"host": "127.0.0.1:8080"}, b"")[0] == 401
    assert guarded("POST", "/_sink/a", {"host": "evil.example"}, b"")[0] == 200
