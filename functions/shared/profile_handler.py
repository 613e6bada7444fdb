"""The handler wiring the two steps that write profiles share (segments, scoring).

The same storage built the same way (profiles, counters, failed events), the same
errors (a conditional write that failed is a lost race; throttling is a refusal)
and the same batch handling: `run_whole_batch`, where a throttled *read* hands the
whole batch back and a failed *write* fails only its profile's records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor

from functions.profiles.step import ProfileStep
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import ConditionFailed, DynamoTable, StorageThrottled
from functions.shared.dal.failed_events_store import S3FailedEventStore
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.settings import ProfileStepSettings
from functions.shared.stream_batch import StreamItem, Whole, run_whole_batch

Step = TypeVar("Step", bound=ProfileStep)


def build_profile_step(
    step: Callable[..., Step],
    settings: ProfileStepSettings,
    *,
    dynamodb: Any | None = None,
    s3: Any | None = None,
    **own: Any,
) -> Step:
    """`step(**own)` with the storage and errors every profile step takes (clients
    given: an operator tool's, e.g. `beacon backfill`; else the function's own)."""
    return step(
        profiles=ProfilesStore(DynamoTable(settings.profiles_table, dynamodb)),
        failed_events=S3FailedEventStore(settings.failed_events_bucket, s3),
        counters=DailyCounters(DynamoTable(settings.counters_table, dynamodb)),
        conflict=(ConditionFailed,),
        refused=(StorageThrottled,),
        **own,
    )


def run_profile_batch(
    event: dict[str, Any],
    context: Any,
    processor: BatchProcessor,
    update: Callable[[list[StreamItem], str], Whole],
    publish: Callable[[Whole], None],
) -> dict[str, Any]:
    """Run `update` over the Kinesis batch, publish its outcome's metrics, answer Lambda."""
    response, outcome = run_whole_batch(
        event,
        context,
        processor,
        update,
        retry_on=(StorageThrottled,),  # the batch's reads; writes fail only their profile
    )
    if outcome is not None:
        publish(outcome)
    return response
