"""The `beacon` command: the verbs of every group in `cli/commands/`, in one parser."""

from __future__ import annotations

import argparse
import sys

from cli.commands import (
    archive,
    attribution,
    backfill,
    dashboard,
    deliveries,
    experiments,
    export,
    identity,
    importing,
    models,
    people,
    segments,
    smoke,
    stack,
)
from functions.shared.config import ConfigError

DESCRIPTION = (
    "Beacon: the local stack, the demo and the simulator, and the operator verbs for a "
    "running stack, local or deployed (docs/api.md)."
)
# In `beacon --help`'s order.
GROUPS = (
    stack,
    people,
    export,
    models,
    deliveries,
    dashboard,
    segments,
    experiments,
    identity,
    archive,
    backfill,
    attribution,
    importing,
    smoke,
)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beacon", description=DESCRIPTION)
    verbs = parser.add_subparsers(dest="verb", required=True)
    for group in GROUPS:
        group.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["train"]:
        return models.train(arguments[1:])  # models/train.py parses its own arguments
    args = parser().parse_args(arguments)
    try:
        return int(args.run(args))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
