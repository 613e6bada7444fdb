"""A local API Gateway (HTTP API, payload format 2.0) in front of the real handlers.

Real HTTP requests become the events API Gateway would send, with the
routes of the wiring table; the handler's answer becomes the HTTP response.
Local-only pages (dashboard, webhook sinks) plug in as extra routes.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.local.invoke import LocalFunction
from infra.topology import HttpRoute

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded")


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


LocalPage = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class Gateway:
    def __init__(self, routes: list[BoundRoute], pages: dict[str, LocalPage] | None = None) -> None:
        # API Gateway prefers exact routes over greedy ones.
        self.routes = sorted(routes, key=lambda r: r.greedy)
        self.pages = pages or {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> int:
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle and the
            # client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                gateway.serve(self)

            do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_HEAD = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the handlers log; access logs would drown the console

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            _write(
                request,
                413,
                {"Content-Type": "application/json"},
                b'{"message":"Request Entity Too Large"}',
            )
            request.close_connection = True
            return
        body = request.rfile.read(length) if length else b""
        method = request.command
        headers = {k.lower(): v for k, v in request.headers.items()}
        for prefix, page in self.pages.items():
            # "/" is the root page only; any other prefix also takes what is under it.
            under = prefix != "/" and parsed.path.startswith(prefix.rstrip("/") + "/")
            if parsed.path == prefix or under:
                status, out_headers, out_body = page(method, request.path, headers, body)
                _write(request, status, out_headers, out_body)
                return
        for bound in self.routes:
            params = bound.matches(method, parsed.path)
            if params is not None:
                event = api_gateway_event(bound.key, request, parsed, body, params)
                try:
                    result = bound.function.invoke(event)
                except Exception:
                    _write(
                        request,
                        500,
                        {"Content-Type": "application/json"},
                        b'{"message":"Internal Server Error"}',
                    )
                    return
                _write(request, *lambda_response(result))
                return
        _write(request, 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')


def api_gateway_event(
    route_key: str,
    request: BaseHTTPRequestHandler,
    url: urllib.parse.SplitResult,
    body: bytes,
    path_parameters: dict[str, str],
) -> dict[str, Any]:
    """The event for a real HTTP request: headers and query joined as API Gateway does."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers.items():
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return http_api_event(
        request.command,
        url.path,
        route_key=route_key,
        headers=headers,
        query=query,
        raw_query=url.query,
        body=body,
        source_ip=request.client_address[0],
        protocol=request.request_version,
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


def _write(
    request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    request.send_response(
        status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    )
    for name, value in headers.items():
        if name.lower() != "content-length":
            request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
