"""The Beacon stack: the wiring table, built as AWS resources."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.scoring.models import load_scorers
from functions.scoring.personas import load_configured_personas
from functions.scoring.recommend import load_configured_recommender
from functions.shared.config import BeaconConfig
from infra.constructs.alarms import Alarms
from infra.constructs.archive import Archive
from infra.constructs.buckets import Buckets
from infra.constructs.encryption import EncryptionKey
from infra.constructs.exports import ProfileExports
from infra.constructs.http_api import HttpApi
from infra.constructs.nag import apply_nag_suppressions
from infra.constructs.operations_dashboard import OperationsDashboard
from infra.constructs.pipeline_function import PipelineFunction, PipelineResources
from infra.constructs.queues import Queues
from infra.constructs.secrets import Secrets
from infra.constructs.streams import StreamMode, Streams
from infra.constructs.tables import TableCapacity, Tables
from infra.topology import Topology

STREAM_MODE_CONTEXT = "beacon:streamMode"
SHARDS_CONTEXT = "beacon:shards"  # every provisioned stream's shard count (docs/cost.md)
TABLE_CAPACITY_CONTEXT = "beacon:tableCapacity"  # on-demand | provisioned (docs/cost.md)


class BeaconStack(Stack):
    """Composes one construct per concern; every name and setting comes from
    `topology` (resources, functions, triggers) or `config` (secrets)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        config: BeaconConfig,
        config_path: str | Path,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "Beacon: serverless customer-data pipeline")
        super().__init__(scope, construct_id, **kwargs)
        topology.validate()
        # A model whose manifest does not match it fails the synth, not the first batch.
        scorers = load_scorers(config.models, Path(config_path).resolve().parent)
        load_configured_recommender(config.models, Path(config_path).resolve().parent)
        primaries = [s.manifest.name for s in scorers if s.manifest.role == "primary"]
        if load_configured_personas(config.models, Path(config_path).resolve().parent):
            # The persona mix drifts like a model's features: the same metric and alarm.
            primaries.append("personas")
        self.topology = topology

        key = EncryptionKey(self, "Encryption").key
        self.streams = Streams(
            self,
            "Streams",
            rows=topology.streams,
            key=key,
            mode=_stream_mode(self),
            shards=_shards(self),
        ).streams
        self.tables = Tables(
            self, "Tables", rows=topology.tables, key=key, capacity=_table_capacity(self)
        ).tables
        self.queues = Queues(self, "Queues", rows=topology.queues, key=key).queues
        buckets = Buckets(self, "Buckets", rows=topology.buckets, key=key)
        self.buckets = buckets.buckets
        self.access_logs_bucket = buckets.access_logs
        self.secrets = Secrets(self, "Secrets", config=config, key=key)

        resources = PipelineResources(
            streams=self.streams,
            tables=self.tables,
            queues=self.queues,
            buckets=self.buckets,
            secrets=self.secrets.by_role,
        )
        self.functions = {
            row.name: PipelineFunction(
                self,
                f"Fn-{row.name}",
                row=row,
                topology=topology,
                resources=resources,
                config_path=Path(config_path),
            )
            for row in topology.functions
        }
        # The event archive: one construct per delivery stream row (docs/archive.md).
        self.archives = {
            row.name: Archive(
                self,
                f"Archive-{row.name}",
                row=row,
                stream=self.streams[row.source_stream],
                bucket=self.buckets[row.bucket],
                results_bucket=self.buckets[row.results_bucket],
                transform=self.functions[row.transform].function,
                key=key,
            )
            for row in topology.delivery_streams
        }
        for fn in self.functions.values():
            if fn.row.queries_archive:
                for archive in self.archives.values():
                    archive.grant_query(fn.function)
        # The scheduled profile export: its delete grant and Athena table (docs/exports.md).
        if "exports" in self.functions:
            self.exports = ProfileExports(
                self, "Exports", function=self.functions["exports"], bucket=self.buckets["exports"]
            )
        # Warm containers for the touchpoint when the configuration asks: the API calls
        # an alias that carries the provisioned concurrency, not $LATEST.
        warm = {"personalize": config.personalize.provisioned_concurrency}
        targets: dict[str, lambda_.IFunction] = {}
        for name, fn in self.functions.items():
            targets[name] = fn.function
            if warm.get(name):
                targets[name] = lambda_.Alias(
                    self,
                    f"Fn-{name}-live",
                    alias_name="live",
                    version=fn.function.current_version,
                    provisioned_concurrent_executions=warm[name],
                )
        self.http_api = HttpApi(
            self,
            "Http",
            routes=[
                (fn.row, targets[name]) for name, fn in self.functions.items() if fn.row.http_routes
            ],
            key=key,
        )

        self.alarms = Alarms(
            self,
            "Alarms",
            functions=self.functions.values(),
            queues=self.queues,
            queue_rows=topology.queues,
            key=key,
            drift_models=primaries,
            drift_threshold=config.models.drift_alarm_psi,
        )
        self.operations = OperationsDashboard(
            self,
            "Operations",
            functions=self.functions.values(),
            dead_letter_queues=[
                self.queues[q.dead_letter] for q in topology.queues if q.dead_letter
            ],
            models=primaries,
        )
        CfnOutput(
            self,
            "AlarmTopic",
            value=self.alarms.topic.topic_arn,
            description="SNS topic of Beacon's alarms: subscribe your on-call address",
        )

        CfnOutput(self, "ApiUrl", value=self.http_api.url, description="Beacon HTTP API base URL")
        CfnOutput(
            self,
            "ApiAccessLogs",
            value=self.http_api.access_logs.log_group_name,
            description="Log group of the HTTP API access logs (refusals at the door too)",
        )
        # The names from the config, not `secret.secret_name`: CDK derives that
        # from the ARN by splitting on '-', which breaks on names with several.
        for source in config.sources:
            CfnOutput(
                self,
                f"WriteKeySecret{output_id(source.name)}",
                value=source.write_key_secret,
                description=f"Secrets Manager name of the write key of source {source.name!r}",
            )
        CfnOutput(
            self,
            "AdminKeySecret",
            value=config.admin.admin_key_secret,
            description="Secrets Manager name of the admin key",
        )
        # Physical names: what the operator commands (`beacon dlq`, `beacon models
        # status`, `beacon dashboard`) take as --name kind:logical=<this>.
        physical = [
            *(("bucket", n, b.bucket_name) for n, b in self.buckets.items()),
            *(("queue", n, q.queue_name) for n, q in self.queues.items()),
            *(("table", n, t.table_name) for n, t in self.tables.items()),
        ]
        for kind, name, value in physical:
            CfnOutput(
                self,
                f"{kind.capitalize()}{output_id(name)}",
                value=value,
                description=f"{kind} {name!r}: --name {kind}:{name}=<this>",
            )

        apply_nag_suppressions(
            self,
            streams=self.streams,
            secrets=self.secrets,
            functions=self.functions.values(),
            resources=resources,
            http_api=self.http_api,
        )


def _stream_mode(scope: Construct) -> StreamMode:
    value = scope.node.try_get_context(STREAM_MODE_CONTEXT) or "provisioned"
    if value not in ("provisioned", "on-demand"):
        raise ValueError(f"context {STREAM_MODE_CONTEXT} must be 'provisioned' or 'on-demand'")
    return "on-demand" if value == "on-demand" else "provisioned"


def _table_capacity(scope: Construct) -> TableCapacity:
    value = scope.node.try_get_context(TABLE_CAPACITY_CONTEXT) or "on-demand"
    if value not in ("on-demand", "provisioned"):
        raise ValueError(f"context {TABLE_CAPACITY_CONTEXT} must be 'on-demand' or 'provisioned'")
    return "provisioned" if value == "provisioned" else "on-demand"


def _shards(scope: Construct) -> int | None:
    value = scope.node.try_get_context(SHARDS_CONTEXT)
    if value is None:
        return None
    if not str(value).isdigit() or not 1 <= int(value) <= 100:
        raise ValueError(f"context {SHARDS_CONTEXT} must be a whole number from 1 to 100")
    return int(value)


def output_id(name: str) -> str:
    """CfnOutput ids are alphanumeric: `failed-events` -> `FailedEvents`."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name))
