"""`beacon train` (models/train.py, every argument handed on) and `beacon models status`
(each model's version, test ROC-AUC and today's feature drift)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli import defaults
from cli.commands import Verbs
from cli.resources import aws_arguments


def register(verbs: Verbs[Any]) -> None:
    # `beacon train ...` hands every argument to models/train.py (see `cli.main.main`).
    verbs.add_parser(
        "train",
        help="train the churn and purchase models (models/train.py); --from-archive: on the "
        "archive's history, compared with the live model, written as a shadow",
    )

    models = verbs.add_parser("models", help="the models: versions, quality, drift")
    model_verbs = models.add_subparsers(dest="models_verb", required=True)
    status = model_verbs.add_parser("status", help="versions, test ROC-AUC and today's drift")
    status.add_argument("--config", type=Path, default=defaults.CONFIG)
    status.add_argument(
        "--aws-endpoint",
        default=defaults.AWS_ENDPOINT,
        help="moto of the local stack; '' for AWS with your credentials",
    )
    status.add_argument(
        "--counters-table",
        default=defaults.LOCAL_NAMES.table("counters"),
        help="physical name of the counters table (CfnOutput when deployed)",
    )
    status.add_argument("--day", default=None, help="YYYY-MM-DD (default today, UTC)")
    status.set_defaults(run=cmd_models_status)


def train(arguments: list[str]) -> int:
    if "--from-archive" in arguments:
        return train_from_archive(arguments)
    from models.train import main as train_main

    return train_main(arguments)


def train_from_archive(arguments: list[str]) -> int:
    """`beacon train --from-archive`: point-in-time rows from the archive's history, the
    new model compared with the live one on the latest cutoff, written as a shadow
    (models/archive_training.py). Reads the archive of the local stack, or of a
    deployed one through Athena (`--aws-endpoint ''`)."""
    parser = argparse.ArgumentParser(prog="beacon train --from-archive")
    parser.add_argument("--from-archive", action="store_true", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--purchase-days", type=int, default=None, help="label horizon")
    parser.add_argument("--churn-days", type=int, default=None, help="label horizon")
    parser.add_argument("--every-days", type=int, default=7, help="days between cutoffs")
    parser.add_argument("--out", type=Path, default=None, help="where the shadow models go")
    parser.add_argument(
        "--by-event-time",
        action="store_true",
        help="judge what was known at a cutoff by event time alone (history sent in bulk, "
        "e.g. `beacon demo --days 60`, was received after it happened)",
    )
    aws_arguments(parser)
    args = parser.parse_args(arguments)

    from cli.archive_query import archive_engine, rows_of
    from models.archive_dataset import DEFAULT_HORIZONS, Horizons
    from models.archive_training import train_from_archive as train_on
    from models.train import MODELS_DIR

    rows = rows_of(archive_engine(args).query("SELECT * FROM events"))
    print(f"{len(rows)} archived events")
    horizons = Horizons(
        purchase_days=args.purchase_days or DEFAULT_HORIZONS.purchase_days,
        churn_days=args.churn_days or DEFAULT_HORIZONS.churn_days,
    )
    results = train_on(
        rows,
        seed=args.seed,
        horizons=horizons,
        every_days=args.every_days,
        out=args.out or MODELS_DIR,
        by_receipt=not args.by_event_time,
    )
    return 0 if results else 1


def cmd_models_status(args: argparse.Namespace) -> int:
    from cli.model_status import models_status
    from cli.resources import Clients
    from functions.shared.config import load_config
    from functions.shared.dal.counters import DailyCounters
    from functions.shared.dal.dynamo import DynamoTable

    config = load_config(args.config)
    dynamodb = Clients(args.aws_endpoint).client("dynamodb")
    counters = DailyCounters(DynamoTable(args.counters_table, dynamodb))
    status = models_status(config, args.config.resolve().parent, counters, args.day)
    print(json.dumps(status, indent=2))
    return 0
