"""Segments Lambda: Kinesis `resolved` -> profiles -> Kinesis `profile-changes`;
an EventBridge schedule -> the sweep of profiles whose time-based condition is due.

Thin: one function, two entry points told apart by the event's shape. A stream
batch is updated in one pass (`SegmentsStep.update_from_batch`); Powertools'
BatchProcessor then reports exactly the records of profiles whose write failed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.experiments.book import ExperimentBook
from functions.segments.settings import SegmentsSettings
from functions.segments.step import BatchOutcome, SegmentsStep
from functions.shared.config import BeaconConfig
from functions.shared.dal.kinesis import KinesisWriter
from functions.shared.decision import DecisionRules
from functions.shared.observability import count_by_reason, logger, metrics, tracer
from functions.shared.profile_handler import build_profile_step, run_profile_batch

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@cache
def segments_step() -> SegmentsStep:
    return build_segments_step(*SegmentsSettings.with_config())


def build_segments_step(
    settings: SegmentsSettings, config: BeaconConfig, **clients: Any
) -> SegmentsStep:
    """The step as this function runs it; `clients` (dynamodb, s3, kinesis) for an
    operator tool that runs it elsewhere (`beacon backfill`)."""
    return build_profile_step(
        SegmentsStep,
        settings,
        dynamodb=clients.get("dynamodb"),
        s3=clients.get("s3"),
        config=config.segments,
        changes=KinesisWriter(settings.changes_stream, clients.get("kinesis")),
        decisions=DecisionRules.from_config(config),
        experiments=ExperimentBook.from_config(config),
    )


def _publish(outcome: BatchOutcome) -> None:
    metrics.add_metric(name="EventsApplied", unit=MetricUnit.Count, value=outcome.events_applied)
    metrics.add_metric(name="RetriesSkipped", unit=MetricUnit.Count, value=outcome.retried)
    metrics.add_metric(name="RedeliveriesSkipped", unit=MetricUnit.Count, value=outcome.redelivered)
    metrics.add_metric(
        name="ProfilesWritten", unit=MetricUnit.Count, value=outcome.profiles_written
    )
    metrics.add_metric(name="ProfileConflicts", unit=MetricUnit.Count, value=outcome.conflicts)
    if outcome.segment_changes:
        count_by_reason("SegmentChanges", outcome.segment_changes)
    if outcome.erased:
        metrics.add_metric(
            name="EventsDroppedErased", unit=MetricUnit.Count, value=len(outcome.erased)
        )
    if outcome.evaluation_errors:
        metrics.add_metric(
            name="ConditionErrors", unit=MetricUnit.Count, value=outcome.evaluation_errors
        )


def _is_schedule(event: dict[str, Any]) -> bool:
    return event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = segments_step()
    if _is_schedule(event):
        swept = step.sweep_due(SegmentsSettings().sweep_limit)
        _publish(swept)
        return {"swept": swept.profiles_written, "conflicts": swept.conflicts}
    return run_profile_batch(event, context, processor, step.update_from_batch, _publish)
