"""Firehose's transform: the same rows and partitions as the local writer."""

from __future__ import annotations

import base64
import json

from functions.archive.transform import transform
from functions.shared.resolved import record_json
from tests.unit.archive.test_archive_rows import T0, merge, resolved


def firehose_event(*payloads: bytes) -> dict[str, object]:
    return {
        "records": [
            {"recordId": f"r{i}", "data": base64.b64encode(p).decode()}
            for i, p in enumerate(payloads)
        ]
    }


def test_rows_are_flat_json_with_their_table_and_day() -> None:
    answer = transform(
        firehose_event(record_json(resolved("p1", "m1", T0)), record_json(merge("a", "b")))
    )["records"]
    event, merged = answer
    assert event["result"] == "Ok" and event["metadata"]["partitionKeys"] == {
        "table": "events",
        "dt": "2026-03-14",
    }
    row = json.loads(base64.b64decode(event["data"]))
    assert row["profile_id"] == "p1" and row["received_at"] == "2026-03-14 23:59:30.000"
    assert json.loads(row["properties"]) == {"product_id": "sku-1", "price": 12.5}
    assert merged["metadata"]["partitionKeys"]["table"] == "merges"


def test_a_row_keeps_its_position_in_the_stream_for_backfills() -> None:
    record = firehose_event(record_json(resolved("p1", "m1", T0)))["records"][0]
    record["kinesisRecordMetadata"] = {  # type: ignore[index]
        "shardId": "shardId-000000000001",
        "sequenceNumber": "49650000000000000000000000000000000000000000000000000001",
        "partitionKey": "p1",
    }
    (answer,) = transform({"records": [record]})["records"]
    row = json.loads(base64.b64decode(answer["data"]))
    assert row["shard_id"] == "shardId-000000000001"
    assert row["sequence_number"] == "49650000000000000000000000000000000000000000000000000001"
    (bare,) = transform(firehose_event(record_json(resolved("p1", "m1", T0))))["records"]
    assert json.loads(base64.b64decode(bare["data"]))["shard_id"] is None


def test_an_unreadable_record_is_a_processing_failure_kept_whole() -> None:
    (answer,) = transform(firehose_event(b"{not json"))["records"]
    assert answer["result"] == "ProcessingFailed"
    assert base64.b64decode(answer["data"]) == b"{not json"


def test_the_deployed_names_are_the_clis_and_the_views_sql_the_database() -> None:
    from cli.commands.archive import DATABASE, WORKGROUP
    from infra.constructs import archive

    assert (archive.DATABASE, archive.WORKGROUP) == (DATABASE, WORKGROUP)
    assert f"{DATABASE}.archived_events" in archive.EVENTS_VIEW_SQL
    assert f"{DATABASE}.merges" in archive.EVENTS_VIEW_SQL
