"""`beacon attribution`: conversions and revenue by channel (or campaign), side by side
per attribution model, computed here from the event archive (docs/attribution.md).

The archive is read as `beacon archive query` reads it (DuckDB over the local
stack's files, Athena with `--aws-endpoint ''`); sessions and touches come from
models/touches.py, the models from models/attribution.py.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cli.commands import Verbs
from cli.resources import aws_arguments
from functions.shared.archive import DATABASE, WORKGROUP
from models.attribution import (
    DEFAULT_HALF_LIFE,
    DEFAULT_LOOKBACK,
    MODELS,
    Attribution,
    attribute,
)
from models.touches import DEFAULT_CONVERSION, hit_of_row, people_of

_DURATION = re.compile(r"^(\d{1,5})([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def duration(text: str) -> timedelta:
    """`30d`, `12h` or `90m`."""
    found = _DURATION.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a positive duration like 30d, 12h or 90m")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def moment(text: str) -> datetime:
    """A day (YYYY-MM-DD, midnight UTC) or an ISO-8601 time (UTC unless it says)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a date like 2026-11-01") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def register(verbs: Verbs[Any]) -> None:
    parser = verbs.add_parser(
        "attribution",
        help="conversions and revenue by channel or campaign per attribution model",
    )
    parser.add_argument(
        "--model", choices=(*MODELS, "all"), default="all", help="one model, or all side by side"
    )
    parser.add_argument("--since", type=moment, required=True, help="conversions from (UTC)")
    parser.add_argument("--until", type=moment, help="conversions before (UTC; default now)")
    parser.add_argument(
        "--conversion", default=DEFAULT_CONVERSION, help="the track event that converts"
    )
    parser.add_argument(
        "--lookback",
        type=duration,
        default=DEFAULT_LOOKBACK,
        help="how far before a conversion a touch counts (default 30d)",
    )
    parser.add_argument(
        "--half-life",
        type=duration,
        default=DEFAULT_HALF_LIFE,
        help="time_decay's half-life (default 7d)",
    )
    parser.add_argument("--by", choices=("channel", "campaign"), default="channel")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    aws_arguments(parser)
    parser.add_argument("--workgroup", default=WORKGROUP, help="Athena workgroup (deployed)")
    parser.add_argument("--database", default=DATABASE, help="Glue database (deployed)")
    parser.set_defaults(run=cmd_attribution)


def archive_sql(since: datetime, lookback: timedelta) -> str:
    """The events a report needs. The day partition is the server's receipt day, never
    before the event's own time, so it bounds the scan from below (a day's margin for
    clock skew); the exact window is applied to each event's timestamp afterwards."""
    first_day = (since - lookback - timedelta(days=1)).strftime("%Y-%m-%d")
    columns = "profile_id, type, event, timestamp, properties, context"
    return f"SELECT {columns} FROM events WHERE dt >= '{first_day}'"  # noqa: S608 - a date


def report(
    rows: list[dict[str, Any]],
    *,
    since: datetime,
    until: datetime | None = None,
    conversion: str = DEFAULT_CONVERSION,
    lookback: timedelta = DEFAULT_LOOKBACK,
    half_life: timedelta = DEFAULT_HALF_LIFE,
    model: str = "all",
    by: str = "channel",
) -> Attribution:
    """Every model's (or one model's) credit over the archive's `rows` (archive_sql's)."""
    hits = (hit_of_row(row, conversion) for row in rows)
    earliest = since - lookback
    people = people_of(
        (h for h in hits if h is not None and h.at >= earliest), since, until or datetime.now(UTC)
    )
    models = MODELS if model == "all" else (model,)
    return attribute(people, models, by=by, lookback=lookback, half_life=half_life, since=since)


def columns(result: Attribution) -> list[str]:
    columns = [result.by]
    for model in result.models:
        columns += [f"{model}_conversions", f"{model}_revenue"]
    return columns


def table_rows(result: Attribution) -> Iterator[list[Any]]:
    keys = sorted(
        result.keys(),
        key=lambda k: -max((c[k].revenue for c in result.models.values() if k in c), default=0),
    )
    for key in keys:
        line: list[Any] = [key]
        for credits in result.models.values():
            credit = credits.get(key)
            line += [
                round(credit.conversions, 4) if credit else 0.0,
                round(credit.revenue, 2) if credit else 0.0,
            ]
        yield line
    total: list[Any] = ["(total)"]
    for _ in result.models:
        total += [round(result.totals.conversions, 4), round(result.totals.revenue, 2)]
    yield total


def render(result: Attribution, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "by": result.by,
                "totals": {
                    "conversions": result.totals.conversions,
                    "revenue": round(result.totals.revenue, 2),
                },
                "models": {
                    model: {
                        key: {
                            "conversions": round(c.conversions, 4),
                            "revenue": round(c.revenue, 2),
                        }
                        for key, c in sorted(credits.items())
                    }
                    for model, credits in result.models.items()
                },
            },
            ensure_ascii=False,
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns(result))
        writer.writerows(table_rows(result))
        return buffer.getvalue().rstrip("\n")
    # table: per model, conversions and revenue
    header = [result.by]
    for model in result.models:
        header += [f"{model} conv", f"{model} rev"]
    cells = [header] + [
        [
            str(v) if i == 0 else (f"{v:.2f}" if i % 2 == 0 else f"{v:.1f}")
            for i, v in enumerate(line)
        ]
        for line in table_rows(result)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        padded = [row[0].ljust(widths[0])]
        padded += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(padded)

    return "\n".join(line(row) for row in cells)


def cmd_attribution(args: argparse.Namespace) -> int:
    from cli.archive_query import archive_engine, rows_of

    if args.until is not None and args.until <= args.since:
        print("attribution: --until must be after --since", file=sys.stderr)
        return 2
    try:
        answer = archive_engine(args).query(archive_sql(args.since, args.lookback))
    except Exception as err:  # the engine's message is what the operator needs
        print(f"attribution: archive query failed: {err}", file=sys.stderr)
        return 1
    result = report(
        rows_of(answer),
        since=args.since,
        until=args.until,
        conversion=args.conversion,
        lookback=args.lookback,
        half_life=args.half_life,
        model=args.model,
        by=args.by,
    )
    print(render(result, args.format))
    return 0
