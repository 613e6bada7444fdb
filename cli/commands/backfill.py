"""`beacon backfill [--trait ID]... [--segment ID]...`: new or changed computed traits
and segments recomputed over the event archive, into the live profiles
(docs/archive.md "Backfill"; the job: functions/segments/backfill.py).

Deploy the definition first (beacon.yaml, then `beacon local` restarted or `cdk
deploy`), so live traffic keeps it current from then on; the backfill then gives
every archived person the state their history gives it. It runs here, with the
operator's credentials, against the local stack (default) or a deployed one
(`--aws-endpoint ''`, the archive read through Athena), printing its progress.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli import defaults
from cli.commands import Verbs
from cli.resources import aws_arguments
from functions.shared.archive import DATABASE, WORKGROUP

# Only what the replay reads: the events view's positions and the canonical event.
ARCHIVE_SQL = (
    "SELECT message_id, profile_id, type, event, name, timestamp, received_at, anonymous_id,"
    " user_id, traits, properties, context, source, shard_id, sequence_number FROM events"
)


def register(verbs: Verbs[Any]) -> None:
    parser = verbs.add_parser(
        "backfill",
        help="recompute computed traits and segments over the archive, into live profiles",
    )
    parser.add_argument(
        "--trait", action="append", default=[], metavar="ID", help="a computed trait (repeat)"
    )
    parser.add_argument(
        "--segment", action="append", default=[], metavar="ID", help="a segment (repeat)"
    )
    parser.add_argument("--config", type=Path, default=defaults.CONFIG)
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the archive to catch up with live profiles",
    )
    aws_arguments(parser)
    parser.add_argument("--workgroup", default=WORKGROUP, help="Athena workgroup (deployed)")
    parser.add_argument("--database", default=DATABASE, help="Glue database (deployed)")
    parser.set_defaults(run=cmd_backfill)


def cmd_backfill(args: argparse.Namespace) -> int:
    from cli.archive_query import archive_engine, rows_of
    from cli.resources import Clients, names
    from functions.profiles.replay import Definitions
    from functions.segments.backfill import Progress, backfill
    from functions.segments.handler import build_segments_step
    from functions.segments.settings import SegmentsSettings
    from functions.shared.config import load_config
    from functions.shared.settings import CONFIG_FILE_VAR
    from infra.topology import TOPOLOGY

    config = load_config(args.config)
    try:
        chosen = Definitions.chosen(config.segments, args.trait, args.segment)
    except ValueError as err:
        print(f"backfill: {err}", file=sys.stderr)
        return 2
    clients = Clients(args.aws_endpoint)
    environment = TOPOLOGY.environment_for(TOPOLOGY.function("segments"), names(args))
    settings = SegmentsSettings.model_validate(environment | {CONFIG_FILE_VAR: str(args.config)})
    step = build_segments_step(
        settings,
        config,
        dynamodb=clients.client("dynamodb"),
        s3=clients.client("s3"),
        kinesis=clients.client("kinesis"),
    )
    engine = archive_engine(args)

    def report(progress: Progress) -> None:
        print(progress.line(), file=sys.stderr, flush=True)

    print(
        f"backfill: traits {', '.join(sorted(chosen.traits)) or '-'};"
        f" segments {', '.join(sorted(chosen.segments)) or '-'}",
        file=sys.stderr,
    )
    progress = backfill(
        step, lambda: rows_of(engine.query(ARCHIVE_SQL)), chosen, wait_s=args.wait, report=report
    )
    entered = progress.changes.get("segment.entered", 0)
    exited = progress.changes.get("segment.exited", 0)
    print(f"{progress.line()}; segment entries {entered}, exits {exited}")
    if progress.done < progress.people:
        print(
            f"backfill: {progress.people - progress.done} people not done: the archive had not"
            " caught up with their profiles, or live traffic kept winning the race (run it"
            " again later)",
            file=sys.stderr,
        )
        return 1
    return 0
