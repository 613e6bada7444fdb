"""Consent Lambda: Kinesis `events` -> consent decisions -> Kinesis `consented`.

Thin: builds the step once per container, then per batch opens it (one
BatchGetItem), lets Powertools' BatchProcessor run the records in order, and
commits the effects once. Partial failures are reported per record.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.consent.settings import ConsentSettings
from functions.consent.step import ConsentStep
from functions.shared.dal.consent_store import ConsentStore
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable, StorageThrottled
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.kinesis import KinesisWriter
from functions.shared.dal.secrets import secret_value
from functions.shared.enrichment_config import bot_sources_kept
from functions.shared.observability import count_by_reason, logger, metrics, tracer
from functions.shared.stream_batch import run_ordered_batch

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@cache
def consent_step() -> ConsentStep:
    settings, config = ConsentSettings.with_config()
    return ConsentStep(
        policy=config.consent,
        salt=secret_value(config.consent.identifier_salt_secret).encode(),
        states=ConsentStore(DynamoTable(settings.consent_table)),
        consented=KinesisWriter(settings.consented_stream),
        failed_events=S3FailedEventStore(settings.failed_events_bucket),
        counters=DailyCounters(DynamoTable(settings.counters_table)),
        keep_bots_from=bot_sources_kept(config.ingest.enrichment, config.sources),
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response, outcome = run_ordered_batch(
        event, context, processor, consent_step().open_batch, retry_on=(StorageThrottled,)
    )
    if outcome is not None:
        metrics.add_metric(name="EventsForwarded", unit=MetricUnit.Count, value=outcome.forwarded)
        count_by_reason("EventsDroppedByConsent", outcome.dropped)
        if outcome.malformed:
            metrics.add_metric(
                name="MalformedRecords", unit=MetricUnit.Count, value=outcome.malformed
            )
    return response
