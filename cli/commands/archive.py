"""`beacon archive query "SQL" [--format json|csv]`: SQL over the event archive
(docs/archive.md). Locally DuckDB over the archive bucket's Parquet files in the
local stack's moto; with `--aws-endpoint ''`, Athena in the stack's workgroup."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.commands import Verbs
from cli.resources import aws_arguments
from functions.shared.archive import DATABASE, WORKGROUP


def register(verbs: Verbs[Any]) -> None:
    archive = verbs.add_parser("archive", help="the event archive: SQL over every event")
    archive_verbs = archive.add_subparsers(dest="archive_verb", required=True)
    query = archive_verbs.add_parser(
        "query",
        help="run SQL over the archive: tables events, archived_events, merges",
    )
    query.add_argument("sql", help='e.g. "SELECT event, count(*) FROM events GROUP BY event"')
    query.add_argument("--format", choices=("json", "csv"), default="json")
    aws_arguments(query)
    query.add_argument("--workgroup", default=WORKGROUP, help="Athena workgroup (deployed)")
    query.add_argument("--database", default=DATABASE, help="Glue database (deployed)")
    query.set_defaults(run=cmd_archive_query)


def cmd_archive_query(args: argparse.Namespace) -> int:
    from cli.archive_query import archive_engine, print_answer

    try:
        answer = archive_engine(args).query(args.sql)
    except Exception as err:  # the engine's message is what the operator needs
        print(f"query failed: {err}", file=sys.stderr)
        return 1
    print_answer(answer, args.format, sys.stdout)
    return 0
