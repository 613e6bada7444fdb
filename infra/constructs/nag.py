"""Every cdk-nag AwsSolutions acknowledgment of the stack, each with its reason.

cdk-nag 3 runs as a CDK policy-validation plugin and reads acknowledgments
recorded with `Validations.of(construct).acknowledge(...)`. Each one here is
scoped to the constructs it concerns, and an IAM5 (wildcard) acknowledgment
names the exact finding (`AwsSolutions-IAM5[Action::...]` /
`[Resource::...]`), derived from the same topology row that produced the
grant, so an unexpected wildcard still fails synth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_kinesis as kinesis
from constructs import IConstruct

from infra.constructs.http_api import HttpApi
from infra.constructs.pipeline_function import (
    ON_FAILURE_PREFIX,
    PipelineFunction,
    PipelineResources,
)
from infra.constructs.secrets import Secrets

KDS3 = (
    "Beacon's streams carry personal data, so they use the stack's customer-managed "
    "KMS key (rotation on, key policy and CloudTrail usage under the owner's control) "
    "rather than the AWS-managed aws/kinesis key this rule prefers for cost."
)
SMG4 = (
    "A write key is embedded in client snippets (analytics.js, pixels, server SDKs); "
    "rotating it automatically would break every deployed client. Rotation is a manual, "
    "documented procedure (docs/deploy.md). The admin key and salt follow the same procedure."
)
APIG4 = (
    "No API Gateway authorizer by design: write keys are checked in the ingest function "
    "(Basic auth, body or query, as Segment's API does) and the admin key in the read API; "
    "the Snowplow pixel (GET /i) is public by design, browsers load it as an image."
)
XRAY = (
    "Resource '*' is only xray:PutTraceSegments/PutTelemetryRecords (Tracing.ACTIVE); "
    "X-Ray has no resource-level permissions for them."
)
KMS_WILDCARDS = (
    "kms:GenerateDataKey*/ReEncrypt* come from CDK's grants on KMS-encrypted streams, "
    "queues, tables and buckets; they are scoped to the stack's single key ARN, never '*'."
)
S3_ABORT = (
    "s3:Abort* (AbortMultipartUpload) is part of CDK's grant_put so an interrupted upload "
    "can be cleaned up; scoped to objects of the one bucket the row writes."
)
S3_OBJECTS = (
    "Object-level S3 permissions need an object ARN pattern; it is limited to the one "
    "bucket this function writes or reads according to its topology row."
)
S3_ON_FAILURE = (
    "The Kinesis on-failure destination writes whole failed batches under "
    f"{ON_FAILURE_PREFIX}<mapping id>/...; the ids are assigned by Lambda at deploy time, "
    "so the grant is put-only on that prefix of the failed-events bucket."
)
S3_READ = (
    "s3:GetObject*/GetBucket*/List* are CDK's read-only grant_read on the one bucket the "
    "row reads (object and bucket ARN), needed to list and fetch its records."
)
DDB_INDEX = (
    "Queries on a table's GSIs need the index ARN pattern <table ARN>/index/*; it names "
    "only the indexes of the one table the row reads or writes."
)


KDF1 = (
    "A delivery stream with a Kinesis stream as its source cannot enable server-side "
    "encryption itself (Firehose refuses it): the source stream is encrypted with the "
    "stack's key, and the delivery stream writes to S3 with that key (KMS encryption "
    "configuration) - the data is encrypted at every step."
)
FIREHOSE_GRANTS = (
    "Firehose writes, lists and (after a failed multipart upload) removes objects in the "
    "archive bucket only (CDK's grant_read_write: s3:GetObject*/GetBucket*/List*/"
    "DeleteObject*/Abort*, on that bucket's ARN and its objects), encrypts with the "
    "stack's one key (kms:GenerateDataKey*/ReEncrypt*, that key's ARN only), and invokes "
    "the one transform function (its ARN and versions, `:*`)."
)


def acknowledge_archive(
    stack: Stack, role: IConstruct, delivery_stream: IConstruct, bucket_arn: str, transform_arn: str
) -> None:
    """The Firehose role's wildcard findings (each named exactly) and KDF1."""
    _ack(delivery_stream, "AwsSolutions-KDF1", KDF1)
    findings = [
        "Action::kms:GenerateDataKey*",
        "Action::kms:ReEncrypt*",
        "Action::s3:Abort*",
        "Action::s3:DeleteObject*",
        "Action::s3:GetBucket*",
        "Action::s3:GetObject*",
        "Action::s3:List*",
        f"Resource::{_arn(stack, bucket_arn)}/*",
        f"Resource::{_arn(stack, transform_arn)}:*",
    ]
    for finding in findings:
        _ack(role, f"AwsSolutions-IAM5[{finding}]", FIREHOSE_GRANTS)


