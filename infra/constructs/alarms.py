"""Alarms an operator needs from day one, on an encrypted SNS topic.

- every stream consumer: iterator age (the step falls behind) and errors;
- every function: throttles and errors;
- every dead-letter queue: anything in it;
- every model: feature drift (the largest PSI) above the configured threshold;
- the webhook step: the share of deliveries that fail for good (dead-lettered or
  disabled) above `webhook_failure_rate`;
- the failed-events path is watched through ingest's own metrics.

Thresholds are deliberately plain; tune them in `ALARM_SETTINGS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.pipeline_function import PipelineFunction
from infra.topology import Queue


@dataclass(frozen=True)
class AlarmSettings:
    iterator_age_ms: int = 60_000  # a minute behind for five minutes
    error_count: int = 5  # errors in five minutes
    evaluation_periods: int = 5
    webhook_failure_rate: float = 0.2  # of deliveries settled in the period


ALARM_SETTINGS = AlarmSettings()


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Iterable[PipelineFunction],
        queues: Mapping[str, sqs.IQueue],
        queue_rows: Iterable[Queue],
        key: kms.IKey,
        drift_models: Iterable[str] = (),
        drift_threshold: float = 0.2,
        settings: AlarmSettings = ALARM_SETTINGS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "Topic", display_name="Beacon alarms", master_key=key, enforce_ssl=True
        )
        # CloudWatch publishes to the topic through the key it is encrypted with.
        key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        minute = Duration.minutes(1)
        functions_list = list(functions)
        for pipeline_function in functions_list:
            fn, name = pipeline_function.function, pipeline_function.row.name
            self._alarm(
                f"{name}-errors",
                fn.metric_errors(period=minute, statistic="Sum"),
                settings.error_count,
                f"Beacon {name}: function errors",
                settings,
                action,
            )
            self._alarm(
                f"{name}-throttles",
                fn.metric_throttles(period=minute, statistic="Sum"),
                1,
                f"Beacon {name}: invocations throttled",
                settings,
                action,
            )
            if pipeline_function.row.kinesis_sources:
                age = cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name="IteratorAge",
                    dimensions_map={"FunctionName": fn.function_name},
                    period=minute,
                    statistic="Maximum",
                )
                self._alarm(
                    f"{name}-iterator-age",
                    age,
                    settings.iterator_age_ms,
                    f"Beacon {name}: falling behind its stream",
                    settings,
                    action,
                )
        for model in sorted(drift_models):
            drift = _beacon_metric(f"FeatureDriftMax_{model}", "scoring", "Maximum", 15)
            self._alarm(
                f"drift-{model}",
                drift,
                drift_threshold,
                f"Beacon model {model}: its features drifted from training (PSI)",
                settings,
                action,
            )
        if any(f.row.name == "webhook" for f in functions_list):
            failure_rate = cloudwatch.MathExpression(
                expression="IF(attempted > 10, failed / attempted, 0)",
                using_metrics={
                    "failed": _beacon_metric("DeliveriesFailed", "webhook"),
                    "attempted": _beacon_metric("DeliveriesAttempted", "webhook"),
                },
                period=Duration.minutes(5),
                label="webhook failure rate",
            )
            self._alarm(
                "webhook-failure-rate",
                failure_rate,
                settings.webhook_failure_rate,
                "Beacon webhook: deliveries failing for good (dead-lettered or disabled)",
                settings,
                action,
            )
        dead_letters = {q.dead_letter for q in queue_rows if q.dead_letter}
        for queue_name in sorted(dead_letters):
            depth = queues[queue_name].metric_approximate_number_of_messages_visible(
                period=minute, statistic="Maximum"
            )
            self._alarm(
                f"{queue_name}-depth",
                depth,
                1,
                f"Beacon {queue_name}: messages in the dead-letter queue",
                settings,
                action,
            )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        settings: AlarmSettings,
        action: actions.SnsAction,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=settings.evaluation_periods,
            datapoints_to_alarm=settings.evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)


def _beacon_metric(
    name: str, service: str, statistic: str = "Sum", minutes: int = 5
) -> cloudwatch.Metric:
    """A metric the functions publish with Powertools (namespace Beacon, `service`)."""
    return cloudwatch.Metric(
        namespace="Beacon",
        metric_name=name,
        dimensions_map={"service": service},
        period=Duration.minutes(minutes),
        statistic=statistic,
    )
