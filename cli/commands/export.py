"""`beacon export TYPE:VALUE | profiles | audience SEGMENT`: data out of Beacon.

- `beacon export TYPE:VALUE`: everything held about one person (an access request),
  through the read/admin API, as before.
- `beacon export profiles [--out DIR|s3://bucket/prefix/]`: every profile as Parquet,
  `<out>/profiles/dt=<day>/part-<n>.parquet` (docs/exports.md).
- `beacon export audience SEGMENT --platform google|meta [--out FILE|s3://bucket/key]`:
  the segment's members as the platform's customer-list upload file.

The bulk exports read the stack's tables with the operator's credentials: the local
stack's moto by default, AWS with `--aws-endpoint ''` (and `--name` for a deployed
stack's physical table names, from its outputs).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli import defaults
from cli.admin_api import admin_arguments, print_answer, profile_path
from cli.commands import Verbs
from cli.resources import aws_arguments

BULK = ("profiles", "audience")


def register(verbs: Verbs[Any]) -> None:
    parser = verbs.add_parser(
        "export",
        help="a person's data (TYPE:VALUE), every profile as Parquet (profiles), "
        "or a segment for ad platforms (audience SEGMENT)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "target",
        metavar="TYPE:VALUE|profiles|audience",
        help="e.g. email:ana@example.org; `beacon export profiles --help` for the others",
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    if args.target in BULK:
        from botocore.exceptions import BotoCoreError, ClientError

        run = export_profiles if args.target == "profiles" else export_audience
        parser = profiles_parser() if args.target == "profiles" else audience_parser()
        try:
            return run(parser.parse_args(args.rest))
        except (ClientError, BotoCoreError) as err:  # a missing table, no credentials, ...
            print(f"export {args.target}: {err}", file=sys.stderr)
            return 1
    person = person_parser().parse_args(args.rest)
    return print_answer(person, "GET", profile_path(args.target, "/export"))


def person_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon export TYPE:VALUE",
        description="everything held about a person (access request), via the read API",
    )
    admin_arguments(parser)
    return parser


def _count(most: int) -> Any:
    """An argparse type: a whole number from 1 to `most`."""

    def parse(text: str) -> int:
        if not text.isdigit() or not 1 <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"a whole number from 1 to {most}, not {text!r}")
        return int(text)

    return parse


def _bulk_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=defaults.CONFIG)
    aws_arguments(parser)
    parser.add_argument(
        "--require",
        action="append",
        default=None,
        metavar="CATEGORY",
        help="a consent category every exported person must have granted (repeat)",
    )
    parser.add_argument(
        "--segments", type=_count(64), default=4, help="parallel Scan segments (1 to 64)"
    )


def profiles_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon export profiles",
        description="every profile as Parquet: <out>/profiles/dt=<day>/part-<n>.parquet; "
        "only what consent allows (default: consent.required_for_profiles), nothing of "
        "erased people (docs/exports.md)",
    )
    parser.add_argument("--out", default="exports", help="a directory or s3://bucket/prefix/")
    parser.add_argument(
        "--rows-per-part", type=_count(10_000_000), default=None, help=argparse.SUPPRESS
    )
    _bulk_arguments(parser)
    return parser


def audience_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon export audience",
        description="a segment's members as an ad platform's customer-list file, "
        "normalized and SHA-256-hashed; only people with advertising consent "
        "(docs/exports.md)",
    )
    parser.add_argument("segment", metavar="SEGMENT", help="a segment id from beacon.yaml")
    parser.add_argument("--platform", choices=("google", "meta"), required=True)
    parser.add_argument("--out", default="-", help="a file, s3://bucket/key.csv, or - (stdout)")
    parser.add_argument(
        "--phone-region",
        default=None,
        help="region of phone numbers without +country (default: identity.default_phone_region)",
    )
    _bulk_arguments(parser)
    return parser


def _policy(args: argparse.Namespace, default: tuple[str, ...], known: tuple[str, ...]) -> Any:
    from functions.exports.profile_rows import ExportPolicy

    return ExportPolicy.checked(tuple(args.require or default), known)


def export_profiles(args: argparse.Namespace) -> int:
    from cli.resources import Clients, names
    from functions.exports.jobs import run_profile_export
    from functions.exports.parquet import Destination, Sink
    from functions.exports.sinks import LocalSink
    from functions.shared.config import load_config

    config = load_config(args.config)
    clients = Clients(args.aws_endpoint)
    try:
        destination = Destination.parse(args.out)
        policy = _policy(args, config.consent.required_for_profiles, config.consent.categories)
    except ValueError as err:
        print(f"export profiles: {err}", file=sys.stderr)
        return 2
    sink: Sink
    if destination.bucket is None:
        sink = LocalSink(destination.root)
    else:
        from functions.shared.dal.export_sink import S3Sink

        sink = S3Sink(destination.bucket, s3=clients.client("s3"))
    resources = names(args)
    summary = run_profile_export(
        profiles_table=resources.table("profiles"),
        identity_table=resources.table("identity"),
        sink=sink,
        config=config.segments,
        policy=policy,
        now=datetime.now(UTC),
        prefix="" if destination.bucket is None else destination.root,
        segments=args.segments,
        dynamodb=clients.client("dynamodb"),
        rows_per_part=args.rows_per_part,
    )
    print(f"export profiles: {summary.line()}", file=sys.stderr)
    for key in summary.files:
        # Keys are the bucket's (prefix included), or relative to the local directory.
        print(
            f"s3://{destination.bucket}/{key}"
            if destination.bucket
            else Path(destination.root, key)
        )
    return 0


def export_audience(args: argparse.Namespace) -> int:
    from cli.resources import Clients, names
    from functions.exports.jobs import run_audience_export
    from functions.shared.config import load_config

    config = load_config(args.config)
    known_segments = [s.id for s in config.segments.segments]
    if args.segment not in known_segments:
        print(
            f"export audience: no segment {args.segment!r} in {args.config}"
            f" (segments: {', '.join(known_segments)})",
            file=sys.stderr,
        )
        return 2
    try:
        policy = _policy(args, ("advertising",), config.consent.categories)
    except ValueError as err:
        print(f"export audience: --require: {err}", file=sys.stderr)
        return 2
    bucket, _, key = args.out.removeprefix("s3://").partition("/")
    if args.out.startswith("s3://") and not (bucket and key):
        print("export audience: --out s3://bucket/key.csv", file=sys.stderr)
        return 2
    clients = Clients(args.aws_endpoint)
    resources = names(args)
    text, summary = run_audience_export(
        profiles_table=resources.table("profiles"),
        identity_table=resources.table("identity"),
        segment_id=args.segment,
        platform=args.platform,
        policy=policy,
        default_region=args.phone_region or config.identity.default_phone_region,
        segments=args.segments,
        dynamodb=clients.client("dynamodb"),
    )
    print(f"export audience {args.segment} ({args.platform}): {summary.line()}", file=sys.stderr)
    if args.out == "-":
        sys.stdout.write(text)
    elif args.out.startswith("s3://"):
        from functions.shared.dal.export_sink import S3Sink

        S3Sink(bucket, s3=clients.client("s3")).put(key, text.encode("utf-8"))
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    return 0
