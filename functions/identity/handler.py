"""Identity Lambda: Kinesis `consented` -> one profile per person -> Kinesis `resolved`.

Thin: builds the step once per container; per batch opens it (batched graph
reads), lets Powertools' BatchProcessor resolve the records in order, and
commits. A lost race with another shard (conditional write failed) reports
the whole batch for retry, which then reads the winner's profile.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.identity.probabilistic import ProbabilisticMatcher
from functions.identity.settings import IdentitySettings
from functions.identity.step import IdentityStep
from functions.shared.config import load_config
from functions.shared.dal.dynamo import DynamoTable, StorageThrottled
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.identity_store import GraphConflict, IdentityStore
from functions.shared.dal.kinesis import KinesisWriter
from functions.shared.observability import logger, metrics, tracer
from functions.shared.stream_batch import all_failed, stream_items

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@cache
def identity_step() -> IdentityStep:
    settings = IdentitySettings()
    config = load_config(settings.config_file)
    store = IdentityStore(DynamoTable(settings.identity_table))
    matcher = None
    if config.identity.probabilistic.enabled:
        matcher = ProbabilisticMatcher(config.identity, store)
    return IdentityStep(
        rules=config.identity,
        graph_store=store,
        resolved=KinesisWriter(settings.resolved_stream),
        failed_events=S3FailedEventStore(settings.failed_events_bucket),
        matcher=matcher,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    items = stream_items(event)
    try:
        batch = identity_step().open_batch(items)
        response = process_partial_response(
            event=event,
            record_handler=lambda record: batch.decide(record.kinesis.sequence_number),
            processor=processor,
            context=context,
        )
        reported = [str(f["itemIdentifier"]) for f in response.get("batchItemFailures", [])]
        failures, outcome = batch.commit(reported)
    except (StorageThrottled, GraphConflict) as err:
        # Report, don't raise: the retry re-reads the graph and resolves consistently.
        logger.warning("identity batch will be retried", extra={"error": str(err)})
        metrics.add_metric(name=type(err).__name__, unit=MetricUnit.Count, value=1)
        return all_failed(items)
    metrics.add_metric(name="EventsResolved", unit=MetricUnit.Count, value=outcome.events)
    metrics.add_metric(name="ProfilesMerged", unit=MetricUnit.Count, value=outcome.merges)
    metrics.add_metric(name="ProfilesCreated", unit=MetricUnit.Count, value=outcome.new_profiles)
    if outcome.suggestions:
        metrics.add_metric(name="LinksSuggested", unit=MetricUnit.Count, value=outcome.suggestions)
    return {"batchItemFailures": failures}
