"""The `beacon` command: local stack, demo and simulator (more verbs come with the steps)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from functions.shared.config import ConfigError


def _stack_arguments(parser: argparse.ArgumentParser) -> None:
    from infra.local.runtime import DEFAULT_AWS_PORT, DEFAULT_HOST, DEFAULT_PORT

    parser.add_argument(
        "--config", type=Path, default=Path("beacon.yaml"), help="configuration file"
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="HTTP port (ingest, read API)"
    )
    parser.add_argument("--aws-port", type=int, default=DEFAULT_AWS_PORT, help="moto server port")
    parser.add_argument(
        "--aws-endpoint",
        default=None,
        help="use a moto server already running there (e.g. `moto_server -p 4566`) "
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


def _local_settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from infra.local.runtime import LocalSettings

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
    from infra.demo import wait_for_interrupt
    from infra.local.runtime import LocalStack

    with LocalStack(_local_settings(args)) as stack:
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


def cmd_demo(args: argparse.Namespace) -> int:
    from infra.demo import run_demo

    return run_demo(
        _local_settings(args),
        customers=args.customers,
        seed=args.seed,
        exit_after=args.exit,
        days=args.days,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.shoppers import Simulator

    report = Simulator(args.endpoint, args.write_key, args.server_write_key, seed=args.seed).run(
        customers=args.customers, bad_requests=not args.no_bad_requests, days=args.days
    )
    print(
        f"sent {report.units_sent} events in {report.requests} requests; answers "
        + ", ".join(f"{status}: {n}" for status, n in sorted(report.statuses.items()))
    )
    return 0


def _aws_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the operator commands find the resources: the local stack by default."""
    parser.add_argument(
        "--aws-endpoint",
        default="http://127.0.0.1:4566",
        help="moto of the local stack; '' for AWS with your credentials",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="KIND:LOGICAL=PHYSICAL",
        help="a deployed resource's name from the stack outputs, e.g. "
        "queue:activations-dlq=Beacon-QueuesActivationsDlq-1A2B (repeatable)",
    )


