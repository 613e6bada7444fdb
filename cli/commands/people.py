"""`beacon profile|consent|erase TYPE:VALUE`: one person, through the read/admin API
(`beacon export TYPE:VALUE`: cli/commands/export.py)."""

from __future__ import annotations

from typing import Any

from cli.admin_api import admin_arguments, print_answer, profile_path
from cli.commands import Verbs


def register(verbs: Verbs[Any]) -> None:
    person_verb(verbs, "profile", "one profile as JSON (read API)", "GET")
    person_verb(verbs, "consent", "a person's consent and its audit trail", "GET", "/consent")
    # `beacon export TYPE:VALUE` lives with the bulk exports (cli/commands/export.py).
    person_verb(verbs, "erase", "delete everything about a person, keep a suppression", "DELETE")


def person_verb(verbs: Verbs[Any], name: str, help_text: str, method: str, view: str = "") -> None:
    """A verb that calls the read/admin API for the person a TYPE:VALUE names."""
    parser = verbs.add_parser(name, help=help_text)
    parser.add_argument("ref", metavar="TYPE:VALUE", help="e.g. email:ana@example.org")
    admin_arguments(parser)
    parser.set_defaults(run=lambda args: print_answer(args, method, profile_path(args.ref, view)))
