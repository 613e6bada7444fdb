"""`beacon train` (models/train.py, every argument handed on) and `beacon models status`
(each model's version, test ROC-AUC and today's feature drift)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli import defaults
from cli.commands import Verbs


def register(verbs: Verbs[Any]) -> None:
    # `beacon train ...` hands every argument to models/train.py (see `cli.main.main`).
    verbs.add_parser("train", help="train the churn and purchase models (models/train.py)")

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
    from models.train import main as train_main

    return train_main(arguments)


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
