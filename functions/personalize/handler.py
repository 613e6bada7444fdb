"""Touchpoint Lambda: `GET /v1/personalize` for pages and apps, and `/v1/beacon.js`.

Thin: translate API Gateway's event (HTTP API, payload 2.0), call `Touchpoint`,
answer. Built once per container: the configuration, the write keys and
identity-verification keys (Secrets Manager, cached), the identifier cache.
"""

from __future__ import annotations

import hashlib
from functools import cache, partial
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.personalize.identifier_cache import IdentifierCache, ProfileResolver
from functions.personalize.settings import PersonalizeSettings
from functions.personalize.touchpoint import PageRequest, Touchpoint
from functions.shared.config import Source
from functions.shared.dal.decisions_store import DecisionsStore
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.profile_ids import GraphProfileIds
from functions.shared.dal.secrets import secret_value, source_for_write_key
from functions.shared.observability import logger, metrics, tracer

SCRIPT = Path(__file__).with_name("beacon.js")
SCRIPT_MAX_AGE_S = 300


@cache
def touchpoint() -> Touchpoint:
    settings, config = PersonalizeSettings.with_config()
    sizes = config.personalize.identifier_cache
    return Touchpoint(
        config=config,
        source_for_write_key=partial(source_for_write_key, config.sources),
        identity_key=identity_key,
        resolver=ProfileResolver(
            GraphProfileIds(DynamoTable(settings.identity_table)),
            IdentifierCache(sizes.max_entries, sizes.ttl_s, sizes.miss_ttl_s),
        ),
        decisions=DecisionsStore(DynamoTable(settings.profiles_table)),
    )


def identity_key(source: Source) -> str | None:
    """The source's identity-verification key (cached by `secret_value`); None when the
    source has none: then a user id is never used."""
    if not source.identity_verification_secret:
        return None
    return secret_value(source.identity_verification_secret)


@cache
def script() -> tuple[str, str]:
    text = SCRIPT.read_text(encoding="utf-8")
    return text, '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    http = event.get("requestContext", {}).get("http", {})
    path = event.get("rawPath") or http.get("path", "")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if path.endswith("/beacon.js"):
        return _script(headers)
    request = PageRequest(
        method=str(http.get("method", "GET")).upper(),
        query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
        headers=headers,
        raw_query=str(event.get("rawQueryString") or ""),
    )
    answer = touchpoint().answer(request)
    if answer.status in (200, 304):
        metrics.add_metric(name="PersonalizeAnswers", unit=MetricUnit.Count, value=1)
        if answer.personalized:
            metrics.add_metric(name="PersonalizedAnswers", unit=MetricUnit.Count, value=1)
    if answer.status >= 500:
        logger.error("personalize failed", extra={"status": answer.status})
    return {
        "statusCode": answer.status,
        "headers": answer.headers,
        "body": answer.body,
        "isBase64Encoded": False,
    }


def _script(headers: dict[str, str]) -> dict[str, Any]:
    text, tag = script()
    answer_headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE_S}",
        "ETag": tag,
        "Access-Control-Allow-Origin": "*",  # a public script, the same for every page
    }
    if tag in headers.get("if-none-match", ""):
        return {"statusCode": 304, "headers": answer_headers, "body": "", "isBase64Encoded": False}
    return {"statusCode": 200, "headers": answer_headers, "body": text, "isBase64Encoded": False}
