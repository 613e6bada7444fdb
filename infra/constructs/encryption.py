"""The stack's one customer-managed KMS key."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct


class EncryptionKey(Construct):
    """Encrypts streams, tables, queues, the failed-events bucket and secrets.

    One key keeps the grants simple (every data grant also grants use of this
    key) and the bill small (one key, one rotation schedule).
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Beacon: events, profiles, queues, failed events and keys at rest",
            enable_key_rotation=True,
            # Deleting the key would make every retained table and bucket unreadable.
            removal_policy=RemovalPolicy.RETAIN,
        )
