"""SQS queues, one per topology row, with the row's dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.topology import Queue


class Queues(Construct):
    """`queues[name]` is the SQS queue of topology row `name`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, rows: tuple[Queue, ...], key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        by_name = {row.name: row for row in rows}
        for row in rows:
            self._build(row, by_name, key)

    def _build(self, row: Queue, by_name: dict[str, Queue], key: kms.IKey) -> sqs.Queue:
        if row.name in self.queues:
            return self.queues[row.name]
        dead_letter = None
        if row.dead_letter is not None:
            # A queue's DLQ must exist before the redrive policy can name it.
            dead_letter = sqs.DeadLetterQueue(
                queue=self._build(by_name[row.dead_letter], by_name, key),
                max_receive_count=row.max_receive_count,
            )
        queue = sqs.Queue(
            self,
            row.name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(row.retention_days),
            visibility_timeout=Duration.seconds(row.visibility_timeout_s),
            dead_letter_queue=dead_letter,
        )
        self.queues[row.name] = queue
        return queue
