"""The event archive on AWS: Firehose from the `resolved` stream to Parquet on S3,
the Glue tables and view Athena reads, and the Athena workgroup (docs/archive.md).

Built from one `DeliveryStream` row of the wiring table: its source stream,
its bucket, its results bucket, its transform function and its buffering.
The columns come from `functions/shared/archive.py`, the same rules the local
writer follows, so `beacon archive query` sees the same tables in both places.
"""

from __future__ import annotations

import base64
import json

from aws_cdk import Aws, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.shared.archive import (
    COLUMNS,
    DATABASE,
    EVENT_COLUMNS,
    EVENTS,
    MERGE_COLUMNS,
    MERGES,
    RAW_EVENTS_TABLE,
    WORKGROUP,
)
from infra.constructs.nag import acknowledge_archive
from infra.topology import DeliveryStream

RAW_EVENTS = RAW_EVENTS_TABLE
CONVERSION_TABLE = "archive_records"  # Firehose's Parquet schema: every column of both
TABLE_OF = {EVENTS: RAW_EVENTS, MERGES: MERGES}

_PRESTO_TYPES = {"string": "varchar", "timestamp": "timestamp(3)"}


def _columns(columns: tuple[tuple[str, str], ...]) -> list[glue.CfnTable.ColumnProperty]:
    return [glue.CfnTable.ColumnProperty(name=name, type=kind) for name, kind in columns]


# One row per message id; the profile a merged-away id lives on now, following
# chains of merges three deep (the local engine follows them to the end).
EVENTS_VIEW_SQL = """
SELECT e.message_id,
       COALESCE(m3.survivor, m2.survivor, m1.survivor, e.profile_id) AS profile_id,
       e.type, e.event, e.name, e."timestamp", e.received_at, e.anonymous_id, e.user_id,
       e.traits, e.properties, e.context, e.source, e.shard_id, e.sequence_number, e.dt,
       e.profile_id AS archived_profile_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY message_id ORDER BY received_at, dt) AS copy
    FROM beacon_archive.archived_events
) e
LEFT JOIN (SELECT DISTINCT loser, survivor FROM beacon_archive.merges) m1
       ON m1.loser = e.profile_id
LEFT JOIN (SELECT DISTINCT loser, survivor FROM beacon_archive.merges) m2
       ON m2.loser = m1.survivor
LEFT JOIN (SELECT DISTINCT loser, survivor FROM beacon_archive.merges) m3
       ON m3.loser = m2.survivor
WHERE e.copy = 1
"""


def events_view_columns() -> list[tuple[str, str]]:
    return [*EVENT_COLUMNS, ("dt", "string"), ("archived_profile_id", "string")]


