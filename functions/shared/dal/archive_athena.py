"""The deployed archive through Athena: `beacon archive query` and the read API's
export run their SQL in the stack's workgroup (its results encrypted, its bytes
scanned capped), over the Glue database of `archived_events`, `merges` and the
`events` view (docs/archive.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from functions.shared.archive import DATABASE, WORKGROUP, ErasureRequest, Row
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.dal.clients import client


@dataclass
class Answer:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class AthenaArchive:
    """The deployed archive: the query runs in the stack's Athena workgroup (its
    results encrypted, its bytes scanned capped), over the Glue database where the
    `archived_events`, `merges` tables and the `events` view live."""

    POLL_S = 0.5

    @property
    def athena(self) -> Any:
        return self._athena or client("athena")

    def __init__(
        self,
        athena: Any | None = None,
        workgroup: str = WORKGROUP,
        database: str = DATABASE,
        timeout_s: float = 300,
    ) -> None:
        self._athena = athena
        self.workgroup = workgroup
        self.database = database
        self.timeout_s = timeout_s

    def query(self, sql: str) -> Answer:
        started = self.athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self.workgroup,
            QueryExecutionContext={"Database": self.database},
        )
        query_id = started["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=query_id)
            state = status["QueryExecution"]["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = status["QueryExecution"]["Status"].get("StateChangeReason", state)
                raise RuntimeError(f"Athena query {query_id} {state}: {reason}")
            if time.monotonic() > deadline:
                self.athena.stop_query_execution(QueryExecutionId=query_id)
                raise TimeoutError(
                    f"Athena query {query_id} still {state} after {self.timeout_s} s"
                )
            time.sleep(self.POLL_S)
        return self._results(query_id)

    def _results(self, query_id: str) -> Answer:
        pages = self.athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        first = True
        for page in pages:
            result = page["ResultSet"]
            if not columns:
                columns = [c["Name"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
            data = result["Rows"]
            if first and data:
                data = data[1:]  # a SELECT's first row repeats the column names
            first = False
            rows.extend(tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in data)
        return Answer(columns, rows)


def _literal(value: str) -> str:
    """A SQL string literal (profile ids are Beacon's own, but quote them properly)."""
    return "'" + value.replace("'", "''") + "'"


class AthenaHistory:
    """The read API's view of the deployed archive (`ports.EventArchive`).

    Export: one Athena query over the `events` view, which already puts a
    merged-away profile's rows under the survivor. Erasure: the request is
    written to the bucket, and the `archive-erasure` job rewrites the files
    (within its schedule: docs/archive.md), so the API answers before it."""

    def __init__(self, store: ArchiveStore, athena: AthenaArchive) -> None:
        self.store = store
        self.engine = athena

    def profile_ids(self, profile_ids: set[str]) -> set[str]:
        return set(profile_ids)

    def events_of(self, profile_ids: set[str]) -> list[Row]:
        ids = ", ".join(_literal(p) for p in sorted(profile_ids))
        answer = self.engine.query(
            "SELECT * FROM events WHERE profile_id IN (" + ids + ") "  # noqa: S608 - quoted
            "OR archived_profile_id IN (" + ids + ")"
        )
        return [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]

    def erase(self, request: ErasureRequest) -> int:
        self.store.request_erasure(request)
        return 0  # the job removes the rows; the API cannot count them yet
