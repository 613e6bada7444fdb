"""`beacon smoke`: the check to run after a deploy (docs/deploy.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli import defaults
from cli.admin_api import admin_arguments
from cli.commands import Verbs
from cli.smoke import run_smoke
from functions.shared.config import load_config


def register(verbs: Verbs[Any]) -> None:
    parser = verbs.add_parser(
        "smoke", help="send one event and read its profile back (after a deploy)"
    )
    admin_arguments(parser, endpoint_help="the API's base URL (the stack output ApiUrl)")
    parser.add_argument("--write-key", default=defaults.WRITE_KEY)
    parser.add_argument(
        "--config",
        type=Path,
        default=defaults.CONFIG,
        help="the deployed beacon.yaml (the event grants the consent its profiles need)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    parser.set_defaults(run=smoke)


def smoke(args: argparse.Namespace) -> int:
    categories = load_config(args.config).consent.required_for_profiles
    try:
        result = run_smoke(
            args.endpoint, args.write_key, args.admin_key, categories, timeout_s=args.timeout
        )
    except (ValueError, OSError) as err:
        print(f"smoke: FAILED: {err}", file=sys.stderr)
        return 1
    if not result.ok:
        print(f"smoke: FAILED for user_id:{result.user_id}: {result.detail}", file=sys.stderr)
        return 1
    print(
        f"smoke: OK: 2 events accepted in {result.accepted_s * 1000:.0f} ms; profile "
        f"user_id:{result.user_id} readable {result.readable_s:.1f} s after the first event"
    )
    return 0
