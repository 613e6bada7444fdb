"""Scoring Lambda: Kinesis `profile-changes` -> ONNX scores on the profile -> SQS `activations`.

Thin: the models are loaded and checked once per container (a mismatch fails the
cold start with its reason); per batch `ScoringStep.score_batch` scores every
changed profile in one model call per model, and Powertools' BatchProcessor
reports exactly the records of profiles whose write or send failed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.scoring.models import load_scorers
from functions.scoring.settings import ScoringSettings
from functions.scoring.step import ScoringOutcome, ScoringStep
from functions.shared.config import load_config
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import ConditionFailed, DynamoTable, StorageThrottled
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.dal.sqs import QueueSender
from functions.shared.observability import count_by_reason, logger, metrics, tracer
from functions.shared.stream_batch import run_whole_batch

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@cache
def scoring_step() -> ScoringStep:
    settings = ScoringSettings()
    config = load_config(settings.config_file)
    return ScoringStep(
        scorers=load_scorers(config.models, Path(settings.config_file).resolve().parent),
        segments=config.segments,
        profiles=ProfilesStore(DynamoTable(settings.profiles_table)),
        activations=QueueSender(settings.activations_queue),
        failed_events=S3FailedEventStore(settings.failed_events_bucket),
        counters=DailyCounters(DynamoTable(settings.counters_table)),
        conflict=(ConditionFailed,),
        refused=(StorageThrottled,),
    )


def _publish(step: ScoringStep, outcome: ScoringOutcome) -> None:
    metrics.add_metric(name="ProfilesScored", unit=MetricUnit.Count, value=outcome.profiles_scored)
    metrics.add_metric(name="ProfileConflicts", unit=MetricUnit.Count, value=outcome.conflicts)
    if outcome.activations:
        count_by_reason("ActivationsSent", outcome.activations)
    if outcome.defaulted:
        count_by_reason("FeatureDefaults", outcome.defaulted)
    for model, drift in step.drift.items():
        psi = drift.psi()
        if psi:
            # The alarm watches the worst feature; the log names them all.
            metrics.add_metric(
                name=f"FeatureDriftMax_{model}", unit=MetricUnit.NoUnit, value=max(psi.values())
            )
    for model, values in outcome.shadow.items():
        logger.info(
            "shadow model scores",
            extra={
                "model": model,
                "scored": len(values),
                "mean": sum(values) / max(len(values), 1),
            },
        )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = scoring_step()
    response, outcome = run_whole_batch(
        event,
        context,
        processor,
        step.score_batch,
        retry_on=(StorageThrottled,),  # the batch's reads; writes fail only their profile
    )
    if outcome is not None:
        _publish(step, outcome)
    return response
