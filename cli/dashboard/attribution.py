"""The dashboard's attribution page: conversions and revenue by channel and by
campaign, side by side per model, over the last 30 days of the local archive.

The same report as `beacon attribution --since <30 days ago>` (cli/commands/
attribution.py: the archive read through DuckDB, sessions by the profile's rule,
the models of models/attribution.py), rendered as two tables.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

from cli.archive_query import LocalArchive, rows_of
from cli.commands.attribution import archive_sql, columns, report, table_rows
from models.attribution import DEFAULT_LOOKBACK

DAYS = 30


def attribution_sections(archive: LocalArchive, now: datetime, conversion: str) -> str:
    """`conversion`: the track event that converts (`?conversion=` on the page)."""
    since = now - timedelta(days=DAYS)
    try:
        rows = rows_of(archive.query(archive_sql(since, DEFAULT_LOOKBACK)))
    except Exception as err:  # no archive yet, or nothing written: say so, not a 500
        return f"<p>The archive cannot be read yet ({_e(err)}).</p>"
    intro = (
        f"<p>Conversions (<code>{_e(conversion)}</code>) since {_e(since.date())}, credited to "
        f"the sessions before them (30-day lookback) by each model (docs/attribution.md); "
        "the same as <code>beacon attribution --since "
        f"{_e(since.date())}</code>.</p>"
    )
    return intro + "".join(
        f"<h2>By {by}</h2>"
        + _table(report(rows, since=since, until=now, conversion=conversion, by=by))
        for by in ("channel", "campaign")
    )


def _table(result: Any) -> str:
    if not result.totals.conversions:
        return "<p>No conversions in the window.</p>"
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in columns(result))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='n'>{v:,.2f}</td>" if isinstance(v, float) else f"<td>{_e(v)}</td>"
            for v in line
        )
        + "</tr>"
        for line in table_rows(result)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
