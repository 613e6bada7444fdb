"""`beacon experiments report [NAME]`: each experiment's arms, lift and sample-ratio check.

Reads `GET /v1/experiments[/{name}]` (read/admin API); `--json` prints the answer as is.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
from typing import Any

from cli.admin_api import AdminApi, admin_arguments
from cli.commands import Verbs


def register(verbs: Verbs[Any]) -> None:
    experiments = verbs.add_parser("experiments", help="experiment reports (holdouts, variants)")
    actions = experiments.add_subparsers(dest="action", required=True)
    show = actions.add_parser("report", help="arms, lift with its interval, sample-ratio test")
    show.add_argument("name", nargs="?", help="one experiment (default: all)")
    show.add_argument("--json", action="store_true", help="print the API's JSON answer")
    admin_arguments(show)
    show.set_defaults(run=report)


def report(args: argparse.Namespace) -> int:
    try:
        api = AdminApi(args.endpoint, args.admin_key)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    path = f"/v1/experiments/{args.name}" if args.name else "/v1/experiments"
    try:
        answer = api.request("GET", path)
    except urllib.error.HTTPError as err:
        print(f"{err.code}: {err.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    found = [answer] if args.name else answer["experiments"]
    if not found:
        print("no experiments configured (beacon.yaml: goals, experiments)")
    for experiment in found:
        print(render(experiment))
    return 0


def render(experiment: dict[str, Any]) -> str:
    """A report as text: one block per goal."""
    srm = experiment["srm"]
    lines = [
        f"{experiment['name']}  (segment {experiment['segment']}, analysis "
        f"{experiment['analysis']}, {experiment['confidence']:.0%} {experiment['method']})",
        f"  sample ratio: p = {srm['p_value']:.3g}"
        + ("  MISMATCH: the split is not what was configured" if srm["flag"] else "  ok"),
    ]
    for goal in experiment["goals"]:
        lines.append(f"  goal {goal['goal']}: {goal['event']} within {goal['within']}")
        for arm in goal["arms"]:
            rate = arm["conversion_rate"]
            value = f"  value/person {arm['value_mean']:.2f}" if arm.get("value_mean") else ""
            lines.append(
                f"    {arm['name']:16s} {arm['exposures']:7d} exposed {arm['conversions']:7d} "
                f"converted  {'-' if rate is None else f'{rate:.2%}'}{value}"
            )
        for comparison in goal["comparisons"]:
            lines.append(
                f"    {comparison['arm']} - {comparison['against']}: " + _lift(comparison["lift"])
            )
    return "\n".join(lines)


def _lift(lift: dict[str, Any]) -> str:
    if not lift["enough_data"]:
        return f"{lift['estimate']:+.2%} (not enough data yet)"
    # The headline: CUPED's numbers when the goal has a covariate (docs/experiments.md).
    lead = lift["cuped"] if lift.get("headline") == "cuped" else lift
    verdict = "significant" if lead["significant"] else "not significant"
    text = f"{lead['estimate']:+.2%} [{lead['ci_low']:+.2%}, {lead['ci_high']:+.2%}] {verdict}"
    if lead is not lift:
        text += (
            f" (CUPED, variance -{lead['variance_reduction']:.0%}; unadjusted"
            f" {lift['estimate']:+.2%} [{lift['ci_low']:+.2%}, {lift['ci_high']:+.2%}])"
        )
    return text
