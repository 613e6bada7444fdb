"""Webhook Lambda: SQS `activations` -> journey platforms, each destination on its own
retry schedule; what fails for good goes to `activations-dlq` with its history.

Thin: the step is built once per container (its circuit breakers and Salesforce
token cache live as long as the container); per batch `WebhookStep.handle` does
the work and Powertools' BatchProcessor reports the messages to deliver again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.dal.deliveries_store import DeliveriesStore
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.secrets import SECRET_STORE_ERRORS, secret_value
from functions.shared.dal.sqs import QueueSender
from functions.shared.destinations import AnyDestination
from functions.shared.observability import count_by_reason, logger, metrics, tracer
from functions.shared.stream_batch import report_failed
from functions.webhook.delivery import Deliverer
from functions.webhook.settings import WebhookSettings
from functions.webhook.step import Message, WebhookStep

processor = BatchProcessor(event_type=EventType.SQS)


def _as_configured(destination: AnyDestination) -> AnyDestination:
    return destination


@dataclass(frozen=True)
class Routing:
    """Where the destinations are reached: as configured, https only. The local
    stack hands the function its own (`infra/local/destinations.py`: its sinks,
    plain http on loopback) before the first invocation."""

    route: Callable[[AnyDestination], AnyDestination] = _as_configured
    allow_loopback_http: bool = False


routing = Routing()


@cache
def webhook_step() -> WebhookStep:
    settings, config = WebhookSettings.with_config()
    return WebhookStep(
        destinations=[routing.route(d) for d in config.destinations],
        deliver=Deliverer(allow_loopback_http=routing.allow_loopback_http).deliver,
        secret=secret_value,
        secret_failures=SECRET_STORE_ERRORS,
        log=DeliveriesStore(DynamoTable(settings.deliveries_table)),
        queue=QueueSender(settings.activations_queue),
        dead_letters=QueueSender(settings.dead_letter_queue),
        failed_events=S3FailedEventStore(settings.failed_events_bucket),
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = list(SQSEvent(event).records)
    messages = [Message(r.message_id, r.body, r.receipt_handle) for r in records]
    outcome = webhook_step().handle(messages)
    if outcome.outcomes:
        count_by_reason("Deliveries", outcome.outcomes)
        settled = Counter(key.rsplit(":", 1)[1] for key in outcome.outcomes.elements())
        failed = settled["dead_lettered"] + settled["disabled"]
        attempted = failed + settled["delivered"] + settled["pending"]
        # For the failure-rate alarm: failed for good, of all that were attempted.
        metrics.add_metric(name="DeliveriesFailed", unit=MetricUnit.Count, value=failed)
        metrics.add_metric(name="DeliveriesAttempted", unit=MetricUnit.Count, value=attempted)
    if outcome.erased:
        metrics.add_metric(
            name="ActivationsDroppedErased", unit=MetricUnit.Count, value=outcome.erased
        )
    every = [m.message_id for m in messages]
    return report_failed(event, context, processor, every, outcome.failed)
