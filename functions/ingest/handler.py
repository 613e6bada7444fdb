"""Ingest Lambda: API Gateway HTTP API (payload 2.0) -> Collector -> HTTP answer.

Thin by design: translate the event, call the collector, record metrics.
Everything is built on the first invocation (settings validated, config
loaded, clients created) and reused while the container lives.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.ingest.canonicalize import RequestMeta
from functions.ingest.collector import Collected, Collector
from functions.ingest.http import HttpRequest
from functions.ingest.project_settings import project_settings, served_host, served_protocol
from functions.ingest.segment import ALL_CALLS
from functions.ingest.settings import IngestSettings
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.kinesis import KinesisWriter
from functions.shared.dal.secrets import secret_value, source_for_write_key
from functions.shared.observability import count_by_reason, logger, metrics, tracer
from functions.shared.privacy import anonymize_ip

MAX_WRITE_KEY_CHARS = 256


@cache
def collector() -> Collector:
    settings, config = IngestSettings.with_config()
    salt = b""
    if config.ingest.ip_handling == "hash" and config.ingest.ip_hash_salt_secret:
        salt = secret_value(config.ingest.ip_hash_salt_secret).encode()
    return Collector(
        config=config,
        source_for_write_key=partial(source_for_write_key, config.sources),
        events=KinesisWriter(settings.events_stream),
        failed_events=S3FailedEventStore(settings.failed_events_bucket),
        anonymize_ip=partial(anonymize_ip, handling=config.ingest.ip_handling, salt=salt),
        config_dir=Path(settings.config_file).resolve().parent,
    )


@cache
def app() -> APIGatewayHttpResolver:
    origins = collector().config.allowed_origins
    cors = CORSConfig(
        allow_origin=origins[0] if origins else "https://invalid.example",
        extra_origins=list(origins[1:]),
        allow_headers=["Content-Type", "Content-Encoding", "Authorization"],
        max_age=600,
    )
    resolver = APIGatewayHttpResolver(cors=cors)

    @resolver.post("/v1/<call>")
    def segment_call(call: str) -> Response[bytes | str]:
        if call == "consent":
            return _answer(collector().consent(_request(resolver)))
        if call not in ALL_CALLS:
            return Response(404, "application/json", '{"success": false, "error": "not found"}')
        return _answer(collector().segment(call, _request(resolver)))

    @resolver.get("/v1/projects/<key>/settings")
    def analytics_js_settings(key: str) -> Response[bytes | str]:
        return _settings(resolver, urllib.parse.unquote(key))

    @resolver.get("/i")
    def snowplow_pixel() -> Response[bytes | str]:
        return _answer(collector().pixel(_request(resolver)))

    @resolver.post("/com.snowplowanalytics.snowplow/tp2")
    def snowplow_tp2() -> Response[bytes | str]:
        return _answer(collector().tp2(_request(resolver)))

    return resolver


def _request(resolver: APIGatewayHttpResolver) -> HttpRequest:
    event = resolver.current_event
    body = event.body or ""
    raw = base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")
    http = event.request_context.http
    return HttpRequest(
        meta=RequestMeta(
            request_id=event.request_context.request_id,
            received_at=datetime.fromtimestamp(event.request_context.time_epoch / 1000, UTC),
            path=event.raw_path,
            source_ip=http.source_ip,
            user_agent=http.user_agent,
        ),
        method=http.method,
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        query=dict(event.query_string_parameters or {}),
        body=raw,
    )


def _settings(resolver: APIGatewayHttpResolver, key: str) -> Response[bytes | str]:
    """analytics.js's settings, for a known write key only (404 as Segment's CDN)."""
    event = resolver.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    host = served_host(headers.get("host"))
    if (
        len(key) > MAX_WRITE_KEY_CHARS
        or host is None
        or collector().source_for_write_key(key) is None
    ):
        return Response(404, "application/json", '{"error": "unknown write key"}')
    settings = project_settings(key, host, served_protocol(headers.get("x-forwarded-proto")))
    return Response(
        200,
        "application/json",
        json.dumps(settings),
        headers={"Cache-Control": "private, max-age=300"},
    )


def _answer(collected: Collected) -> Response[bytes | str]:
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=collected.accepted)
    count_by_reason("EventsFailed", collected.failed)
    if collected.unstored:
        logger.error("failed-events store unavailable", extra={"unstored": collected.unstored})
        metrics.add_metric(name="FailedStoreErrors", unit=MetricUnit.Count, value=1)
    answer = collected.answer
    # Powertools serializes a JSON body itself unless given text; binary goes base64.
    body = answer.body.decode() if answer.content_type == "application/json" else answer.body
    return Response(answer.status, answer.content_type, body, headers=answer.headers)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return vary_on_origin(app().resolve(event, context))


def vary_on_origin(answer: dict[str, Any]) -> dict[str, Any]:
    """Add `Vary: Origin` to an answer of the CORS-enabled resolver.

    Its CORS headers are granted to allowed origins only, so every answer
    depends on the request's Origin; without saying so, a shared cache would
    serve one origin's answer (grant or refusal) to another.
    """
    headers = answer.setdefault("headers", {})
    name = next((k for k in headers if k.lower() == "vary"), "Vary")
    present = [v.strip().lower() for v in str(headers.get(name, "")).split(",") if v.strip()]
    if "origin" not in present and "*" not in present:
        headers[name] = f"{headers[name]}, Origin" if present else "Origin"
    return answer
