"""`beacon identity suggestions|link|reject`: review the links probabilistic matching
suggested between two profiles (read/admin API)."""

from __future__ import annotations

from typing import Any

from cli.admin_api import admin_arguments, print_answer
from cli.commands import Verbs

SUGGESTIONS = "/v1/identity/suggestions"


def register(verbs: Verbs[Any]) -> None:
    identity = verbs.add_parser("identity", help="review suggested links between profiles")
    identity_verbs = identity.add_subparsers(dest="identity_verb", required=True)
    suggestions = identity_verbs.add_parser("suggestions", help="list suggested links")
    suggestions.set_defaults(run=lambda args: print_answer(args, "GET", SUGGESTIONS))
    for decision in ("link", "reject"):
        verb = identity_verbs.add_parser(decision, help=f"{decision} two suggested profiles")
        verb.add_argument("a", metavar="PROFILE_A")
        verb.add_argument("b", metavar="PROFILE_B")
        verb.set_defaults(
            run=lambda args, d=decision: print_answer(
                args, "POST", f"{SUGGESTIONS}/{args.a}/{args.b}/{d}"
            )
        )
    for verb in identity_verbs.choices.values():
        admin_arguments(verb)
