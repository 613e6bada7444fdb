"""A record bound for a Kinesis stream, as the logic hands it to storage."""

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamRecord:
    partition_key: str
    data: bytes
