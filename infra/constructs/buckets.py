"""S3 buckets, one per topology row (today: failed-events), plus their access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.topology import Bucket


class Buckets(Construct):
    """`buckets[name]` is the S3 bucket of topology row `name`.

    The failed-events bucket is the pipeline's "nothing lost" store, so it is
    versioned (an overwrite or delete is recoverable) and RETAINed. The archive is
    versioned too, but keeps a rewritten file's old version one day only (its row's
    `noncurrent_days`): an erasure must not live on in old versions.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, rows: tuple[Bucket, ...], key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        # Log delivery by bucket policy, not the legacy LogDeliveryWrite ACL
        # (ACLs are disabled under BUCKET_OWNER_ENFORCED). cdk.json enables
        # this flag too; setting it here keeps the construct correct on its own.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        longest = max((row.expire_days for row in rows), default=90)
        # S3 server access logging cannot write to an SSE-KMS bucket, hence SSE-S3 here.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Kept as long as the data they describe.
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(longest))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.buckets: dict[str, s3.Bucket] = {}
        for row in rows:
            self.buckets[row.name] = s3.Bucket(
                self,
                row.name,
                encryption=s3.BucketEncryption.KMS,
                encryption_key=key,
                bucket_key_enabled=True,  # one KMS call per bucket key, not per object
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                versioned=row.versioned,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        expiration=Duration.days(row.expire_days),
                        noncurrent_version_expiration=(
                            Duration.days(row.noncurrent_days or row.expire_days)
                            if row.versioned
                            else None
                        ),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    ),
                    *(
                        s3.LifecycleRule(prefix=prefix, expiration=Duration.days(days))
                        for prefix, days in row.expire_prefixes
                    ),
                ],
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{row.name}/",
                removal_policy=RemovalPolicy.RETAIN,
            )
