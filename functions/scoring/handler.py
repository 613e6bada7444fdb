"""Scoring Lambda: Kinesis `profile-changes` -> ONNX scores on the profile -> SQS `activations`.

Thin: the models are loaded and checked once per container (a mismatch fails the
cold start with its reason), then replaced by the model registry's active versions
when a pointer changes (functions/scoring/live_models.py); per batch
`ScoringStep.score_batch` scores every changed profile in one model call per model,
and Powertools' BatchProcessor reports exactly the records of profiles whose write or send failed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.experiments.book import ExperimentBook
from functions.scoring.live_models import LiveModels
from functions.scoring.models import load_scorers
from functions.scoring.personas import load_configured_personas
from functions.scoring.recommend import load_configured_recommender
from functions.scoring.settings import ScoringSettings
from functions.scoring.step import ScoringOutcome, ScoringStep
from functions.shared.dal.model_registry_store import ModelRegistryStore
from functions.shared.dal.sqs import QueueSender
from functions.shared.decision import DecisionRules
from functions.shared.observability import count_by_reason, logger, metrics, tracer
from functions.shared.profile_handler import build_profile_step, run_profile_batch

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@cache
def scoring_step() -> ScoringStep:
    live_models.cache_clear()  # a new step (a new container): the registry read afresh
    settings, config = ScoringSettings.with_config()
    return build_profile_step(
        ScoringStep,
        settings,
        scorers=load_scorers(config.models, Path(settings.config_file).resolve().parent),
        recommender=load_configured_recommender(
            config.models, Path(settings.config_file).resolve().parent
        ),
        personas=load_configured_personas(
            config.models, Path(settings.config_file).resolve().parent
        ),
        segments=config.segments,
        activations=QueueSender(settings.activations_queue),
        decisions=DecisionRules.from_config(config),
        experiments=ExperimentBook.from_config(config),
    )


@cache
def live_models() -> LiveModels:
    """The bundled models, replaced by the registry's active (and shadow) versions; the
    pointers re-read at most every `model_pointer_ttl_s` (docs/models.md)."""
    settings = ScoringSettings()
    registry = ModelRegistryStore(settings.models_bucket) if settings.models_bucket else None
    return LiveModels(scoring_step().scorers, registry, settings.model_pointer_ttl_s)


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
    step.use_scorers(live_models().scorers())
    return run_profile_batch(
        event, context, processor, step.score_batch, lambda outcome: _publish(step, outcome)
    )
