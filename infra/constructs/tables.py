"""DynamoDB tables, one per topology row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.topology import Table


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


TableCapacity = Literal["on-demand", "provisioned"]


@dataclass(frozen=True)
class ProvisionedCapacity:
    """Provisioned tables follow their traffic with target-tracking auto scaling.

    Cheaper per write for steady traffic (docs/cost.md); the floor is paid while
    idle, and a burst faster than scaling (minutes) is absorbed by burst capacity
    or throttled, which the steps retry. The ceiling caps a runaway bill.
    """

    minimum: int = 5  # units each of read and write, per table and index
    maximum: int = 4000
    target_utilization_percent: int = 70


class Tables(Construct):
    """`tables[name]` is the DynamoDB table of topology row `name`.

    On-demand billing by default (the pipeline's load follows traffic), or
    provisioned with auto scaling (`-c beacon:tableCapacity=provisioned`); the
    stack's KMS key (profiles hold PII), point-in-time recovery, and RETAIN:
    deleting the stack must never delete customer profiles or the consent audit
    trail.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rows: tuple[Table, ...],
        key: kms.IKey,
        capacity: TableCapacity = "on-demand",
        provisioned: ProvisionedCapacity = ProvisionedCapacity(),
    ) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        scaled = capacity == "provisioned"
        for row in rows:
            table = dynamodb.Table(
                self,
                row.name,
                partition_key=_string(row.partition_key),
                sort_key=_string(row.sort_key) if row.sort_key else None,
                billing_mode=(
                    dynamodb.BillingMode.PROVISIONED
                    if scaled
                    else dynamodb.BillingMode.PAY_PER_REQUEST
                ),
                read_capacity=provisioned.minimum if scaled else None,
                write_capacity=provisioned.minimum if scaled else None,
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
                    read_capacity=provisioned.minimum if scaled else None,
                    write_capacity=provisioned.minimum if scaled else None,
                )
            if scaled:
                _scale(table, [index.name for index in row.indexes], provisioned)
            self.tables[row.name] = table


def _scale(table: dynamodb.Table, indexes: list[str], limits: ProvisionedCapacity) -> None:
    bounds = {"min_capacity": limits.minimum, "max_capacity": limits.maximum}
    target = limits.target_utilization_percent
    table.auto_scale_read_capacity(**bounds).scale_on_utilization(target_utilization_percent=target)
    table.auto_scale_write_capacity(**bounds).scale_on_utilization(
        target_utilization_percent=target
    )
    for index in indexes:
        table.auto_scale_global_secondary_index_read_capacity(index, **bounds).scale_on_utilization(
            target_utilization_percent=target
        )
        table.auto_scale_global_secondary_index_write_capacity(
            index, **bounds
        ).scale_on_utilization(target_utilization_percent=target)
