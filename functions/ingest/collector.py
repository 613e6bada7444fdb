"""Ingest's logic: one HTTP request in, events durably in the stream, an honest answer out.

Every event that arrives ends in exactly one place: the `events` stream, or
the failed-events store with its reason. An answer of 200 means the accepted
events are in Kinesis; when they cannot be written the answer is 503 and the
client retries (the pipeline drops the duplicate by `messageId`).

Answers (documented in docs/ingest.md):
- Segment JSON calls: 200 `{"success": true}` when every event was accepted;
  200 with `accepted` and a `rejected` list when some were; 400 with the list
  when none were; 401 unknown write key; 413 too large; 503 storage down.
- Snowplow tp2: 200 with the same counts (trackers only look at the status).
- Snowplow pixel: always the 1x1 GIF (503 status if storage is down).
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.ingest.canonicalize import (
    EVENT_TOO_LARGE,
    MAX_EVENT_BYTES,
    MAX_RECORD_BYTES,
    MAX_WRITTEN_PER_REQUEST,
    REQUEST_WRITES_TOO_MUCH,
    Parsed,
    Rejection,
)
from functions.ingest.consent_api import parse_consent_call
from functions.ingest.enrich import EnrichOptions, enrich_event, options_by_source
from functions.ingest.http import (
    BodyError,
    Evidence,
    HttpAnswer,
    HttpRequest,
    basic_auth_key,
    decode_body,
    evidence,
    parse_json_object,
    write_key_from,
)
from functions.ingest.segment import BATCH_CALLS, parse_segment
from functions.ingest.snowplow import parse_pixel, parse_tp2
from functions.shared.config import BeaconConfig
from functions.shared.failed_events import FailedEvent
from functions.shared.ports import FailedEventsPort, StreamPort
from functions.shared.privacy import IpAnonymizer, redact_raw
from functions.shared.streams import StreamRecord


@dataclass
class Collected:
    """What one request came to: the answer, and the tally for metrics."""

    answer: HttpAnswer
    accepted: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # reason -> events stored as failed
    unstored: int = 0  # failures the store refused: the client was told to retry


@dataclass
class Collector:
    config: BeaconConfig
    source_for_write_key: Callable[[str], str | None]
    events: StreamPort
    failed_events: FailedEventsPort
    anonymize_ip: IpAnonymizer
    config_dir: Path | None = None  # where beacon.yaml is: its geoip_database is relative
    enrich_options: dict[str, EnrichOptions] = field(init=False)

    def __post_init__(self) -> None:
        self.enrich_options = options_by_source(
            self.config.ingest.enrichment, self.config.sources, self.config_dir
        )

    # --- Segment HTTP Tracking API -------------------------------------------

    def segment(self, call: str, request: HttpRequest) -> Collected:
        opened = self._open_json(request, single_event=call not in BATCH_CALLS)
        if isinstance(opened, Collected):
            return opened
        body, source = opened
        parsed = parse_segment(
            call, body, source_name=source, meta=request.meta, anonymize_ip=self.anonymize_ip
        )
        return self._accept(request, parsed, _segment_answer)

    def consent(self, request: HttpRequest) -> Collected:
        """`POST /v1/consent` from a consent-management platform (write key required)."""
        opened = self._open_json(request, single_event=True)
        if isinstance(opened, Collected):
            return opened
        body, source = opened
        parsed = parse_consent_call(
            body, source_name=source, meta=request.meta, anonymize_ip=self.anonymize_ip
        )
        return self._accept(request, parsed, _segment_answer)

    def _open_json(
        self, request: HttpRequest, single_event: bool
    ) -> tuple[dict[str, Any], str] | Collected:
        """The JSON body and the source its write key names, or the refusal.

        A key in the Authorization header is checked before the body is read; a
        body refused before a valid key is known is kept only as evidence.
        """
        source: str | None = None
        header_key = basic_auth_key(request)
        if header_key is not None:
            source = self.source_for_write_key(header_key)
            if source is None:
                return self._refuse_request(request, 401, "unauthorized", "unknown write key")
        trusted = source is not None
        try:
            text = decode_body(request.body, request.header("content-encoding"))
        except BodyError as err:
            return self._refuse_request(request, err.status, err.reason, str(err))
        if single_event and len(text.encode("utf-8")) > MAX_EVENT_BYTES:
            return self._refuse_request(
                request, 413, EVENT_TOO_LARGE, f"event is larger than {MAX_EVENT_BYTES} bytes"
            )
        body = parse_json_object(text)
        if isinstance(body, str):
            return self._refuse_request(request, 400, "malformed_body", body, text, trusted)
        if source is None:
            key = write_key_from(request, body)
            source = self.source_for_write_key(key) if key else None
        if source is None:
            message = "unknown write key" if write_key_from(request, body) else "missing write key"
            return self._refuse_request(request, 401, "unauthorized", message, text)
        return body, source

    # --- Snowplow tracker protocol -------------------------------------------

    def pixel(self, request: HttpRequest) -> Collected:
        parsed = parse_pixel(
            request.query, meta=request.meta, config=self.config, anonymize_ip=self.anonymize_ip
        )
        return self._accept(
            request, parsed, lambda _p, ok: HttpAnswer.pixel() if ok else _pixel_503()
        )

    def tp2(self, request: HttpRequest) -> Collected:
        # The tracker protocol has no key: a refused body is kept as evidence.
        try:
            text = decode_body(request.body, request.header("content-encoding"))
        except BodyError as err:
            return self._refuse_request(request, err.status, err.reason, str(err))
        parsed = parse_tp2(
            text, meta=request.meta, config=self.config, anonymize_ip=self.anonymize_ip
        )
        return self._accept(request, parsed, _tp2_answer)

    # --- shared --------------------------------------------------------------

    def _accept(
        self,
        request: HttpRequest,
        parsed: Parsed,
        answer: Callable[[Parsed, bool], HttpAnswer],
    ) -> Collected:
        for event in parsed.events:
            options = self.enrich_options.get(event.source.name)
            if options is not None:
                enrich_event(event, options)
        parsed = _writable(_serializable(parsed))
        records = [
            StreamRecord(event.partition_key, event.to_json().encode("utf-8"))
            for event in parsed.events
        ]
        unwritable = set(self.events.put(records)) if records else set()
        failures = [self._failure(request, rejection) for rejection in parsed.rejections]
        failures += [
            self._failure(
                request,
                Rejection(
                    reason="stream_unavailable",
                    message="the events stream refused the event; the client was told to retry",
                    raw=records[i].data.decode("utf-8"),
                    message_id=parsed.events[i].message_id,
                    source=parsed.events[i].source.name,
                    protocol=parsed.events[i].source.protocol,
                ),
                retryable=True,
            )
            for i in sorted(unwritable)
        ]
        stored = self._store_failures(request, failures)
        return Collected(
            answer=answer(parsed, stored and not unwritable),
            accepted=len(records) - len(unwritable),
            failed=Counter(f.reason for f in failures) if stored else Counter(),
            unstored=0 if stored else len(failures),
        )

    def _refuse_request(
        self,
        request: HttpRequest,
        status: int,
        reason: str,
        message: str,
        text: str | None = None,
        trusted: bool = False,
    ) -> Collected:
        """The whole request is refused: store it as one failed event and say why.

        Only a body from a known source, within the size limit, is kept whole;
        anything else leaves evidence (a prefix, its length and SHA-256), so no
        one can fill the store with megabytes for the price of a request.
        """
        if request.body:
            kept = evidence(
                request.body, text, trusted, content_encoding=request.header("content-encoding")
            )
        else:
            kept = Evidence(urllib.parse.urlencode(request.query))
        failure = self._failure(request, Rejection(reason=reason, message=message, raw=kept.text))
        failure = failure.model_copy(update={"raw_bytes": kept.length, "raw_sha256": kept.sha256})
        if not self._store_failures(request, [failure]):
            return Collected(_unavailable(), unstored=1)
        return Collected(
            HttpAnswer.json(status, {"success": False, "error": message, "reason": reason}),
            failed=Counter({reason: 1}),
        )

    def _failure(
        self, request: HttpRequest, rejection: Rejection, retryable: bool = False
    ) -> FailedEvent:
        kept = Evidence(rejection.raw)
        if rejection.reason in (EVENT_TOO_LARGE, REQUEST_WRITES_TOO_MUCH):
            data = rejection.raw.encode("utf-8")
            kept = evidence(data, rejection.raw)
        return FailedEvent(
            failed_at=datetime.now(UTC),
            step="ingest",
            reason=rejection.reason,
            message=rejection.message,
            # A retryable record is the canonical event itself, anonymized already.
            raw=kept.text if retryable else redact_raw(kept.text),
            raw_bytes=kept.length,
            raw_sha256=kept.sha256,
            field=rejection.field,
            index=rejection.index,
            message_id=rejection.message_id,
            source=rejection.source,
            protocol=rejection.protocol,
            request_id=request.meta.request_id,
            path=request.meta.path,
            retryable=retryable,
        )

    def _store_failures(self, request: HttpRequest, failures: list[FailedEvent]) -> bool:
        if not failures:
            return True
        try:
            self.failed_events.put(failures, request.meta.request_id)
        except Exception:
            return False
        return True


def _serializable(parsed: Parsed) -> Parsed:
    """Events whose JSON can be written (a lone UTF-16 surrogate, legal in a JSON
    escape, validates but cannot be encoded as UTF-8) -- the others become rejections."""
    for position in reversed(range(len(parsed.events))):
        event = parsed.events[position]
        try:
            event.to_json().encode("utf-8")
        except (UnicodeEncodeError, ValueError):
            parsed.refuse(
                position,
                "invalid_event",
                "event contains text that is not valid Unicode (a lone surrogate)",
                # stdlib json escapes the surrogate, so the raw input stays storable
                json.dumps(event.model_dump(by_alias=True, exclude_none=True), default=str),
            )
    return parsed


def _writable(parsed: Parsed) -> Parsed:
    """Events whose record, as written (batch context and User-Agent merged in), stays
    within MAX_RECORD_BYTES, up to MAX_WRITTEN_PER_REQUEST for the whole request:
    a small request cannot make Beacon write megabytes."""
    budget = MAX_WRITTEN_PER_REQUEST
    refused: list[tuple[int, str, str]] = []
    for position, event in enumerate(parsed.events):
        size = len(event.to_json().encode("utf-8"))
        if size > MAX_RECORD_BYTES:
            message = (
                f"event as written (batch context and User-Agent merged in) is {size} bytes,"
                f" over {MAX_RECORD_BYTES}"
            )
            refused.append((position, EVENT_TOO_LARGE, message))
        elif size > budget:
            message = (
                f"the request's events as written pass {MAX_WRITTEN_PER_REQUEST} bytes;"
                " send the rest in another request"
            )
            refused.append((position, REQUEST_WRITES_TOO_MUCH, message))
        else:
            budget -= size
    for position, reason, message in reversed(refused):
        parsed.refuse(position, reason, message, parsed.events[position].to_json())
    return parsed


def _segment_answer(parsed: Parsed, stored: bool) -> HttpAnswer:
    if not stored:
        return _unavailable()
    rejected = [r.as_response_item() for r in parsed.rejections]
    if not rejected:
        return HttpAnswer.json(200, {"success": True})
    if parsed.events:
        return HttpAnswer.json(
            200, {"success": True, "accepted": len(parsed.events), "rejected": rejected}
        )
    return HttpAnswer.json(
        400, {"success": False, "error": "no event was accepted", "rejected": rejected}
    )


def _tp2_answer(parsed: Parsed, stored: bool) -> HttpAnswer:
    if not stored:
        return _unavailable()
    payload: dict[str, Any] = {"accepted": len(parsed.events)}
    if parsed.rejections:
        payload["rejected"] = [r.as_response_item() for r in parsed.rejections]
    return HttpAnswer.json(200, payload)


def _unavailable() -> HttpAnswer:
    return HttpAnswer(
        503,
        b'{"success": false, "error": "events could not be stored; retry"}',
        "application/json",
        {"Retry-After": "1"},
    )


def _pixel_503() -> HttpAnswer:
    gif = HttpAnswer.pixel()
    return HttpAnswer(503, gif.body, gif.content_type, gif.headers)