class Archive(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        row: DeliveryStream,
        stream: kinesis.IStream,
        bucket: s3.IBucket,
        results_bucket: s3.IBucket,
        transform: lambda_.IFunction,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        account = Aws.ACCOUNT_ID
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=DATABASE, description="Beacon's event archive (docs/archive.md)"
            ),
        )
        self.tables = {table: self._partitioned_table(table, bucket) for table in (EVENTS, MERGES)}
        # Firehose's conversion schema: both tables' columns (a merge's row leaves the
        # event columns empty and the reverse; each Glue table reads its own by name).
        union = dict(EVENT_COLUMNS) | dict(MERGE_COLUMNS)
        self.conversion = glue.CfnTable(
            self,
            "ConversionSchema",
            catalog_id=account,
            database_name=DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=CONVERSION_TABLE,
                description="the row schema Firehose converts to Parquet with (not queried)",
                table_type="EXTERNAL_TABLE",
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=_columns(tuple(union.items())),
                    location=bucket.s3_url_for_object("events/"),
                ),
            ),
        )
        self.conversion.node.add_dependency(self.database)
        self.events_view = self._events_view()

        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=WORKGROUP,
            description="beacon archive query: encrypted results, bytes scanned capped",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=row.bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results_bucket.s3_url_for_object("results/"),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )

        self.log_group = logs.LogGroup(
            self,
            "DeliveryLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
        )
        delivery_log = logs.LogStream(self, "DeliveryErrors", log_group=self.log_group)
        self.role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"),
            description="Firehose: read the resolved stream, transform, convert, write the archive",
        )
        stream.grant_read(self.role)
        bucket.grant_read_write(self.role)
        transform.grant_invoke(self.role)
        key.grant_encrypt_decrypt(self.role)
        self.log_group.grant_write(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=[
                    Stack.of(self).format_arn(service="glue", resource="catalog"),
                    Stack.of(self).format_arn(
                        service="glue", resource="database", resource_name=DATABASE
                    ),
                    Stack.of(self).format_arn(
                        service="glue",
                        resource="table",
                        resource_name=f"{DATABASE}/{CONVERSION_TABLE}",
                    ),
                ],
            )
        )
        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=stream.stream_arn, role_arn=self.role.role_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix="!{partitionKeyFromLambda:table}/dt=!{partitionKeyFromLambda:dt}/",
                error_output_prefix="firehose-errors/!{firehose:error-output-type}/"
                "dt=!{timestamp:yyyy-MM-dd}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    size_in_m_bs=row.buffer_mib, interval_in_seconds=row.buffer_s
                ),
                compression_format="UNCOMPRESSED",  # Parquet compresses (Snappy) itself
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=key.key_arn
                    )
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(
                        duration_in_seconds=300
                    ),
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="LambdaArn",
                                    parameter_value=transform.function_arn,
                                ),
                            ],
                        )
                    ],
                ),
                data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                        deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                            open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty()
                        )
                    ),
                    output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                        serializer=firehose.CfnDeliveryStream.SerializerProperty(
                            parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(
                                compression="SNAPPY"
                            )
                        )
                    ),
                    schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                        catalog_id=account,
                        database_name=DATABASE,
                        table_name=CONVERSION_TABLE,
                        region=Aws.REGION,
                        role_arn=self.role.role_arn,
                        version_id="LATEST",
                    ),
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=delivery_log.log_stream_name,
                ),
            ),
        )
        # The role's policy must exist before Firehose first reads the stream.
        self.delivery_stream.node.add_dependency(self.role)
        self.delivery_stream.node.add_dependency(self.conversion)
        acknowledge_archive(
            Stack.of(self),
            self.role,
            self.delivery_stream,
            bucket.bucket_arn,
            transform.function_arn,
        )

    def grant_query(self, grantee: iam.IGrantable) -> None:
        """Run queries in the workgroup over the archive's tables (the read API's
        export). The buckets (archive read, results read and write) come from the
        function's row like any other bucket."""
        stack = Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[
                    stack.format_arn(
                        service="athena", resource="workgroup", resource_name=WORKGROUP
                    )
                ],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                ],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=DATABASE),
                    *(
                        stack.format_arn(
                            service="glue", resource="table", resource_name=f"{DATABASE}/{name}"
                        )
                        for name in (RAW_EVENTS, MERGES, "events")
                    ),
                ],
            )
        )

    def _partitioned_table(self, table: str, bucket: s3.IBucket) -> glue.CfnTable:
        """A Parquet table over `<table>/dt=YYYY-MM-DD/`, its partitions by projection
        (no crawler, no MSCK REPAIR: a new day is readable at once)."""
        location = bucket.s3_url_for_object(f"{table}/")
        cfn = glue.CfnTable(
            self,
            f"Table-{table}",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_OF[table],
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": "2024-01-01,NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": f"{location}dt=${{dt}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=_columns(COLUMNS[table]),
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        cfn.node.add_dependency(self.database)
        return cfn

    def _events_view(self) -> glue.CfnTable:
        """The `events` view, stored as Athena stores a view (a Presto view in Glue)."""
        columns = events_view_columns()
        presto = {
            "originalSql": EVENTS_VIEW_SQL.strip(),
            "catalog": "awsdatacatalog",
            "schema": DATABASE,
            "columns": [{"name": n, "type": _PRESTO_TYPES[t]} for n, t in columns],
        }
        encoded = base64.b64encode(json.dumps(presto).encode()).decode()
        view = glue.CfnTable(
            self,
            "EventsView",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name="events",
                table_type="VIRTUAL_VIEW",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=f"/* Presto View: {encoded} */",
                view_expanded_text="/* Presto View */",
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=_columns(tuple(columns)),
                    serde_info=glue.CfnTable.SerdeInfoProperty(),
                ),
            ),
        )
        for table in self.tables.values():
            view.node.add_dependency(table)
        return view
