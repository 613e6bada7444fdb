"""Archive rows to Parquet bytes and back (pyarrow), and the rewrite an erasure does.

Only the code that writes or rewrites archive files imports this module (the
local writer, the archive store's erasure, the CLI's query); the layout and
rules it follows are in `archive.py`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from functions.shared.archive import COLUMNS, ErasureRequest, Row, keep

_TYPES = {"string": pa.string(), "timestamp": pa.timestamp("ms", tz="UTC")}


def schema(table: str) -> pa.Schema:
    return pa.schema([(name, _TYPES[kind]) for name, kind in COLUMNS[table]])


def encode(table: str, rows: Sequence[Row]) -> bytes:
    """Snappy-compressed Parquet, the columns in the table's order."""
    columns = {name: [row.get(name) for row in rows] for name, _ in COLUMNS[table]}
    arrow = pa.Table.from_pydict(columns, schema=schema(table))
    sink = io.BytesIO()
    pq.write_table(arrow, sink, compression="snappy")
    return sink.getvalue()


def decode(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def rows_of(data: bytes) -> list[Row]:
    return list(decode(data).to_pylist())


def rewrite(
    table: str, data: bytes, erasures: Iterable[ErasureRequest]
) -> tuple[bytes | None, int]:
    """The file without the erased rows: (new bytes, rows removed). (None, 0) when
    nothing in it is erased, so an untouched file is not written again."""
    requests = list(erasures)
    rows = rows_of(data)
    kept = [row for row in rows if keep(table, row, requests)]
    removed = len(rows) - len(kept)
    if not removed:
        return None, 0
    return encode(table, kept), removed
