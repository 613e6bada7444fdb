"""The HTTP request as ingest's logic sees it, and the answer it gives.

Kept free of API Gateway's event shape (the handler translates) so the logic
is tested with plain values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from functions.ingest.canonicalize import MAX_BATCH_BYTES, RequestMeta
from functions.shared import untrusted_json

# What is kept of a body ingest will not read whole (too large, no valid key).
EVIDENCE_PREFIX_BYTES = 1024

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


@dataclass(frozen=True)
class Evidence:
    """What a failed event keeps of a body: a prefix, with the whole body's length
    and SHA-256 when the prefix is not all of it."""

    text: str
    length: int | None = None
    sha256: str | None = None


def evidence(
    body: bytes, text: str | None = None, whole: bool = False, content_encoding: str | None = None
) -> Evidence:
    """`text` (the decoded body) whole if `whole`, else its first bytes, with the
    body's length and SHA-256.

    Without text (too large to inflate, not UTF-8) the first bytes are inflated
    (bounded) and kept as text with undecodable bytes replaced: never the
    compressed bytes themselves, whose IPs and keys no redaction could reach.
    """
    if text is not None and whole:
        return Evidence(text)
    prefix = (
        text.encode("utf-8")[:EVIDENCE_PREFIX_BYTES]
        if text is not None
        else _inflated_prefix(body, content_encoding)
    )
    readable = prefix.decode("utf-8", "ignore" if text is not None else "replace")
    if text is not None and len(body) <= EVIDENCE_PREFIX_BYTES and readable == text:
        return Evidence(text)
    return Evidence(readable, len(body), hashlib.sha256(body).hexdigest())


def _inflated_prefix(body: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        try:
            return zlib.decompressobj(wbits).decompress(body, EVIDENCE_PREFIX_BYTES)
        except zlib.error:
            pass
    return body[:EVIDENCE_PREFIX_BYTES]


def parse_json_object(text: str) -> dict[str, Any] | str:
    """The body as a JSON object, or a sentence saying why it is not one."""
    try:
        body = untrusted_json.loads(text)
    except json.JSONDecodeError as err:
        return f"body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    except (ValueError, RecursionError) as err:  # 4,300+ digit numbers, absurd nesting
        return f"body is not acceptable JSON ({type(err).__name__}: {str(err)[:120]})"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    return body


def write_key_from(request: HttpRequest, body: dict[str, Any] | None) -> str | None:
    """Segment's three places for a write key: Basic auth user, body, query string."""
    key = basic_auth_key(request)
    if key:
        return key
    if body is not None and isinstance(body.get("writeKey"), str) and body["writeKey"]:
        return str(body["writeKey"])
    return request.query.get("writeKey") or None


def basic_auth_key(request: HttpRequest) -> str | None:
    """The write key of `Authorization: Basic` (the user name), readable before the body."""
    auth = request.header("authorization")
    if not auth or auth[:6].lower() != "basic ":
        return None
    try:
        user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user.split(":", 1)[0] or None
