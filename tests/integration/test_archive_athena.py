"""`beacon archive query` deployed: the Athena client against moto's Athena.

moto runs no SQL (its results are canned: none unless queued), so this holds the
calls — the workgroup and database named, the state polled, the results paged
with the header row dropped — not the query's answer (docs/archive.md)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import requests

from cli.archive_query import AthenaArchive, render
from tests.integration.aws_helpers import REGION


@pytest.fixture
def athena(mocked_aws: None) -> Any:
    client = boto3.client("athena", region_name=REGION)
    client.create_work_group(
        Name="beacon-archive",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/"}},
    )
    return client


def test_a_query_runs_in_the_workgroup_and_its_rows_are_paged(athena: Any) -> None:
    rows = [["event", "n"], ["Product Viewed", "3"], ["Order Completed", "1"]]
    # moto's documented way to give a query its results.
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={
            "account_id": "123456789012",
            "region": REGION,
            "results": [
                {
                    "rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows],
                    "column_info": [
                        {"Name": "event", "Type": "varchar"},
                        {"Name": "n", "Type": "bigint"},
                    ],
                }
            ],
        },
        timeout=5,
    )
    engine = AthenaArchive(athena, "beacon-archive", "beacon_archive", timeout_s=10)
    answer = engine.query("SELECT event, count(*) AS n FROM events GROUP BY event")
    assert answer.columns == ["event", "n"]
    assert answer.rows == [("Product Viewed", "3"), ("Order Completed", "1")]
    assert list(render(answer, "csv")) == ["event,n\nProduct Viewed,3\nOrder Completed,1"]
    executions = athena.list_query_executions(WorkGroup="beacon-archive")["QueryExecutionIds"]
    assert len(executions) == 1
    detail = athena.get_query_execution(QueryExecutionId=executions[0])["QueryExecution"]
    assert detail["QueryExecutionContext"]["Database"] == "beacon_archive"


def test_the_deployed_export_queries_the_view_and_erasure_leaves_a_request(athena: Any) -> None:
    from datetime import UTC, datetime

    from functions.shared.archive import ErasureRequest
    from functions.shared.dal.archive_athena import AthenaHistory
    from functions.shared.dal.archive_store import ArchiveStore

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="archive")
    store = ArchiveStore("archive", s3)
    history = AthenaHistory(store, AthenaArchive(athena, timeout_s=10))
    assert history.events_of({"p1", "o'brien"}) == []  # moto answers no rows
    (query_id,) = athena.list_query_executions(WorkGroup="beacon-archive")["QueryExecutionIds"]
    sql = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
    assert "FROM events WHERE profile_id IN ('o''brien', 'p1')" in sql
    request = ErasureRequest("r1", ("p1",), datetime(2026, 3, 14, tzinfo=UTC))
    assert history.erase(request) == 0  # the job removes the rows later
    assert store.erasure_requests() == [request]
