"""The SSRF guard, with a fake resolver (no DNS)."""

from __future__ import annotations

import ipaddress

import pytest

from functions.webhook.ssrf import BlockedUrl, ResolutionError, address_problem, vet_url
from tests.unit.webhook.factories import resolver_to

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("10.1.2.3", "private address"),
        ("172.16.0.1", "private address"),
        ("172.31.255.255", "private address"),
        ("192.168.1.1", "private address"),
        ("127.0.0.1", "loopback address"),
        ("127.8.9.10", "loopback address"),
        ("169.254.169.254", "cloud metadata endpoint"),
        ("169.254.170.2", "cloud metadata endpoint"),
        ("169.254.10.10", "link-local address"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified address"),
        ("0.1.2.3", "unspecified address"),
        ("224.0.0.1", "multicast address"),
        ("240.0.0.1", "reserved address"),
        ("255.255.255.255", "reserved address"),
        ("192.0.2.10", "not globally routable"),  # documentation range
        ("::1", "loopback address"),
        ("::", "unspecified address"),
        ("fe80::1", "link-local address"),
        ("fc00::1", "private address"),
        ("fd12:3456::1", "private address"),
        ("fd00:ec2::254", "cloud metadata endpoint"),
        ("ff02::1", "multicast address"),
        ("::ffff:10.0.0.1", "IPv4-embedding address of 10.0.0.1: private address"),
        ("::ffff:169.254.169.254", "cloud metadata endpoint"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("2002:a00:1::1", "IPv4-embedding address of 10.0.0.1"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "cloud metadata endpoint"),  # NAT64 of 169.254.169.254
    ],
)
def test_refused_addresses(address, problem):
    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


def test_allow_private_network_unlocks_private_ranges_but_never_metadata():
    allowed = ["10.0.0.1", "172.20.0.1", "192.168.0.9", "100.64.1.1", "fd00::5", "169.254.1.1"]
    for address in allowed:
        assert address_problem(ipaddress.ip_address(address), allow_private_network=True) is None
    for never in ["169.254.169.254", "fd00:ec2::254", "0.0.0.0", "224.0.0.1", "127.0.0.1"]:
        assert address_problem(ipaddress.ip_address(never), allow_private_network=True)


def test_dns_names_resolving_to_private_ranges_are_refused():
    with pytest.raises(BlockedUrl, match=r"internal\.example\.com resolves to 10\.0\.0\.7") as err:
        vet_url("https://internal.example.com/hook", resolver=resolver_to("10.0.0.7"))
    assert err.value.address == "10.0.0.7"
    # One bad answer among good ones is enough to refuse.
    with pytest.raises(BlockedUrl, match=r"169\.254\.169\.254"):
        vet_url("https://mixed.example.com", resolver=resolver_to(PUBLIC, "169.254.169.254"))
    with pytest.raises(BlockedUrl, match="fe80::1"):
        vet_url("https://v6.example.com", resolver=resolver_to("fe80::1%eth0"))


def test_vetted_url_pins_the_addresses():
    other = "2606:4700::6810:85e5"
    vetted = vet_url(
        "https://Hooks.Example.com:8443/in?x=1", resolver=resolver_to(PUBLIC, PUBLIC, other)
    )
    assert vetted.host == "hooks.example.com"
    assert vetted.port == 8443
    assert vetted.target == "/in?x=1"
    assert vetted.addresses == (PUBLIC, other)  # duplicates dropped, order kept
    assert vet_url("https://h.example.com", resolver=resolver_to(PUBLIC, PUBLIC)).target == "/"


def test_ip_literals_are_checked_too():
    with pytest.raises(BlockedUrl, match="loopback"):
        vet_url("https://127.0.0.1/", resolver=resolver_to("127.0.0.1"))
    with pytest.raises(BlockedUrl, match=r"IPv4-embedding address of 10\.0\.0\.1"):
        vet_url("https://[::ffff:10.0.0.1]/", resolver=resolver_to("::ffff:10.0.0.1"))


def test_plain_http_is_refused():
    with pytest.raises(BlockedUrl, match="plain http is refused"):
        vet_url("http://hooks.example.com/", resolver=resolver_to(PUBLIC))
    with pytest.raises(BlockedUrl, match="only https"):
        vet_url("ftp://hooks.example.com/", resolver=resolver_to(PUBLIC))
    with pytest.raises(BlockedUrl, match="credentials"):
        vet_url("https://u:p@hooks.example.com/", resolver=resolver_to(PUBLIC))


def test_local_stack_may_use_http_to_loopback_only():
    vetted = vet_url(
        "http://127.0.0.1:8080/_sink/hooks",
        allow_loopback_http=True,
        resolver=resolver_to("127.0.0.1"),
    )
    assert vetted.scheme == "http" and vetted.port == 8080 and vetted.addresses == ("127.0.0.1",)
    with pytest.raises(BlockedUrl, match="only allowed to loopback"):
        vet_url("http://hooks.example.com/", allow_loopback_http=True, resolver=resolver_to(PUBLIC))
    with pytest.raises(BlockedUrl, match="private"):
        vet_url("http://10.0.0.1/", allow_loopback_http=True, resolver=resolver_to("10.0.0.1"))


def test_resolution_failures_are_their_own_error():
    def failing(host: str, port: int) -> list[tuple[object, ...]]:
        raise OSError("Name or service not known")

    with pytest.raises(ResolutionError, match=r"cannot resolve nowhere\.example"):
        vet_url("https://nowhere.example/", resolver=failing)
    with pytest.raises(ResolutionError, match="no address"):
        vet_url("https://empty.example/", resolver=resolver_to())