EXPORT_DELETES = (
    "The profile export removes the parts an earlier run of the same day left "
    "(s3:DeleteObject*, CDK's grant_delete) under the profiles/ prefix of the exports "
    "bucket only."
)


def acknowledge_exports(role: IConstruct, bucket_arn: str, prefix: str) -> None:
    """The export function's delete grant (infra/constructs/exports.py), named exactly."""
    stack = Stack.of(role)
    _ack(role, "AwsSolutions-IAM5[Action::s3:DeleteObject*]", EXPORT_DELETES)
    _ack(role, f"AwsSolutions-IAM5[Resource::{_arn(stack, bucket_arn)}/{prefix}*]", EXPORT_DELETES)


def apply_nag_suppressions(
    stack: Stack,
    *,
    streams: Mapping[str, kinesis.IStream],
    secrets: Secrets,
    functions: Iterable[PipelineFunction],
    resources: PipelineResources,
    http_api: HttpApi,
) -> None:
    """Record every acknowledgment the stack needs (called once by BeaconStack)."""
    for stream in streams.values():
        _ack(stream, "AwsSolutions-KDS3", KDS3)
    for secret in secrets.all:
        _ack(secret, "AwsSolutions-SMG4", SMG4)
    _ack(http_api.api, "AwsSolutions-APIG4", APIG4)
    for fn in functions:
        for finding, reason in _wildcard_findings(stack, fn, resources).items():
            _ack(fn.role, f"AwsSolutions-IAM5[{finding}]", reason)


def _wildcard_findings(
    stack: Stack, fn: PipelineFunction, resources: PipelineResources
) -> dict[str, str]:
    """The IAM5 findings the row's grants produce, each with its reason."""
    row = fn.row
    findings = {"Resource::*": XRAY}
    encrypted_writes = (
        row.writes_streams or row.writes_tables or row.writes_queues or row.writes_buckets
    )
    if encrypted_writes or row.kinesis_sources:
        findings["Action::kms:GenerateDataKey*"] = KMS_WILDCARDS
        findings["Action::kms:ReEncrypt*"] = KMS_WILDCARDS
    for name in row.writes_buckets:
        findings["Action::s3:Abort*"] = S3_ABORT
        findings[f"Resource::{_arn(stack, resources.buckets[name].bucket_arn)}/*"] = S3_OBJECTS
    for name in row.reads_buckets:
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*"):
            findings[f"Action::{action}"] = S3_READ
        findings[f"Resource::{_arn(stack, resources.buckets[name].bucket_arn)}/*"] = S3_OBJECTS
    for ks in row.kinesis_sources:
        bucket_arn = _arn(stack, resources.buckets[ks.on_failure_bucket].bucket_arn)
        findings["Action::s3:Abort*"] = S3_ABORT
        findings[f"Resource::{bucket_arn}/{ON_FAILURE_PREFIX}*"] = S3_ON_FAILURE
    for name in {*row.reads_tables, *row.writes_tables}:
        if fn.topology.table(name).indexes:  # CDK adds <table>/index/* only then
            table_arn = _arn(stack, resources.tables[name].table_arn)
            findings[f"Resource::{table_arn}/index/*"] = DDB_INDEX
    return findings


def _arn(stack: Stack, token: str) -> str:
    """How cdk-nag spells a resource's ARN in a finding: `<LogicalId.Arn>`."""
    resolved: Any = stack.resolve(token)
    logical_id, attribute = resolved["Fn::GetAtt"]
    return f"<{logical_id}.{attribute}>"


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
