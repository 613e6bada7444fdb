"""The profile export's Parquet files: one explicit schema, written in parts to a sink.

Types every engine named in docs/exports.md reads the same way (Athena, Snowflake,
BigQuery, DuckDB): strings, booleans, 64-bit integers, timestamps in microseconds
adjusted to UTC, and one list of strings. Nested values whose shape the user's
configuration decides (traits, computed traits, segments, scores, identifiers,
consent) are JSON text: a struct column would need a schema per deployment, and
Parquet maps are read differently by each engine (BigQuery has no map type).

Layout: `<prefix>profiles/dt=<YYYY-MM-DD>/part-<nnnn>.parquet`, Hive-style, so
Athena and BigQuery see `dt` as a partition column and DuckDB with
`hive_partitioning=true`. A run writes the whole snapshot for its day and removes
parts an earlier run of the same day left beyond its own, so a day's partition is
always exactly one snapshot.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

_TS = pa.timestamp("us", tz="UTC")

PROFILE_SCHEMA = pa.schema(
    [
        pa.field("profile_id", pa.string(), nullable=False),
        pa.field("exported_at", _TS, nullable=False),
        pa.field("consented", pa.bool_(), nullable=False),
        pa.field("consent", pa.string()),  # JSON {category: granted}
        pa.field("consent_at", _TS),
        pa.field("identifiers", pa.string()),  # JSON {type: [values]}
        pa.field("user_id", pa.string()),
        pa.field("traits", pa.string()),  # JSON
        pa.field("computed", pa.string()),  # JSON {trait id: value}
        pa.field("segments", pa.string()),  # JSON {segment id: {since, held_out}}
        pa.field("segment_ids", pa.list_(pa.string())),
        pa.field("scores", pa.string()),  # JSON {model: {score, band, model_version}}
        pa.field("persona", pa.string()),
        pa.field("first_seen", _TS),
        pa.field("last_seen", _TS),
        pa.field("profile_version", pa.int64()),
    ]
)
COLUMNS = tuple(PROFILE_SCHEMA.names)
ROWS_PER_PART = 200_000
ROWS_PER_GROUP = 50_000
PART_SUFFIX = ".parquet"


class Sink(Protocol):
    """Where the files go: a local directory (`sinks.LocalSink`) or an S3 bucket
    (`functions/shared/dal/export_sink.py`); keys are relative, `/`-separated."""

    def put(self, key: str, body: bytes) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class Destination:
    """`--out`: a local directory or `s3://bucket/prefix/`."""

    bucket: str | None  # None: a local directory
    root: str  # the directory (local) or the key prefix ('' or ending in '/')

    @classmethod
    def parse(cls, out: str) -> Destination:
        text = out.strip()
        if not text:
            raise ValueError("--out: empty")
        if text.startswith("s3://"):
            bucket, _, prefix = text.removeprefix("s3://").partition("/")
            if not bucket:
                raise ValueError(f"--out {out!r}: no bucket (s3://bucket/prefix/)")
            prefix = prefix.strip("/")
            return cls(bucket, f"{prefix}/" if prefix else "")
        if "://" in text:
            raise ValueError(f"--out {out!r}: a directory or s3://bucket/prefix/")
        return cls(None, text)

    def __str__(self) -> str:
        return self.root if self.bucket is None else f"s3://{self.bucket}/{self.root}"


def partition(kind: str, now: datetime, prefix: str = "") -> str:
    """`profiles/dt=2026-12-04/` under `prefix`: the day is the run's, in UTC."""
    return f"{prefix}{kind}/dt={now.strftime('%Y-%m-%d')}/"


def part_key(partition_prefix: str, n: int) -> str:
    return f"{partition_prefix}part-{n:04d}{PART_SUFFIX}"


class PartWriter:
    """Rows in, Parquet parts out: a part every `rows_per_part` rows, a row group
    every `rows_per_group`. `close()` writes the last part (an empty snapshot is
    one empty part, so a reader of the day sees nobody rather than yesterday) and
    removes the day's parts that this run did not write."""

    def __init__(
        self,
        sink: Sink,
        partition_prefix: str,
        schema: pa.Schema = PROFILE_SCHEMA,
        rows_per_part: int = ROWS_PER_PART,
        rows_per_group: int = ROWS_PER_GROUP,
    ) -> None:
        if rows_per_group < 1 or rows_per_part < rows_per_group:
            raise ValueError("rows_per_part must be at least rows_per_group, which is >= 1")
        self.sink = sink
        self.partition = partition_prefix
        self.schema = schema
        self.rows_per_part = rows_per_part
        self.rows_per_group = rows_per_group
        self.written: list[str] = []
        self.rows = 0
        self._pending: list[dict[str, Any]] = []
        self._buffer: io.BytesIO | None = None
        self._writer: pq.ParquetWriter | None = None
        self._in_part = 0

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._pending.append(row)
            if len(self._pending) >= self.rows_per_group:
                self._flush_group()

    def _flush_group(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            self._buffer = io.BytesIO()
            self._writer = pq.ParquetWriter(self._buffer, self.schema, compression="snappy")
        table = pa.Table.from_pylist(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=self.rows_per_group)
        self.rows += len(self._pending)
        self._in_part += len(self._pending)
        self._pending = []
        if self._in_part >= self.rows_per_part:
            self._finish_part()

    def _finish_part(self) -> None:
        if self._writer is None or self._buffer is None:
            return
        self._writer.close()
        key = part_key(self.partition, len(self.written))
        self.sink.put(key, self._buffer.getvalue())
        self.written.append(key)
        self._writer, self._buffer, self._in_part = None, None, 0

    def close(self) -> list[str]:
        self._flush_group()
        if self._writer is None and not self.written:
            self._writer = pq.ParquetWriter(buffer := io.BytesIO(), self.schema)
            self._buffer = buffer
        self._finish_part()
        stale = [
            k
            for k in self.sink.keys(self.partition)
            if k.endswith(PART_SUFFIX) and k not in set(self.written)
        ]
        if stale:
            self.sink.delete(stale)
        return self.written
