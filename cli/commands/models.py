"""`beacon train` (models/train.py, every argument handed on), `beacon models status`
(each model's version, test ROC-AUC and today's feature drift) and the model registry:
`beacon models list|push|promote|shadow|rollback` (cli/model_registry.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
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

    # The model registry (docs/models.md): versions in the models bucket, pointers.
    listed = model_verbs.add_parser("list", help="the registry: each model's versions, pointer")
    aws_arguments(listed)
    listed.set_defaults(run=cmd_models_list)
    push = model_verbs.add_parser(
        "push", help="store a model version (checked like scoring checks it) in the registry"
    )
    push.add_argument("onnx", type=Path, help="the .onnx file")
    push.add_argument("--manifest", type=Path, default=None, help="default: <name>.manifest.json")
    push.add_argument("--model", default=None, help="registry model (default: manifest target)")
    role = push.add_mutually_exclusive_group()
    role.add_argument("--shadow", action="store_true", help="and make it the shadow")
    role.add_argument("--promote", action="store_true", help="and make it active")
    aws_arguments(push)
    push.set_defaults(run=cmd_models_push)
    promote = model_verbs.add_parser("promote", help="make a version (default: the shadow) active")
    promote.add_argument("model")
    promote.add_argument("version", nargs="?", default=None)
    aws_arguments(promote)
    promote.set_defaults(run=cmd_models_promote)
    shadow = model_verbs.add_parser("shadow", help="run a version as the shadow (--clear: none)")
    shadow.add_argument("model")
    shadow.add_argument("version", nargs="?", default=None)
    shadow.add_argument("--clear", action="store_true")
    aws_arguments(shadow)
    shadow.set_defaults(run=cmd_models_shadow)
    back = model_verbs.add_parser("rollback", help="return to the previous active version")
    back.add_argument("model")
    aws_arguments(back)
    back.set_defaults(run=cmd_models_rollback)


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
    parser.add_argument(
        "--no-push", action="store_true", help="write the files only, not into the registry"
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
    if results and not args.no_push:
        _push_shadows(args, args.out or MODELS_DIR, [r.target for r in results])
    return 0 if results else 1


def _push_shadows(args: argparse.Namespace, out: Path, targets: list[str]) -> None:
    """The new models into the registry as each target's shadow (the files stay too)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from cli.model_registry import push, shadow_version

    store = _store(args)
    for target in targets:
        try:
            name, version, _new = push(store, out / f"{target}_shadow.onnx", model=target)
            shadow_version(store, name, version)
        except (ClientError, BotoCoreError) as err:
            print(f"  registry: not pushed ({err}); `beacon models push` the file later")
            continue
        print(f"  registry: {name} version {version} is the shadow")


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


def _refusals(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A refused registry request prints its reason and exits 2 (no traceback)."""

    def wrapped(args: argparse.Namespace) -> int:
        from functions.scoring.manifest import ManifestError
        from functions.shared.model_registry import RegistryError

        try:
            return run(args)
        except (RegistryError, ManifestError, OSError) as err:
            print(f"beacon models {args.models_verb}: {err}", file=sys.stderr)
            return 2

    return wrapped


def _store(args: argparse.Namespace) -> Any:
    from cli.resources import Clients, names
    from functions.shared.dal.model_registry_store import ModelRegistryStore

    return ModelRegistryStore(names(args).bucket("models"), Clients(args.aws_endpoint).client("s3"))


def _print_pointer(pointer: Any) -> int:
    print(json.dumps(pointer.model_dump(mode="json"), indent=2))
    return 0


@_refusals
def cmd_models_list(args: argparse.Namespace) -> int:
    from cli.model_registry import listing

    print(json.dumps(listing(_store(args)), indent=2))
    return 0


@_refusals
def cmd_models_push(args: argparse.Namespace) -> int:
    from cli.model_registry import promote_version, push, shadow_version

    store = _store(args)
    name, version, new = push(store, args.onnx, args.manifest, args.model)
    print(f"{name} version {version} {'stored' if new else 'was stored already'}")
    if args.shadow:
        return _print_pointer(shadow_version(store, name, version))
    if args.promote:
        return _print_pointer(promote_version(store, name, version))
    return 0


@_refusals
def cmd_models_promote(args: argparse.Namespace) -> int:
    from cli.model_registry import promote_version

    return _print_pointer(promote_version(_store(args), args.model, args.version))


@_refusals
def cmd_models_shadow(args: argparse.Namespace) -> int:
    from cli.model_registry import shadow_version

    if (args.version is None) != args.clear:
        raise SystemExit("give a version, or --clear")
    return _print_pointer(shadow_version(_store(args), args.model, args.version))


@_refusals
def cmd_models_rollback(args: argparse.Namespace) -> int:
    from cli.model_registry import rollback_version

    return _print_pointer(rollback_version(_store(args), args.model))
