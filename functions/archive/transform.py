"""Firehose's record transformation for the archive: a resolved record -> one flat
JSON row, with the table and day it belongs to as partition keys.

Firehose then converts the rows to Parquet with the Glue schema
(infra/constructs/archive.py) and writes them under `<table>/dt=<day>/`: the
layout the local writer produces (functions/shared/archive.py has both's rules).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from functions.shared.archive import StreamPosition, archive_row, day_of
from functions.shared.resolved import parse_record


def _value(value: Any) -> Any:
    # The OpenX JSON SerDe reads timestamps as "yyyy-MM-dd HH:mm:ss.SSS" (UTC).
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return value


def _position(record: dict[str, Any]) -> StreamPosition | None:
    """Firehose hands a Kinesis source's position in `kinesisRecordMetadata`."""
    meta = record.get("kinesisRecordMetadata") or {}
    if not meta.get("shardId") or not meta.get("sequenceNumber"):
        return None
    return StreamPosition(str(meta["shardId"]), str(meta["sequenceNumber"]))


def transform_record(record: dict[str, Any]) -> dict[str, Any]:
    """One Firehose record: `Ok` with the row and its partition keys, or
    `ProcessingFailed` (Firehose writes those whole to the error prefix)."""
    try:
        table, row = archive_row(parse_record(base64.b64decode(record["data"])), _position(record))
    except (ValidationError, ValueError):
        return {
            "recordId": record["recordId"],
            "result": "ProcessingFailed",
            "data": record["data"],
        }
    line = json.dumps({k: _value(v) for k, v in row.items()}, separators=(",", ":")) + "\n"
    return {
        "recordId": record["recordId"],
        "result": "Ok",
        "data": base64.b64encode(line.encode("utf-8")).decode("ascii"),
        "metadata": {"partitionKeys": {"table": table, "dt": day_of(table, row)}},
    }


def transform(event: dict[str, Any]) -> dict[str, Any]:
    return {"records": [transform_record(record) for record in event.get("records", [])]}
