"""`beacon segments`: the segment definitions and their current sizes (read/admin API)."""

from __future__ import annotations

from typing import Any

from cli.admin_api import admin_arguments, print_answer
from cli.commands import Verbs


def register(verbs: Verbs[Any]) -> None:
    segments = verbs.add_parser("segments", help="segment definitions and current sizes")
    admin_arguments(segments)
    segments.set_defaults(run=lambda args: print_answer(args, "GET", "/v1/segments"))
