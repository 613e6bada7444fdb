"""The HTTP request as ingest's logic sees it, and the answer it gives.

Kept free of API Gateway's event shape (the handler translates) so the logic
is tested with plain values.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from functions.ingest.canonicalize import MAX_BATCH_BYTES, RequestMeta

# 1x1 transparent GIF, as Snowplow's collector answers the pixel.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "0",
}


@dataclass(frozen=True)
class HttpRequest:
    meta: RequestMeta
    method: str
    headers: dict[str, str]  # lower-case names
    query: dict[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: dict[str, Any]) -> HttpAnswer:
        return cls(status, json.dumps(payload).encode(), "application/json")

    @classmethod
    def pixel(cls) -> HttpAnswer:
        return cls(200, PIXEL_GIF, "image/gif", dict(NO_CACHE))


class BodyError(ValueError):
    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


def decode_body(body: bytes, content_encoding: str | None, limit: int = MAX_BATCH_BYTES) -> str:
    """The request body as text: gunzipped if needed, never more than `limit` bytes.

    Decompression stops one byte past the limit, so a small gzip bomb cannot
    make the function allocate gigabytes.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error as err:
            raise BodyError(400, "malformed_body", f"body is not valid {encoding} ({err})") from err
        if len(data) > limit or inflater.unconsumed_tail:
            raise BodyError(413, "payload_too_large", f"request body exceeds {limit} bytes")
    elif encoding in ("", "identity"):
        data = body
    else:
        raise BodyError(
            415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported"
        )
    if len(data) > limit:
        raise BodyError(413, "payload_too_large", f"request body exceeds {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(400, "malformed_body", "body is not UTF-8 text") from err


def raw_text(body: bytes) -> str:
    """Any body as storable text for failed events: UTF-8, else base64 of the bytes.

    Compressed bodies are kept compressed: inflating one that was refused for
    its size is exactly what must not happen.
    """
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode()


def parse_json_object(text: str) -> dict[str, Any] | str:
    """The body as a JSON object, or a sentence saying why it is not one."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        return f"body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    except (ValueError, RecursionError) as err:  # 4,300+ digit numbers, absurd nesting
        return f"body is not acceptable JSON ({type(err).__name__}: {str(err)[:120]})"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    return body


def write_key_from(request: HttpRequest, body: dict[str, Any] | None) -> str | None:
    """Segment's three places for a write key: Basic auth user, body, query string."""
    auth = request.header("authorization")
    if auth and auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        key = user.split(":", 1)[0]
        if key:
            return key
    if body is not None and isinstance(body.get("writeKey"), str) and body["writeKey"]:
        return str(body["writeKey"])
    return request.query.get("writeKey") or None
