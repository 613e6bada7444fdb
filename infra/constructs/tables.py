"""DynamoDB tables, one per topology row."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.topology import Table


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Tables(Construct):
    """`tables[name]` is the DynamoDB table of topology row `name`.

    On-demand billing (the pipeline's load follows traffic), the stack's KMS
    key (profiles hold PII), point-in-time recovery, and RETAIN: deleting the
    stack must never delete customer profiles or the consent audit trail.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, rows: tuple[Table, ...], key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for row in rows:
            table = dynamodb.Table(
                self,
                row.name,
                partition_key=_string(row.partition_key),
                sort_key=_string(row.sort_key) if row.sort_key else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=row.ttl_attribute,
                removal_policy=RemovalPolicy.RETAIN,
            )
            for index in row.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_string(index.partition_key),
                    sort_key=_string(index.sort_key) if index.sort_key else None,
                    projection_type=dynamodb.ProjectionType[index.projection],
                )
            self.tables[row.name] = table
