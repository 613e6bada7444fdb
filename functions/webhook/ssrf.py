"""Where a delivery may go: a guard against server-side request forgery.

A destination URL comes from configuration, but its host name resolves at send
time and can point anywhere, including the Lambda's own credential endpoint.
So every request is vetted just before it is sent:

* https only; plain http only with `allow_loopback_http` (the local stack) and
  then only to loopback addresses;
* the host name is resolved once, every address it resolves to is checked,
  and the sender connects to exactly those addresses (no second lookup that a
  rebinding DNS server could answer differently);
* refused: unspecified (0.0.0.0/8, ::), loopback (unless local), multicast,
  reserved, cloud metadata endpoints, and, unless the destination sets
  `allow_private_network`, private (RFC 1918, fc00::/7 unique-local, fec0::/10),
  carrier-grade NAT (100.64.0.0/10), link-local (169.254/16, fe80::/10) and any
  other address that is not globally routable. IPv4 addresses embedded in IPv6
  (IPv4-mapped ::ffff:a.b.c.d, 6to4, NAT64) are judged as the IPv4 address.
* Metadata endpoints are refused even with `allow_private_network`: no
  destination has a reason to reach them.

Redirects are never followed (see `sender`): a 3xx answer is reported as a
failed delivery naming its Location, so a redirect cannot lead past the guard.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's shape: (host, port) -> [(family, type, proto, canonname, sockaddr)].
Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]

# Instance metadata (IMDS, IPv4 and IPv6), the ECS task credentials endpoint and
# the EKS pod identity agent: each hands out the function's AWS credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedUrl(ValueError):
    """The URL may not be called; `address` is the address at fault, if any."""

    def __init__(self, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class ResolutionError(OSError):
    """The host name did not resolve (worth retrying: DNS fails transiently)."""


@dataclass(frozen=True)
class VettedUrl:
    url: str
    scheme: str  # "https" or "http"
    host: str  # as in the URL, without brackets: the Host header and the TLS server name
    port: int
    target: str  # path and query, what goes on the request line
    addresses: tuple[str, ...]  # the checked addresses to connect to, in resolver order


def system_resolver(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def vet_url(
    url: str,
    *,
    allow_private_network: bool = False,
    allow_loopback_http: bool = False,
    resolver: Resolver | None = None,
) -> VettedUrl:
    """Resolve and check `url`; raise BlockedUrl (or ResolutionError) if it may not be called."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise BlockedUrl(f"only https URLs are allowed, not {scheme or 'no scheme'!r}")
    if scheme == "http" and not allow_loopback_http:
        raise BlockedUrl("plain http is refused; use https")
    if parts.username is not None or parts.password is not None:
        raise BlockedUrl("credentials in the URL are not supported")
    host = parts.hostname
    if not host:
        raise BlockedUrl(f"{url!r} has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as err:
        raise BlockedUrl(f"{url!r} has an invalid port") from err
    try:
        answers = (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError) as err:
        raise ResolutionError(f"cannot resolve {host}: {err}") from err
    addresses = _unique_addresses(answers)
    if not addresses:
        raise ResolutionError(f"{host} resolved to no address")
    for address in addresses:
        problem = address_problem(
            address,
            allow_private_network=allow_private_network,
            allow_loopback=allow_loopback_http,
        )
        if problem:
            raise BlockedUrl(f"{host} resolves to {address}: {problem}", str(address))
        if scheme == "http" and not address.is_loopback:
            raise BlockedUrl(
                f"{host} resolves to {address}: plain http is only allowed to loopback addresses",
                str(address),
            )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return VettedUrl(url, scheme, host, port, target, tuple(str(a) for a in addresses))


def address_problem(
    address: IPAddress, *, allow_private_network: bool = False, allow_loopback: bool = False
) -> str | None:
    """Why `address` may not be connected to, or None if it may."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata endpoint (never allowed)"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(
            embedded, allow_private_network=allow_private_network, allow_loopback=allow_loopback
        )
        return f"IPv4-embedding address of {embedded}: {problem}" if problem else None
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified address"
    if address.is_loopback:
        return None if allow_loopback else "loopback address"
    if address.is_multicast:
        return "multicast address"
    if address.is_reserved:
        return "reserved address"
    if address.is_link_local:
        category = "link-local address"
    elif address in _CARRIER_GRADE_NAT:
        category = "carrier-grade NAT address (100.64.0.0/10)"
    elif any(address in network for network in _PRIVATE):
        category = "private address"
    elif not address.is_global:
        category = "address that is not globally routable"
    else:
        return None
    return None if allow_private_network else f"{category} (set allow_private_network to allow)"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unique_addresses(answers: Sequence[tuple[Any, ...]]) -> list[IPAddress]:
    seen: dict[IPAddress, None] = {}
    for answer in answers:
        sockaddr = answer[4]
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        try:
            seen[ipaddress.ip_address(text)] = None
        except ValueError:
            continue  # AF_UNIX or similar: nothing to connect to over TCP
    return list(seen)
