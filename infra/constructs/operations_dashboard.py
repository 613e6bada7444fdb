"""The operator's CloudWatch dashboard: the pipeline's flow, lag, errors and deliveries."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.pipeline_function import PipelineFunction

# What each step publishes (namespace Beacon, dimension service = the function).
FLOW = (
    ("ingest", "EventsAccepted"),
    ("consent", "EventsForwarded"),
    ("identity", "EventsResolved"),
    ("segments", "EventsApplied"),
    ("scoring", "ProfilesScored"),
    ("webhook", "DeliveriesAttempted"),
)


def _metric(name: str, service: str, statistic: str = "Sum") -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="Beacon",
        metric_name=name,
        dimensions_map={"service": service},
        period=Duration.minutes(1),
        statistic=statistic,
        label=f"{service}: {name}",
    )


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Iterable[PipelineFunction],
        dead_letter_queues: Iterable[sqs.IQueue],
        models: Iterable[str],
    ) -> None:
        super().__init__(scope, construct_id)
        fns = list(functions)
        minute = Duration.minutes(1)
        consumers = [f for f in fns if f.row.kinesis_sources]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Events through each step (per minute)",
                left=[_metric(name, service) for service, name in FLOW],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Iterator age: how far each stream consumer is behind (ms)",
                left=[
                    f.function.metric(
                        "IteratorAge", period=minute, statistic="Maximum", label=f.row.name
                    )
                    for f in consumers
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Errors and throttles per function",
                left=[f.function.metric_errors(period=minute, label=f.row.name) for f in fns],
                right=[
                    f.function.metric_throttles(period=minute, label=f"{f.row.name} throttled")
                    for f in fns
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Webhook deliveries: attempted and failed for good",
                left=[
                    _metric("DeliveriesAttempted", "webhook"),
                    _metric("DeliveriesFailed", "webhook"),
                ],
                right=[
                    q.metric_approximate_number_of_messages_visible(
                        period=minute, statistic="Maximum", label="dead letters"
                    )
                    for q in dead_letter_queues
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Model feature drift (largest PSI; alarm above the configured threshold)",
                left=[
                    _metric(f"FeatureDriftMax_{model}", "scoring", "Maximum") for model in models
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Profile writes that lost a race (redone)",
                left=[_metric("ProfileConflicts", s) for s in ("segments", "scoring")],
                width=12,
            ),
        )
