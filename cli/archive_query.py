"""SQL over the event archive: DuckDB on the local stack's files, Athena when deployed.

Both offer the same tables (docs/archive.md):

- `archived_events`: the rows as written (at least once: a stream redelivery
  writes a copy), with the profile id each event resolved to then and `dt`;
- `merges`: every profile merge (`survivor`, `loser`, `at`, `rule`);
- `events`: one row per message id, its `profile_id` the profile the event
  belongs to now (a merged-away profile's rows under the survivor), and
  `archived_profile_id` as written.

DuckDB cannot fetch its S3 extension here (nor should a laptop need it): the
files are read through boto3 (moto) and handed to DuckDB as Arrow tables.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from functions.shared.archive import DATABASE, EVENTS, MERGES, WORKGROUP, day_from_key, survivors
from functions.shared.dal.archive_athena import Answer, AthenaArchive
from functions.shared.dal.archive_store import ArchiveStore

__all__ = ["Answer", "AthenaArchive", "LocalArchive", "print_answer", "render"]

# One row per message id (the first archived copy); the survivor's id for a
# merged-away profile (`profile_map`: each loser -> the end of its chain of merges).
LOCAL_EVENTS_VIEW = """
CREATE VIEW events AS
SELECT e.message_id, COALESCE(m.survivor, e.profile_id) AS profile_id, e.type, e.event,
       e.name, e.timestamp, e.received_at, e.anonymous_id, e.user_id, e.traits,
       e.properties, e.context, e.source, e.shard_id, e.sequence_number, e.dt,
       e.profile_id AS archived_profile_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY message_id ORDER BY received_at, dt) AS copy
    FROM archived_events
) e
LEFT JOIN profile_map m ON m.loser = e.profile_id
WHERE e.copy = 1
"""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def render(answer: Answer, fmt: str) -> Iterator[str]:
    """json: one object per row (JSON Lines); csv: a header, then the rows."""
    if fmt == "json":
        for row in answer.rows:
            yield json.dumps(
                {c: _plain(v) for c, v in zip(answer.columns, row, strict=True)},
                ensure_ascii=False,
            )
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(answer.columns)
    for row in answer.rows:
        writer.writerow([_plain(v) for v in row])
    yield buffer.getvalue().rstrip("\n")


class LocalArchive:
    """The archive bucket's Parquet files in an in-memory DuckDB (read-only: a
    query cannot change the files)."""

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store

    def _table(self, table: str) -> Any:
        import pyarrow as pa

        from functions.shared.archive_parquet import decode, schema

        parts = []
        for key in self.store.files(table):
            part = decode(self.store.get(key))
            day = day_from_key(key) or ""
            parts.append(part.append_column("dt", pa.array([day] * part.num_rows, pa.string())))
        if not parts:
            empty = schema(table).append(pa.field("dt", pa.string()))
            return empty.empty_table()
        # Files written before a column was added lack it: it reads as null.
        return pa.concat_tables(parts, promote_options="default")

    def query(self, sql: str) -> Answer:
        import duckdb
        import pyarrow as pa

        archived_events = self._table(EVENTS)
        merges = self._table(MERGES)
        chain = survivors(merges.to_pylist())
        profile_map = pa.table(
            {"loser": list(chain), "survivor": list(chain.values())},
            schema=pa.schema([("loser", pa.string()), ("survivor", pa.string())]),
        )
        with duckdb.connect(":memory:") as db:
            db.register("archived_events", archived_events)
            db.register("merges", merges)
            db.register("profile_map", profile_map)
            db.execute(LOCAL_EVENTS_VIEW)
            # Through Arrow: DuckDB's own conversion of zoned timestamps needs pytz.
            result = db.execute(sql).fetch_arrow_table()
            columns = list(result.column_names)
            rows = [tuple(row[c] for c in columns) for row in result.to_pylist()]
            return Answer(columns, rows)


def archive_engine(args: Any) -> LocalArchive | AthenaArchive:
    """The engine `--aws-endpoint` means: DuckDB over the local stack's files, or Athena
    (the workgroup and database given, if the verb offers them)."""
    from cli.resources import Clients, names

    clients = Clients(args.aws_endpoint)
    if args.aws_endpoint:
        return LocalArchive(ArchiveStore(names(args).bucket("archive"), clients.client("s3")))
    return AthenaArchive(
        clients.client("athena"),
        getattr(args, "workgroup", WORKGROUP),
        getattr(args, "database", DATABASE),
    )


def rows_of(answer: Answer) -> list[dict[str, Any]]:
    return [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]


def print_answer(answer: Answer, fmt: str, out: Any) -> None:
    for line in render(answer, fmt):
        print(line, file=out)


def column_values(answer: Answer, column: str) -> Sequence[Any]:
    index = answer.columns.index(column)
    return [row[index] for row in answer.rows]
