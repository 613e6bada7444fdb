"""The profile export on AWS (docs/exports.md): what the `exports` function row of the
wiring table cannot say by itself.

- The function may delete objects under `profiles/` of the exports bucket only: a run
  removes the parts an earlier run of the same day left beyond its own.
- A Glue table over `profiles/dt=<day>/`, with partition projection (no crawler, no
  `MSCK REPAIR`), so Athena queries the snapshots as soon as they land:
  `SELECT ... FROM beacon_exports.profiles WHERE dt = '2026-12-04'`. Its columns come
  from the export's own Parquet schema (functions/exports/parquet.py), so they cannot
  drift from what the function writes.

The schedule, the function, its reads and its writes come from the row itself
(infra/constructs/pipeline_function.py), like every other function's.
"""

from __future__ import annotations

import pyarrow as pa
from aws_cdk import Aws
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.exports.parquet import PROFILE_SCHEMA
from infra.constructs.nag import acknowledge_exports
from infra.constructs.pipeline_function import PipelineFunction

DATABASE = "beacon_exports"
TABLE = "profiles"
PREFIX = "profiles/"
FIRST_DAY = "2026-01-01"  # partition projection's first day; later days need no change


def glue_type(kind: pa.DataType) -> str:
    """A Parquet column's Hive/Athena type."""
    if pa.types.is_string(kind):
        return "string"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_int64(kind):
        return "bigint"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_list(kind):
        return f"array<{glue_type(kind.value_type)}>"
    raise ValueError(f"no Glue type for {kind}")


class ProfileExports(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: PipelineFunction,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        bucket.grant_delete(function.function, f"{PREFIX}*")
        acknowledge_exports(function.role, bucket.bucket_arn, PREFIX)

        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=DATABASE, description="Beacon's profile exports (docs/exports.md)"
            ),
        )
        location = bucket.s3_url_for_object(PREFIX)
        self.table = glue.CfnTable(
            self,
            "ProfilesTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE,
                description="one snapshot of every profile a day (only what consent allows)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{FIRST_DAY},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": f"{location}dt=${{dt}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=f.name, type=glue_type(f.type))
                        for f in PROFILE_SCHEMA
                    ],
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        self.table.node.add_dependency(self.database)
