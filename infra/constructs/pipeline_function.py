"""One construct that turns any topology `Function` row into a deployed Lambda."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.shared.observability import METRICS_NAMESPACE
from functions.shared.settings import CONFIG_FILE_VAR
from infra.bundling import LambdaPlatform, function_asset
from infra.topology import Function, ResourceNames, SecretRole, Topology

# The newest Python runtime this aws-cdk-lib knows; the bundle's wheels are
# built for the same version (see `platform()`).
RUNTIME = lambda_.Runtime.PYTHON_3_14

# Where the Lambda finds the config inside its bundle (see infra/bundling.py).
CONFIG_FILE_IN_ASSET = "beacon.yaml"

# Prefix of the objects the on-failure destination writes (the S3 destination
# always writes under aws/lambda/<mapping id>/...).
ON_FAILURE_PREFIX = "aws/lambda/"


def platform() -> LambdaPlatform:
    return LambdaPlatform(python_version=RUNTIME.name.removeprefix("python"))


@dataclass(frozen=True)
class PipelineResources:
    """The deployed resources, by topology name, that function rows refer to."""

    streams: Mapping[str, kinesis.IStream]
    tables: Mapping[str, dynamodb.ITable]
    queues: Mapping[str, sqs.IQueue]
    buckets: Mapping[str, s3.IBucket]
    secrets: Callable[[SecretRole], tuple[secretsmanager.ISecret, ...]]  # by role

    def names(self) -> ResourceNames:
        """Real (CloudFormation-chosen) names, for `Topology.environment_for`."""
        overrides: dict[str, str] = {}
        overrides.update({f"stream:{n}": s.stream_name for n, s in self.streams.items()})
        overrides.update({f"table:{n}": t.table_name for n, t in self.tables.items()})
        overrides.update({f"queue:{n}": q.queue_name for n, q in self.queues.items()})
        overrides.update({f"bucket:{n}": b.bucket_name for n, b in self.buckets.items()})
        return ResourceNames(overrides=overrides)


class PipelineFunction(Construct):
    """A Lambda built from its row: code, settings, environment, IAM, triggers.

    Every permission comes from the row's `reads_*`/`writes_*` fields and its
    event sources; nothing is granted by hand elsewhere.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        row: Function,
        topology: Topology,
        resources: PipelineResources,
        config_path: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.row = row
        self.topology = topology
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            # Operational logs only (no raw IPs or emails are logged); nothing
            # the pipeline needs survives in them once the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Our own role instead of AWSLambdaBasicExecutionRole: logs go to this
        # function's log group only, not to any log group in the account.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Beacon {row.name} function",
        )
        self.log_group.grant_write(self.role)

        environment = topology.environment_for(row, resources.names())
        environment.update(
            {
                "POWERTOOLS_SERVICE_NAME": row.name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                CONFIG_FILE_VAR: CONFIG_FILE_IN_ASSET,
            }
        )
        asset = function_asset(row, config_path=config_path, platform=platform())
        self.function = lambda_.Function(
            self,
            "Function",
            description=row.purpose,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=row.handler,
            code=lambda_.Code.from_asset(str(asset)),
            memory_size=row.memory_mb,
            timeout=Duration.seconds(row.timeout_s),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            # Lambda's own START/END/REPORT lines (about 300 bytes per invocation, the
            # largest part of the log bill at pixel rates) only at WARN; Powertools' lines
            # are JSON already. ALC's level overrides Powertools' (and its debug sampling),
            # so both say INFO (docs/cost.md).
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            environment=environment,
        )
        self._grant(resources)
        self._add_event_sources(resources)

    def _grant(self, resources: PipelineResources) -> None:
        row, fn = self.row, self.function
        for name in row.writes_streams:
            resources.streams[name].grant_write(fn)
        for name in sorted(set(row.reads_tables) - set(row.writes_tables)):
            resources.tables[name].grant_read_data(fn)
        for name in row.writes_tables:
            resources.tables[name].grant_read_write_data(fn)
        for name in row.writes_queues:
            resources.queues[name].grant_send_messages(fn)
        for name in row.writes_buckets:
            resources.buckets[name].grant_put(fn)
        for name in row.reads_buckets:
            resources.buckets[name].grant_read(fn)
        for role in row.secrets:
            for secret in resources.secrets(role):
                secret.grant_read(fn)

    def _add_event_sources(self, resources: PipelineResources) -> None:
        for ks in self.row.kinesis_sources:
            # KinesisEventSource grants the read side of the stream itself.
            self.function.add_event_source(
                event_sources.KinesisEventSource(
                    resources.streams[ks.stream],
                    starting_position=lambda_.StartingPosition[ks.starting_position],
                    batch_size=ks.batch_size,
                    max_batching_window=Duration.seconds(ks.max_batching_window_s),
                    parallelization_factor=ks.parallelization_factor,
                    retry_attempts=ks.max_retry_attempts,
                    bisect_batch_on_error=ks.bisect_on_error,
                    max_record_age=Duration.seconds(ks.max_record_age_s),
                    report_batch_item_failures=ks.report_batch_item_failures,
                    on_failure=ScopedS3OnFailureDestination(
                        resources.buckets[ks.on_failure_bucket]
                    ),
                )
            )
        for index, schedule in enumerate(self.row.schedules):
            events.Rule(
                self,
                f"Schedule{index}",
                description=schedule.purpose,
                schedule=events.Schedule.rate(Duration.minutes(schedule.every_minutes)),
                targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
            )
        for qs in self.row.sqs_sources:
            self.function.add_event_source(
                event_sources.SqsEventSource(
                    resources.queues[qs.queue],
                    batch_size=qs.batch_size,
                    max_batching_window=Duration.seconds(qs.max_batching_window_s),
                    report_batch_item_failures=qs.report_batch_item_failures,
                )
            )


class ScopedS3OnFailureDestination(event_sources.S3OnFailureDestination):
    """`S3OnFailureDestination` with a write-only grant.

    The stock class grants the consumer read *and* write (delete included) on
    the whole bucket; Lambda only needs to list the bucket and put objects under
    aws/lambda/, and a consumer must not be able to delete failed events.
    """

    def __init__(self, bucket: s3.IBucket) -> None:
        super().__init__(bucket)
        self._failed_events = bucket

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        bucket = self._failed_events
        bucket.grant_put(target_handler, f"{ON_FAILURE_PREFIX}*")
        target_handler.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        return lambda_.DlqDestinationConfig(destination=bucket.bucket_arn)
