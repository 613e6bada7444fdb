"""Rows of a bulk file, one at a time, from a binary stream: CSV, JSON lines, Parquet.

Every row comes out numbered and accounted for: a blank one (`blank`), one that
could not be read (`error`, with the reason), or its values. Row numbers are what
a person opening the file sees: CSV counts records with the header as row 1 (a
spreadsheet's numbering); JSON lines count lines; Parquet counts rows from 1.

CSV encodings: UTF-8 (a byte-order mark is dropped). A line that is not UTF-8 is
read as Windows-1252, the usual encoding of an Excel export, and its row carries a
note saying so; a line that is neither is rejected, never guessed further.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

MAX_LINE_BYTES = 1024 * 1024  # one line (JSON) or one physical CSV line
MAX_FIELD_CHARS = 64 * 1024
MAX_COLUMNS = 500
PARQUET_CHUNK = 2_000
FORMATS = ("csv", "jsonl", "parquet")


class ImportFileError(ValueError):
    """The file as a whole cannot be read (no header, unknown format)."""


@dataclass(frozen=True)
class RawRow:
    number: int
    values: dict[str, Any] = field(default_factory=dict)
    blank: bool = False
    error: str | None = None  # the row cannot be read: why
    note: str | None = None  # read, with a remark (decoded as Windows-1252)


def format_of(name: str, told: str | None = None) -> str:
    if told:
        if told not in FORMATS:
            raise ImportFileError(f"unknown format {told!r} (one of {', '.join(FORMATS)})")
        return told
    lower = name.lower().removesuffix(".gz")
    for suffix, kind in ((".parquet", "parquet"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
        if lower.endswith(suffix):
            return kind
    if lower.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise ImportFileError(f"{name}: cannot tell the format from the name; pass --format")


def read_rows(stream: IO[bytes], fmt: str) -> tuple[list[str] | None, Iterator[RawRow]]:
    """The column names (None for JSON lines, whose objects name their own) and the rows."""
    if fmt == "csv":
        return read_csv(stream)
    if fmt == "jsonl":
        return None, read_jsonl(stream)
    if fmt == "parquet":
        return read_parquet(stream)
    raise ImportFileError(f"unknown format {fmt!r}")


@dataclass
class _Lines:
    """Decoded physical lines for the csv module, remembering which needed cp1252 and
    which could not be decoded at all."""

    stream: IO[bytes]
    number: int = 0
    fallback: set[int] = field(default_factory=set)
    undecodable: set[int] = field(default_factory=set)
    too_long: set[int] = field(default_factory=set)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            self.too_long.add(self.number)
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                raw = self.stream.readline(MAX_LINE_BYTES)
            return "\n"
        if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = raw.decode("cp1252")
                self.fallback.add(self.number)
            except UnicodeDecodeError:
                self.undecodable.add(self.number)
                text = raw.decode("utf-8", errors="replace")
        return text.replace("\x00", "")


def read_csv(stream: IO[bytes]) -> tuple[list[str], Iterator[RawRow]]:
    lines = _Lines(stream)
    reader = csv.reader(lines)
    try:
        first = next(reader)
    except (StopIteration, csv.Error):
        first = []
    if lines.undecodable or lines.too_long or not any(cell.strip() for cell in first):
        raise ImportFileError("row 1: the first row must be the header of column names")
    header = _header(first)
    return header, _csv_rows(lines, reader, header)


def _csv_rows(lines: _Lines, reader: Iterator[list[str]], header: list[str]) -> Iterator[RawRow]:
    number, last_line = 1, lines.number
    while True:
        try:
            record = next(reader)
            error = None
        except StopIteration:
            return
        except csv.Error as err:
            record, error = [], f"not readable as CSV ({err})"
        number += 1
        physical = set(range(last_line + 1, lines.number + 1))
        last_line = lines.number
        if physical & lines.too_long:
            error = f"a line is longer than {MAX_LINE_BYTES} bytes"
        elif physical & lines.undecodable:
            error = "not valid UTF-8 or Windows-1252 text"
        note = "decoded as Windows-1252" if physical & lines.fallback else None
        if error:
            yield RawRow(number, error=error)
        elif not any(cell.strip() for cell in record):
            yield RawRow(number, blank=True)
        elif len(record) > len(header):
            yield RawRow(number, error=f"{len(record)} values for {len(header)} columns")
        elif any(len(cell) > MAX_FIELD_CHARS for cell in record):
            yield RawRow(number, error=f"a value is longer than {MAX_FIELD_CHARS} characters")
        else:
            yield RawRow(number, dict(zip(header, record, strict=False)), note=note)


def _header(record: list[str]) -> list[str]:
    if len(record) > MAX_COLUMNS:
        raise ImportFileError(f"row 1: more than {MAX_COLUMNS} columns")
    names = [cell.strip() for cell in record]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise ImportFileError(f"row 1: column {name[:80]!r} appears twice")
        seen.add(name)
    return names


def read_jsonl(stream: IO[bytes]) -> Iterator[RawRow]:
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_BYTES)
            yield RawRow(number, error=f"line is longer than {MAX_LINE_BYTES} bytes")
            continue
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            yield RawRow(number, blank=True)
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            yield RawRow(number, error="not valid UTF-8 (JSON lines are UTF-8)")
            continue
        except (json.JSONDecodeError, RecursionError) as err:
            yield RawRow(number, error=f"not JSON ({getattr(err, 'msg', 'too deeply nested')})")
            continue
        if not isinstance(value, dict):
            yield RawRow(number, error="not a JSON object")
        elif len(value) > MAX_COLUMNS:
            yield RawRow(number, error=f"more than {MAX_COLUMNS} fields")
        else:
            yield RawRow(number, value)


def read_parquet(stream: IO[bytes]) -> tuple[list[str], Iterator[RawRow]]:
    import pyarrow.parquet as pq  # only this format needs it

    try:
        parquet = pq.ParquetFile(stream)
    except Exception as err:
        raise ImportFileError(f"not a Parquet file ({err})") from None
    return list(parquet.schema_arrow.names), _parquet_rows(parquet)


def _parquet_rows(parquet: Any) -> Iterator[RawRow]:
    number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_CHUNK):
        for values in batch.to_pylist():
            number += 1
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values.values()):
                yield RawRow(number, blank=True)
            else:
                yield RawRow(number, values)


def total_rows(stream: IO[bytes], fmt: str) -> int | None:
    """Parquet knows its row count up front; text formats do not."""
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    count: int = pq.ParquetFile(stream).metadata.num_rows
    stream.seek(0)
    return count
