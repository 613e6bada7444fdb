"""`beacon local`, `beacon demo`, `beacon moto` and `beacon simulate`: the local stack,
moto on its own, and simulated shoppers sent to it (or to any endpoint) over HTTP."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli import defaults
from cli.commands import Verbs
from infra.local.runtime import DEFAULT_AWS_PORT, DEFAULT_HOST, DEFAULT_PORT, LocalSettings


def register(verbs: Verbs[Any]) -> None:
    local = verbs.add_parser("local", help="run the local stack in the foreground")
    stack_arguments(local)
    local.set_defaults(run=cmd_local)

    demo = verbs.add_parser("demo", help="local stack + simulated traffic + summary")
    stack_arguments(demo)
    demo.add_argument("--customers", type=int, default=defaults.CUSTOMERS)
    demo.add_argument("--seed", type=int, default=defaults.SEED)
    demo.add_argument("--days", type=int, default=None, help="journeys over days (see simulate)")
    demo.add_argument(
        "--exit", action="store_true", help="stop after the summary (status 1 if the ledger is off)"
    )
    demo.set_defaults(run=cmd_demo)

    moto = verbs.add_parser(
        "moto",
        help="a moto server with Beacon's fixes, in the foreground (for --aws-endpoint: "
        "its state outlives `beacon local`)",
    )
    moto.add_argument("--host", default=DEFAULT_HOST)
    moto.add_argument("--port", type=int, default=DEFAULT_AWS_PORT)
    moto.set_defaults(run=cmd_moto)

    simulate = verbs.add_parser("simulate", help="send simulated shoppers to an endpoint over HTTP")
    simulate.add_argument("--endpoint", required=True, help=f"e.g. {defaults.ENDPOINT}")
    simulate.add_argument("--write-key", default=defaults.WRITE_KEY)
    simulate.add_argument("--server-write-key", default=None)
    simulate.add_argument("--customers", type=int, default=defaults.CUSTOMERS)
    simulate.add_argument("--seed", type=int, default=defaults.SEED)
    simulate.add_argument("--no-bad-requests", action="store_true")
    simulate.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="connections sending side by side (one shopper's requests stay in order)",
    )
    simulate.add_argument(
        "--days",
        type=int,
        default=None,
        help="send each shopper's whole journey over this many days (compressed: dated "
        "in the past, sent now); without it, one visit each",
    )
    simulate.set_defaults(run=cmd_simulate)


def stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=defaults.CONFIG, help="configuration file")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="HTTP port (ingest, read API)"
    )
    parser.add_argument("--aws-port", type=int, default=DEFAULT_AWS_PORT, help="moto server port")
    parser.add_argument(
        "--aws-endpoint",
        default=None,
        help="use a moto server already running there (e.g. `beacon moto --port 4566`) "
        "instead of starting one: the state outlives Beacon, which resumes where it stopped",
    )
    parser.add_argument(
        "--write-key",
        action="append",
        default=[],
        metavar="SOURCE=KEY",
        help="override a source's local write key (repeatable)",
    )
    parser.add_argument("--admin-key", default=None, help="override the local admin key")
    parser.add_argument("--log-level", default="WARNING", help="handlers' log level")


def local_settings(args: argparse.Namespace) -> LocalSettings:
    keys = {}
    for item in args.write_key:
        source, sep, key = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--write-key expects SOURCE=KEY, got {item!r}")
        keys[source] = key
    return LocalSettings(
        config_file=args.config,
        host=args.host,
        port=args.port,
        aws_port=args.aws_port,
        aws_endpoint=args.aws_endpoint,
        write_keys=keys,
        admin_key=args.admin_key,
        log_level=args.log_level,
    )


def cmd_local(args: argparse.Namespace) -> int:
    from cli.dashboard.pages import dashboard_pages
    from cli.foreground import wait_for_interrupt
    from infra.local.runtime import LocalStack

    with LocalStack(local_settings(args), pages=dashboard_pages) as stack:
        assert stack.aws is not None
        print(f"Beacon local stack on {stack.url}")
        print(
            f"  AWS (moto)   {stack.aws.endpoint}   "
            f"e.g. aws --endpoint-url {stack.aws.endpoint} kinesis list-streams"
        )
        for source in stack.config.sources:
            key = stack.settings.write_keys.get(source.name, source.local_write_key)
            print(f"  write key    {key}   (source '{source.name}')")
        print(f"  admin key    {stack.admin_key}")
        print(f"  dashboard    {stack.url}/   (sign in: any user name, the admin key as password)")
        print("Ctrl-C stops.", flush=True)
        wait_for_interrupt()
    return 0


def cmd_moto(args: argparse.Namespace) -> int:
    from infra.local.moto_process import serve

    serve(args.host, args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(
        local_settings(args),
        customers=args.customers,
        seed=args.seed,
        exit_after=args.exit,
        days=args.days,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.shoppers import Simulator

    simulator = Simulator(
        args.endpoint,
        args.write_key,
        args.server_write_key,
        seed=args.seed,
        concurrency=args.concurrency,
    )
    report = simulator.run(
        customers=args.customers, bad_requests=not args.no_bad_requests, days=args.days
    )
    print(
        f"sent {report.units_sent} events in {report.requests} requests; answers "
        + ", ".join(f"{status}: {n}" for status, n in sorted(report.statuses.items()))
    )
    return 0
