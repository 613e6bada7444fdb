"""A local API Gateway (HTTP API, payload format 2.0) in front of the real handlers.

Real HTTP requests become the events API Gateway would send, with the
routes of the wiring table; the handler's answer becomes the HTTP response.
Local-only pages (dashboard, webhook sinks) plug in as extra routes.

HTTP itself is werkzeug's (request line, headers, chunked bodies); what API
Gateway refuses before any function runs is refused here too (`door.py`),
answered as API Gateway answers and recorded as a failed event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import selectors
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, cast

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import get_input_stream

from infra.local.door import (
    MAX_PAYLOAD_BYTES,
    Refusal,
    path_of,
    refusal_at_door,
    too_large,
    unreadable_body,
    unreadable_request,
)
from infra.local.invoke import LocalFunction
from infra.topology import HttpRoute

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "BoundRoute",
    "Gateway",
    "LocalPage",
    "api_gateway_event",
    "http_api_event",
    "lambda_response",
]

logger = logging.getLogger(__name__)

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded")
# A kept-alive connection silent this long is closed (a client that opens one and
# sends nothing, or half a body, holds a thread no longer than this).
IDLE_TIMEOUT_S = 120.0
# After a refusal the rest of the request is read and dropped for up to this long,
# so the client sees the answer rather than a reset connection.
_LINGER_S = 2.0

Response = tuple[int, dict[str, str], bytes]
LocalPage = Callable[[str, str, dict[str, str], bytes], Response]
RecordRefusal = Callable[[Refusal], None]


@dataclass(frozen=True)
class BoundRoute:
    route: HttpRoute
    function: LocalFunction

    @property
    def key(self) -> str:
        return f"{self.route.method} {self.route.path}"

    def matches(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method):
            return None
        pattern = "^"
        for part in re.split(r"(\{[^}]+\})", self.route.path):
            if part.startswith("{") and part.endswith("+}"):
                pattern += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                pattern += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                pattern += re.escape(part)
        found = re.match(pattern + "$", path)
        return found.groupdict() if found else None

    @property
    def greedy(self) -> bool:
        return "+}" in self.route.path


class Gateway:
    """A WSGI application (routes, then local pages) and the werkzeug server that runs it.

    `record_refusal` keeps what was refused at the door (locally: a failed-events
    record); without it refusals are answered and only logged.
    """

    def __init__(
        self,
        routes: list[BoundRoute],
        pages: dict[str, LocalPage] | None = None,
        record_refusal: RecordRefusal | None = None,
    ) -> None:
        # API Gateway prefers exact routes over greedy ones.
        self.routes = sorted(routes, key=lambda r: r.greedy)
        self.pages = pages if pages is not None else {}
        self._record_refusal = record_refusal
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    # -- the server -------------------------------------------------------------------------

    def start(self, host: str, port: int) -> int:
        """Serve on host:port (0: any free port); returns the port."""
        try:
            server = make_server(host, port, self, threaded=True, request_handler=_Handler)
        except SystemExit as exit_:  # werkzeug prints why and exits; a library raises
            raise OSError(f"cannot serve on {host}:{port}") from exit_
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"gateway-{server.port}", daemon=True
        )
        self._thread.start()
        return int(server.port)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # kept-alive clients: no more answers
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def refused(self, refusal: Refusal) -> None:
        logger.info("refused at the door: %s %s", refusal.status, refusal.reason)
        if self._record_refusal is None:
            return
        try:
            self._record_refusal(refusal)
        except Exception:  # the answer does not depend on the record
            logger.exception("could not record a refusal (%s)", refusal.reason)

    # -- the application --------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        status, headers, body = self.answer(environ)
        fields = [(k, v) for k, v in headers.items() if k.lower() != "content-length"]
        start_response(f"{status} {_phrase(status)}", [*fields, ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, environ: dict[str, Any]) -> Response:
        target = _request_target(environ)
        path = urllib.parse.urlsplit(target).path
        try:
            # One byte over the limit: werkzeug stops a chunked body at its limit without
            # saying whether more followed. A Content-Length over it never gets here.
            stream = get_input_stream(environ, max_content_length=MAX_PAYLOAD_BYTES + 1)
            body = stream.read()
        except RequestEntityTooLarge:
            return self._refuse(too_large(path_of(target)))
        except ClientDisconnected:
            chunked = "wsgi.input_terminated" in environ
            return self._refuse(unreadable_body(path_of(target), chunked=chunked))
        if len(body) > MAX_PAYLOAD_BYTES:
            return self._refuse(too_large(path_of(target)))
        method = environ["REQUEST_METHOD"]
        headers = _headers(environ)
        for prefix, page in list(self.pages.items()):  # pages may be added while serving
            # "/" is the root page only; any other prefix also takes what is under it.
            under = prefix != "/" and path.startswith(prefix.rstrip("/") + "/")
            if path == prefix or under:
                return page(method, target, _joined(headers), body)
        for bound in self.routes:
            params = bound.matches(method, path)
            if params is not None:
                event = api_gateway_event(
                    bound.key,
                    method,
                    target,
                    headers,
                    body,
                    params,
                    source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1")),
                    protocol=str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
                )
                try:
                    result = bound.function.invoke(event)
                except Exception:
                    logger.exception("%s failed", bound.function.spec.name)
                    return _json(500, "Internal Server Error")
                return lambda_response(result)
        return _json(404, "Not Found")

    def _refuse(self, refusal: Refusal) -> Response:
        self.refused(refusal)
        return refusal.answer()


class _Handler(WSGIRequestHandler):
    """werkzeug's request handler, with keep-alive and API Gateway's door.

    werkzeug's own `run_wsgi` closes every connection after one answer: it
    cannot know whether the application read the whole body. This gateway
    always does (or refuses, and closes), so connections are kept alive, as
    the simulator and the benches expect of API Gateway.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and the
    # client's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S

    @property
    def gateway(self) -> Gateway:
        return cast(Gateway, self.server.app)

    def setup(self) -> None:
        super().setup()
        self.gateway.opened(self.connection)

    def finish(self) -> None:
        self.gateway.closed(self.connection)
        super().finish()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False  # the parser refused, through send_error below
        refusal = refusal_at_door(self.requestline, self.path, self.headers.items())
        if refusal is None:
            return True
        self.gateway.refused(refusal)
        self._answer(*refusal.answer())
        return False

    def handle_expect_100(self) -> bool:
        return True  # "100 Continue" only once the door let the request in (run_wsgi)

    def send_error(
        self,
        code: int,
        message: str | None = None,  # noqa: ARG002 - quotes the request line: not recorded
        explain: str | None = None,  # noqa: ARG002
    ) -> None:
        words = self.requestline.split()
        refusal = unreadable_request(int(code), words[1] if len(words) >= 2 else None)
        # An unreadable version leaves http.server at HTTP/0.9, which answers without a
        # status line; API Gateway answers HTTP/1.1.
        self.request_version = self.protocol_version
        self.gateway.refused(refusal)
        self._answer(*refusal.answer())

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        started: list[Any] = []

        def start_response(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: Any = None,  # noqa: ARG001 - the answer is sent whole, after the app
        ) -> Any:
            started[:] = [status, headers]
            return written.append

        written: list[bytes] = []
        try:
            chunks = self.server.app(environ, start_response)
            written.extend(chunks)
            status, headers = started
        except Exception:
            logger.exception("the gateway failed on a request")
            status, headers = "500 Internal Server Error", [("Connection", "close")]
            written = [b'{"message":"Internal Server Error"}']
        code, _, phrase = str(status).partition(" ")
        self._answer(int(code), dict(headers), b"".join(written), phrase)

    def _answer(self, status: int, headers: dict[str, str], body: bytes, phrase: str = "") -> None:
        self.send_response(status, phrase or _phrase(status))
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)  # "Connection: close" ends the connection
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        if self.close_connection:
            self._linger()

    def _linger(self) -> None:
        """Half-close, then read and drop what the client still sends: closing a socket
        with unread input resets it, and the client could lose the answer."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_S
            with selectors.DefaultSelector() as selector:
                selector.register(self.connection, selectors.EVENT_READ)
                while time.monotonic() < deadline and selector.select(timeout=0.1):
                    if not self.connection.recv(65536):
                        break
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the handlers log; access logs would drown the console

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug("%s: " + message, type, *args)  # idle timeouts, dropped clients


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""


def _json(status: int, message: str) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()


def _request_target(environ: dict[str, Any]) -> str:
    """The request target as the client sent it (path and query, not decoded)."""
    raw = environ.get("REQUEST_URI")
    if isinstance(raw, str):
        # WSGI strings are latin-1; werkzeug encoded the target's str as UTF-8 into them.
        return raw.encode("latin-1").decode("utf-8", "replace")
    query = environ.get("QUERY_STRING", "")
    path = urllib.parse.quote(environ.get("PATH_INFO", "/").encode("latin-1"))
    return f"{path}?{query}" if query else path


def _headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers, lower-cased, repeated ones already joined with ","."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers.append((key.replace("_", "-").lower(), str(value)))
    return headers


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def api_gateway_event(
    route_key: str,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    path_parameters: dict[str, str],
    *,
    source_ip: str,
    protocol: str,
) -> dict[str, Any]:
    """The event for a real HTTP request: headers and query joined as API Gateway does."""
    url = urllib.parse.urlsplit(target)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    # API Gateway says how the client reached it (https deployed); locally plain http.
    joined["x-forwarded-proto"] = "http"
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return http_api_event(
        method,
        url.path,
        route_key=route_key,
        headers=joined,
        query=query,
        raw_query=url.query,
        body=body,
        source_ip=source_ip,
        protocol=protocol,
        cookies=cookies,
        path_parameters=path_parameters,
    )


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str = "$default",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    raw_query: str | None = None,
    body: bytes = b"",
    base64_body: bool | None = None,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    cookies: list[str] | None = None,
    path_parameters: dict[str, str] | None = None,
    epoch_s: float | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event.

    Used by the local gateway for real requests, and by tests and benchmarks that
    call a handler directly. The body is base64-encoded as API Gateway does it
    (anything compressed or not text) unless `base64_body` says otherwise.
    """
    headers = headers or {}
    now = time.time() if epoch_s is None else epoch_s
    if base64_body is None:
        content_type = headers.get("content-type", "")
        textual = not headers.get("content-encoding") and (
            not content_type or content_type.startswith(_TEXT_TYPES)
        )
        base64_body = not (textual and _is_utf8(body))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": (
            raw_query if raw_query is not None else urllib.parse.urlencode(query or {})
        ),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": base64_body,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = base64.b64encode(body).decode() if base64_body else body.decode("utf-8")
    return event


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def lambda_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """A payload-2.0 Lambda answer as API Gateway turns it into HTTP."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(str(v) for v in values)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    if result.get("cookies"):
        headers["Set-Cookie"] = "; ".join(result["cookies"])
    return int(result["statusCode"]), headers, body