def _names(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The local stack's names, with deployed ones given by --name."""
    from infra.topology import ResourceNames

    overrides = dict(item.split("=", 1) for item in args.name)
    return ResourceNames(overrides=overrides)


def _aws_client(args: argparse.Namespace, service: str):  # type: ignore[no-untyped-def]
    import os

    import boto3

    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION", "us-east-1"))
    if not args.aws_endpoint:
        return session.client(service)
    from infra.local.aws import LOCAL_CREDENTIALS

    return session.client(
        service,
        endpoint_url=args.aws_endpoint,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def cmd_models_status(args: argparse.Namespace) -> int:
    import json

    from functions.shared.config import load_config
    from functions.shared.dal.counters import DailyCounters
    from functions.shared.dal.dynamo import DynamoTable
    from infra.model_status import models_status

    config = load_config(args.config)
    table = _names(args).table("counters")
    counters = DailyCounters(DynamoTable(table, _aws_client(args, "dynamodb")))
    status = models_status(config, args.config.resolve().parent, counters, args.day)
    print(json.dumps(status, indent=2))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from infra.dashboard import Dashboard, ReadApi
    from infra.demo import wait_for_interrupt
    from infra.local.gateway import Gateway, LocalPage
    from infra.operator_access import OperatorAccess

    class _Clients:
        def client(self, service: str):  # type: ignore[no-untyped-def]
            return _aws_client(args, service)

    dashboard = Dashboard(_Clients(), _names(args), ReadApi(args.endpoint, args.admin_key))
    pages: dict[str, LocalPage] = {}
    gateway = Gateway([], pages)
    host = "127.0.0.1"  # loopback only: the pages show people's data
    port = gateway.start(host, args.port)
    # The same key opens the pages as the read API: Bearer, or Basic with it as password.
    page = OperatorAccess.served_at(args.admin_key, host, port).guard(dashboard.page)
    pages.update({"/": page, "/dashboard": page})
    print(
        f"Beacon dashboard on http://{host}:{port}/ (Ctrl-C stops); the browser asks for "
        "the admin key as password (any user name)",
        flush=True,
    )
    try:
        wait_for_interrupt()
    finally:
        gateway.stop()
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    import json

    from functions.shared.dal.deliveries_store import DeliveriesStore
    from functions.shared.dal.dynamo import DynamoTable
    from infra.dlq import list_dead_letters, replay

    names = _names(args)
    sqs = _aws_client(args, "sqs")
    dlq_url = sqs.get_queue_url(QueueName=names.queue("activations-dlq"))["QueueUrl"]
    if args.dlq_verb == "list":
        print(json.dumps(list_dead_letters(sqs, dlq_url), indent=2))
        return 0
    activations_url = sqs.get_queue_url(QueueName=names.queue("activations"))["QueueUrl"]
    deliveries = DeliveriesStore(
        DynamoTable(names.table("deliveries"), _aws_client(args, "dynamodb"))
    )
    count = replay(sqs, dlq_url, activations_url, deliveries, args.destination)
    print(f"replayed {count} dead letter(s)")
    return 0


def _admin_call(args: argparse.Namespace, method: str, suffix: str = "") -> int:
    """Call the read/admin API (local or deployed) for one profile."""
    import urllib.parse

    return _admin_request(
        args, method, f"/v1/profiles/{urllib.parse.quote(args.ref, safe=':@')}{suffix}"
    )


def _admin_request(args: argparse.Namespace, method: str, path: str) -> int:
    """Call the read/admin API and print its JSON answer."""
    import json
    import urllib.error
    import urllib.request

    url = f"{args.endpoint.rstrip('/')}{path}"
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"--endpoint must be an http(s) URL, got {args.endpoint!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, method=method, headers={"Authorization": f"Bearer {args.admin_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - user's URL
            print(json.dumps(json.loads(answer.read()), indent=2))
            return 0
    except urllib.error.HTTPError as err:
        print(f"{err.code}: {err.read().decode(errors='replace')}", file=sys.stderr)
        return 1


def _admin_verb(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    method: str,
    suffix: str = "",
) -> None:
    parser = verbs.add_parser(name, help=help_text)
    parser.add_argument("ref", metavar="TYPE:VALUE", help="e.g. email:ana@example.org")
    parser.add_argument("--endpoint", default="http://127.0.0.1:8080")
    parser.add_argument("--admin-key", default="local-admin-key")
    parser.set_defaults(run=lambda args: _admin_call(args, method, suffix))


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["train"]:
        from models.train import main as train_main

        return train_main(arguments[1:])
    parser = argparse.ArgumentParser(prog="beacon", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)

    local = verbs.add_parser("local", help="run the local stack in the foreground")
    _stack_arguments(local)
    local.set_defaults(run=cmd_local)

    demo = verbs.add_parser("demo", help="local stack + simulated traffic + summary")
    _stack_arguments(demo)
    demo.add_argument("--customers", type=int, default=40)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--days", type=int, default=None, help="journeys over days (see simulate)")
    demo.add_argument(
        "--exit", action="store_true", help="stop after the summary (status 1 if the ledger is off)"
    )
    demo.set_defaults(run=cmd_demo)

    simulate = verbs.add_parser("simulate", help="send simulated shoppers to an endpoint over HTTP")
    simulate.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:8080")
    simulate.add_argument("--write-key", default="local-write-key")
    simulate.add_argument("--server-write-key", default=None)
    simulate.add_argument("--customers", type=int, default=40)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--no-bad-requests", action="store_true")
    simulate.add_argument(
        "--days",
        type=int,
        default=None,
        help="send each shopper's whole journey over this many days (compressed: dated "
        "in the past, sent now); without it, one visit each",
    )
    simulate.set_defaults(run=cmd_simulate)

    _admin_verb(verbs, "profile", "one profile as JSON (read API)", "GET")
    _admin_verb(verbs, "consent", "a person's consent and its audit trail", "GET", "/consent")
    _admin_verb(
        verbs, "export", "everything held about a person (access request)", "GET", "/export"
    )
    _admin_verb(verbs, "erase", "delete everything about a person, keep a suppression", "DELETE")

    # `beacon train ...` hands every argument to models/train.py (see main's start).
    verbs.add_parser("train", help="train the churn and purchase models (models/train.py)")

    models = verbs.add_parser("models", help="the models: versions, quality, drift")
    model_verbs = models.add_subparsers(dest="models_verb", required=True)
    status = model_verbs.add_parser("status", help="versions, test ROC-AUC and today's drift")
    status.add_argument("--config", type=Path, default=Path("beacon.yaml"))
    status.add_argument(
        "--aws-endpoint",
        default="http://127.0.0.1:4566",
        help="moto of the local stack; '' for AWS with your credentials",
    )
    status.add_argument(
        "--counters-table",
        default="beacon-counters",
        help="physical name of the counters table (CfnOutput when deployed)",
    )
    status.add_argument("--day", default=None, help="YYYY-MM-DD (default today, UTC)")
    status.set_defaults(run=cmd_models_status)

    _admin_verb(
        verbs, "deliveries", "a person's webhook deliveries and attempts", "GET", "/deliveries"
    )
    dlq = verbs.add_parser("dlq", help="activations the webhook step gave up on")
    dlq_verbs = dlq.add_subparsers(dest="dlq_verb", required=True)
    dlq_verbs.add_parser("list", help="list dead letters").set_defaults(run=cmd_dlq)
    replay = dlq_verbs.add_parser("replay", help="send dead letters for delivery again")
    replay.add_argument("--destination", default=None, help="only this destination's")
    replay.set_defaults(run=cmd_dlq)
    for verb in dlq_verbs.choices.values():
        _aws_arguments(verb)

    dashboard = verbs.add_parser(
        "dashboard", help="serve the dashboard against a running stack (local or deployed)"
    )
    dashboard.add_argument("--endpoint", default="http://127.0.0.1:8080", help="the HTTP API")
    dashboard.add_argument("--admin-key", default="local-admin-key")
    dashboard.add_argument("--port", type=int, default=8090)
    _aws_arguments(dashboard)
    dashboard.set_defaults(run=cmd_dashboard)

    segments = verbs.add_parser("segments", help="segment definitions and current sizes")
    segments.add_argument("--endpoint", default="http://127.0.0.1:8080")
    segments.add_argument("--admin-key", default="local-admin-key")
    segments.set_defaults(run=lambda a: _admin_request(a, "GET", "/v1/segments"))

    identity = verbs.add_parser("identity", help="review suggested links between profiles")
    identity_verbs = identity.add_subparsers(dest="identity_verb", required=True)
    suggestions = identity_verbs.add_parser("suggestions", help="list suggested links")
    suggestions.set_defaults(run=lambda a: _admin_request(a, "GET", "/v1/identity/suggestions"))
    for decision in ("link", "reject"):
        verb = identity_verbs.add_parser(decision, help=f"{decision} two suggested profiles")
        verb.add_argument("a", metavar="PROFILE_A")
        verb.add_argument("b", metavar="PROFILE_B")
        verb.set_defaults(
            run=lambda a, d=decision: _admin_request(
                a, "POST", f"/v1/identity/suggestions/{a.a}/{a.b}/{d}"
            )
        )
    for verb in identity_verbs.choices.values():
        verb.add_argument("--endpoint", default="http://127.0.0.1:8080")
        verb.add_argument("--admin-key", default="local-admin-key")

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
