"""What the local gateway refuses before any function runs, as API Gateway does.

API Gateway (HTTP API) answers these itself: the function never sees them.
Locally each refusal also becomes a failed-events record (step `gateway`), so
"nothing lost" holds at the door too; the record is evidence only: the reason,
the path (no query string), a length, never the body, header values or the IP.
Deployed, the HTTP API's access log is the equivalent record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.failed_events import FailedEvent

# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # "Payload size: 10 MB"
MAX_REQUEST_LINE_AND_HEADERS_BYTES = 10_240  # "request line and header values: 10240 bytes"
STEP = "gateway"
_MAX_PATH_CHARS = 512  # a 414's path is evidence of its size, not worth keeping whole


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # the failed-events reason: machine-readable
    message: str  # for people; says the sizes, never a header's value
    path: str | None = None  # without the query string, which may carry keys or ids
    field: str | None = None  # what was at fault: "content-length", "headers", ...

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """API Gateway's own answer shape, and no reuse of a connection whose framing
        is in doubt."""
        body = json.dumps({"message": self.message}).encode()
        return self.status, {"Content-Type": "application/json", "Connection": "close"}, body

    def failed_event(self, at: datetime, request_id: str) -> FailedEvent:
        return FailedEvent(
            failed_at=at,
            step=STEP,
            reason=self.reason,
            message=self.message,
            raw="",
            field=self.field,
            path=self.path,
            request_id=request_id,
        )


def recorder(store: S3FailedEventStore) -> Callable[[Refusal], None]:
    """Keeps each refusal as one failed-events object under `gateway/dt=.../reason=.../`."""

    def record(refusal: Refusal) -> None:
        request_id = str(uuid.uuid4())
        store.put([refusal.failed_event(datetime.now(UTC), request_id)], request_id)

    return record


def path_of(target: str) -> str:
    """The request target's path, without its query string, bounded."""
    return target.split("?", 1)[0].split("#", 1)[0][:_MAX_PATH_CHARS]


def refusal_at_door(
    request_line: str, target: str, headers: Iterable[tuple[str, str]]
) -> Refusal | None:
    """The refusal for a request's head (request line and headers), or None to let it in.

    Checks, in API Gateway's order: the size of the request line and header
    values, then the body's framing (a Content-Length that is a plain number,
    one Transfer-Encoding we read, never both) and its declared size.
    """
    headers = list(headers)
    path = path_of(target)
    size = len(request_line) + sum(len(value) for _, value in headers)
    if size > MAX_REQUEST_LINE_AND_HEADERS_BYTES:
        return Refusal(
            431,
            "headers_too_large",
            f"Request Header Fields Too Large: the request line and header values are "
            f"{size} bytes; API Gateway allows {MAX_REQUEST_LINE_AND_HEADERS_BYTES}",
            path,
            "headers",
        )
    lengths = [value.strip() for name, value in headers if name.lower() == "content-length"]
    encodings = [value for name, value in headers if name.lower() == "transfer-encoding"]
    if encodings:
        return _transfer_encoding_refusal(encodings, has_length=bool(lengths), path=path)
    if not lengths:
        return None
    if len(set(lengths)) > 1 or not all(
        length.isdigit() and length.isascii() for length in lengths
    ):
        shown = ", ".join(repr(length[:20]) for length in lengths)
        return Refusal(
            400,
            "bad_content_length",
            f"Bad Request: Content-Length must be one non-negative number, got {shown}",
            path,
            "content-length",
        )
    declared = int(lengths[0])
    if declared > MAX_PAYLOAD_BYTES:
        return too_large(path, declared)
    return None


def too_large(path: str, length: int | None = None) -> Refusal:
    size = f"{length} bytes" if length is not None else "more than that"
    return Refusal(
        413,
        "payload_too_large",
        f"Request Entity Too Large: the body is {size}; API Gateway allows {MAX_PAYLOAD_BYTES}",
        path,
        "body",
    )


def _transfer_encoding_refusal(
    encodings: list[str], *, has_length: bool, path: str
) -> Refusal | None:
    codings = [c.strip().lower() for value in encodings for c in value.split(",") if c.strip()]
    if has_length:
        # Two framings for one body is how requests are smuggled past a proxy.
        return Refusal(
            400,
            "bad_content_length",
            "Bad Request: both Content-Length and Transfer-Encoding",
            path,
            "content-length",
        )
    if codings != ["chunked"]:
        return Refusal(
            501,
            "unsupported_transfer_encoding",
            f"Not Implemented: Transfer-Encoding {', '.join(codings)[:60]!r}; only chunked",
            path,
            "transfer-encoding",
        )
    return None


def unreadable_body(path: str, *, chunked: bool) -> Refusal:
    """A chunked body that breaks its framing, or one that ends before its Content-Length
    (the client went away: the answer may reach no one, the record still counts)."""
    if chunked:
        return Refusal(
            400, "malformed_chunked_body", "Bad Request: malformed chunked body", path, "body"
        )
    return Refusal(
        400,
        "incomplete_body",
        "Bad Request: the body ended before its Content-Length",
        path,
        "body",
    )


_PARSER_REFUSALS = {
    400: ("malformed_request", "Bad Request: the request line or a header is unreadable"),
    414: ("uri_too_long", "URI Too Long: the request line is over 65536 bytes"),
    431: (
        "headers_too_large",
        "Request Header Fields Too Large: a line over 65536 bytes, or over 100 header fields",
    ),
    505: ("http_version_not_supported", "HTTP Version Not Supported"),
}


def unreadable_request(status: int, target: str | None) -> Refusal:
    """What the HTTP parser itself refused: the request line, header syntax or count.

    The parser's own explanation quotes the request line; the record says only
    what kind of refusal it was."""
    reason, message = _PARSER_REFUSALS.get(status, ("malformed_request", f"HTTP {status}"))
    return Refusal(
        status,
        reason,
        message,
        path_of(target) if target else None,
        "headers" if status == 431 else "request-line",
    )
