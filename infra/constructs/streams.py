"""Kinesis data streams, one per topology row."""

from __future__ import annotations

from typing import Literal

from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.topology import Stream

StreamMode = Literal["provisioned", "on-demand"]


class Streams(Construct):
    """`streams[name]` is the Kinesis stream of topology row `name`.

    Provisioned mode takes the row's shard count (cheapest at steady load), or
    `shards` for every stream (`-c beacon:shards=1`: the idle floor halves, $11 a
    month a shard, and each stream then takes up to 1,000 events/s); on-demand
    (`-c beacon:streamMode=on-demand`) scales by itself for spiky or unknown
    traffic and ignores shard counts.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rows: tuple[Stream, ...],
        key: kms.IKey,
        mode: StreamMode = "provisioned",
        shards: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.streams: dict[str, kinesis.Stream] = {}
        on_demand = mode == "on-demand"
        stream_mode = kinesis.StreamMode.ON_DEMAND if on_demand else kinesis.StreamMode.PROVISIONED
        for row in rows:
            self.streams[row.name] = kinesis.Stream(
                self,
                row.name,
                encryption=kinesis.StreamEncryption.KMS,
                encryption_key=key,
                retention_period=Duration.hours(row.retention_hours),
                stream_mode=stream_mode,
                shard_count=None if on_demand else shards or row.shards,
            )
