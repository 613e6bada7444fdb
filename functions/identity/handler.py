"""Identity Lambda: Kinesis `consented` -> one profile per person -> Kinesis `resolved`.

Thin: builds the step once per container; per batch opens it (batched graph
reads), lets Powertools' BatchProcessor resolve the records in order, and
commits. A lost race with another shard (conditional write failed) reports
the whole batch for retry, which then reads the winner's profile. Events of
an erased person still in flight are dropped and counted (`EventsDroppedErased`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.identity.probabilistic import ProbabilisticMatcher
from functions.identity.settings import IdentitySettings
from functions.identity.step import IdentityStep
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable, StorageThrottled
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.identity_store import GraphConflict, IdentityStore
from functions.shared.dal.kinesis import KinesisWriter
from functions.shared.dal.secrets import secret_value
from functions.shared.observability import logger, metrics, tracer
from functions.shared.stream_batch import run_ordered_batch

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@cache
def identity_step() -> IdentityStep:
    settings, config = IdentitySettings.with_config()
    store = IdentityStore(DynamoTable(settings.identity_table))
    matcher = None
    if config.identity.probabilistic.enabled:
        matcher = ProbabilisticMatcher(config.identity, store)
    return IdentityStep(
        rules=config.identity,
        graph_store=store,
        resolved=KinesisWriter(settings.resolved_stream),
        failed_events=S3FailedEventStore(settings.failed_events_bucket),
        erasures=store,
        salt=secret_value(config.consent.identifier_salt_secret).encode(),
        profile_consent=config.consent.required_for_profiles,
        counters=DailyCounters(DynamoTable(settings.counters_table)),
        matcher=matcher,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response, outcome = run_ordered_batch(
        event,
        context,
        processor,
        identity_step().open_batch,
        # A lost race re-reads the graph on the retry and resolves consistently.
        retry_on=(StorageThrottled, GraphConflict),
    )
    if outcome is not None:
        metrics.add_metric(name="EventsResolved", unit=MetricUnit.Count, value=outcome.events)
        metrics.add_metric(name="ProfilesMerged", unit=MetricUnit.Count, value=outcome.merges)
        metrics.add_metric(
            name="ProfilesCreated", unit=MetricUnit.Count, value=outcome.new_profiles
        )
        if outcome.erased:
            metrics.add_metric(
                name="EventsDroppedErased", unit=MetricUnit.Count, value=outcome.erased
            )
        if outcome.refused:
            metrics.add_metric(
                name="RefusalsWithoutProfile", unit=MetricUnit.Count, value=outcome.refused
            )
        if outcome.suggestions:
            metrics.add_metric(
                name="LinksSuggested", unit=MetricUnit.Count, value=outcome.suggestions
            )
    return response
