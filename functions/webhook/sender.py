"""Send one prepared HTTP request, safely, and report what happened.

The URL is vetted by `ssrf.vet_url` and the connection goes to the vetted
addresses only (TLS still checks the certificate against the host name, which
is also the SNI and the Host header). Redirects are never followed: a 3xx comes
back as it is, for `outcomes.classify` to report. Nothing raises: every failure
is an `HttpResult` with `error_kind` set.

Timeouts: `connect_timeout` bounds opening the TCP connection (per address
tried); `total_timeout` bounds everything up to the last byte read, checked
before each read. The DNS lookup is not bounded (getaddrinfo cannot be), nor is
a server that trickles its status line and headers within the remaining time.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from functions.webhook.ssrf import BlockedUrl, ResolutionError, Resolver, VettedUrl, vet_url

ErrorKind = Literal["blocked", "dns", "timeout", "connection_refused", "tls", "network"]
MAX_BODY_BYTES = 64 * 1024  # enough for any error message or token; the rest is dropped
_CHUNK = 8192
_SECRET_HEADERS = frozenset({"authorization", "api-key", "webhook-signature"})


@dataclass(frozen=True)
class PreparedRequest:
    """One HTTP request ready to send, and the activations it carries."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    activation_ids: tuple[str, ...] = ()

    def loggable_headers(self) -> dict[str, str]:
        """The headers with credentials and signatures masked, for the delivery log."""
        return {k: "***" if k.lower() in _SECRET_HEADERS else v for k, v in self.headers.items()}


@dataclass(frozen=True)
class HttpResult:
    status: int | None  # None: no HTTP answer (see error_kind)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""  # at most MAX_BODY_BYTES
    latency_ms: float = 0.0
    error: str | None = None
    error_kind: ErrorKind | None = None
    address: str | None = None  # the IP connected to, if any


@cache
def default_tls_context() -> ssl.SSLContext:
    """One verifying TLS context per container: loading the CA store costs ~20 ms,
    far more than a delivery's own work."""
    return ssl.create_default_context()


def send(
    request: PreparedRequest,
    *,
    connect_timeout: float,
    total_timeout: float,
    allow_private_network: bool = False,
    allow_loopback_http: bool = False,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> HttpResult:
    started = clock()

    def elapsed_ms() -> float:
        return round((clock() - started) * 1000, 1)

    try:
        vetted = vet_url(
            request.url,
            allow_private_network=allow_private_network,
            allow_loopback_http=allow_loopback_http,
            resolver=resolver,
        )
    except BlockedUrl as err:
        return HttpResult(None, latency_ms=elapsed_ms(), error=str(err), error_kind="blocked")
    except ResolutionError as err:
        return HttpResult(None, latency_ms=elapsed_ms(), error=str(err), error_kind="dns")

    deadline = started + total_timeout
    connection = _PinnedConnection(
        vetted,
        connect_timeout=connect_timeout,
        remaining=lambda: deadline - clock(),
        ssl_context=ssl_context or default_tls_context(),
    )
    phase = "connect"
    try:
        connection.connect()
        phase = "request"
        headers = {"Connection": "close", **request.headers}
        connection.request(request.method, vetted.target, body=request.body, headers=headers)
        response = connection.getresponse()
        phase = "response"
        body = _read_body(connection, response, lambda: deadline - clock())
        return HttpResult(
            response.status,
            headers=_lower_headers(response.getheaders()),
            body=body,
            latency_ms=elapsed_ms(),
            address=connection.address,
        )
    except TimeoutError:
        limit = connect_timeout if phase == "connect" else total_timeout
        return _failed(
            f"timed out ({phase}) after {limit:g} s", "timeout", elapsed_ms(), connection
        )
    except ConnectionRefusedError as err:
        return _failed(f"connection refused: {err}", "connection_refused", elapsed_ms(), connection)
    except ssl.SSLError as err:  # certificate problems included
        return _failed(f"TLS: {err}", "tls", elapsed_ms(), connection)
    except (OSError, http.client.HTTPException) as err:
        return _failed(
            f"{type(err).__name__} ({phase}): {err}", "network", elapsed_ms(), connection
        )
    finally:
        connection.close()


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to the vetted addresses, never a fresh DNS lookup."""

    def __init__(
        self,
        vetted: VettedUrl,
        *,
        connect_timeout: float,
        remaining: Callable[[], float],
        ssl_context: ssl.SSLContext,
    ) -> None:
        super().__init__(vetted.host, vetted.port, timeout=connect_timeout)
        # Host header gets no ":443" for https on its default port.
        self.default_port = 443 if vetted.scheme == "https" else 80
        self._vetted = vetted
        self._connect_timeout = connect_timeout
        self._remaining = remaining
        self._ssl_context = ssl_context
        self.address: str | None = None

    def connect(self) -> None:
        last_error: OSError = OSError("no address to connect to")
        for address in self._vetted.addresses:
            try:
                sock = socket.create_connection(
                    (address, self._vetted.port), timeout=self._connect_timeout
                )
            except OSError as err:
                last_error = err
                continue
            self.address = address
            break
        else:
            raise last_error
        sock.settimeout(_positive(self._remaining()))
        if self._vetted.scheme == "https":
            sock = self._ssl_context.wrap_socket(sock, server_hostname=self._vetted.host)
        self.sock = sock


def _read_body(
    connection: _PinnedConnection,
    response: http.client.HTTPResponse,
    remaining: Callable[[], float],
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY_BYTES:
        if connection.sock is not None:
            connection.sock.settimeout(_positive(remaining()))
        # read1: one recv at most, so the deadline is checked between small reads.
        chunk = response.read1(min(_CHUNK, MAX_BODY_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise TimeoutError("total timeout reached")
    return seconds


def _lower_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _failed(
    message: str, kind: ErrorKind, latency_ms: float, connection: _PinnedConnection
) -> HttpResult:
    return HttpResult(
        None, latency_ms=latency_ms, error=message, error_kind=kind, address=connection.address
    )
