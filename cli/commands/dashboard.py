"""`beacon dashboard`: the dashboard's pages served against a running stack (local or
deployed), on 127.0.0.1 only and behind the admin key."""

from __future__ import annotations

import argparse
from typing import Any

from cli import defaults
from cli.admin_api import admin_arguments
from cli.commands import Verbs
from cli.resources import aws_arguments


def register(verbs: Verbs[Any]) -> None:
    dashboard = verbs.add_parser(
        "dashboard", help="serve the dashboard against a running stack (local or deployed)"
    )
    admin_arguments(dashboard, endpoint_help="the HTTP API")
    dashboard.add_argument("--port", type=int, default=defaults.DASHBOARD_PORT)
    aws_arguments(dashboard)
    dashboard.set_defaults(run=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from cli.admin_api import AdminApi
    from cli.dashboard.pages import Dashboard
    from cli.foreground import wait_for_interrupt
    from cli.resources import Clients, names
    from infra.local.gateway import Gateway, LocalPage
    from infra.local.operator_access import OperatorAccess

    api = AdminApi(args.endpoint, args.admin_key, timeout_s=15)
    dashboard = Dashboard(Clients(args.aws_endpoint), names(args), api)
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
