"""The demo's known lift: a local journey platform whose customers act on its messages.

An experiment report is only worth believing if it finds a truth it was not told.
`beacon demo` tells one sink's simulated customers (infra/local/journeys.py) to
order after a cart-recovery message with a rate per arm chosen here, so the
report of the experiment on that segment has a true difference to find; the
summary prints the truth beside the estimate. The orders they send come back
through the ingest API as the server source, and the ledger counts them.
"""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from typing import Any

from cli.admin_api import AdminApi
from infra.local.journeys import Acting, IngestSender
from infra.local.runtime import LocalStack

SINK = "crm-webhook"
SEGMENT = "cart_abandoners"
# True order rates within the goal's window after the message, per arm (variants of
# beacon.yaml's cart_abandoners): free shipping works 20 points better.
RATES = {"reminder": 0.10, "free_shipping": 0.30}
ORDER = {
    "segment": SEGMENT,
    "event": "Order Completed",
    "properties": {"total": 40, "currency": "EUR"},
    "context": {"consent": {"categoryPreferences": {"personalization": True}}},
    "seed": 18,
}
ROUNDS = 5  # orders sent back can make people enter other segments, and so on


@dataclass
class KnownLift:
    """What the sink's customers did, and what the experiment report made of it."""

    experiment: str
    rates: dict[str, float]
    decisions: list[dict[str, Any]]
    sent: int  # orders posted back and answered
    unsure: int  # posts without an answer: they may have landed
    report: dict[str, Any] | None

    def lines(self) -> list[str]:
        acted = {arm: [d for d in self.decisions if d["arm"] == arm] for arm in self.rates}
        arms = ", ".join(
            f"{arm} {sum(d['converted'] for d in ds)}/{len(ds)} ordered "
            f"(true rate {self.rates[arm]:.0%})"
            for arm, ds in acted.items()
            if ds
        )
        lines = [
            f"  journeys      {SINK}'s customers acted on {len(self.decisions)} {SEGMENT} "
            f"messages: {arms or 'none yet'}; {self.sent} orders sent back"
        ]
        lift = (self.report or {}).get("lift")
        arms_reported = (self.report or {}).get("arms") or []
        if lift and len(arms_reported) >= 2:
            control, treated = arms_reported[0]["name"], arms_reported[1]["name"]
            truth = self.rates.get(treated, 0.0) - self.rates.get(control, 0.0)
            # The report counts every exposed person (intent to treat); the platform
            # messages only those it knows (a user id) who consented: the expected
            # difference is the true one times the share messaged.
            exposed = sum(arm["exposures"] for arm in arms_reported[:2])
            messaged = sum(1 for d in self.decisions if d["arm"] in (control, treated))
            share = messaged / exposed if exposed else 0.0
            interval = (
                f"[{lift['ci_low'] * 100:+.1f}, {lift['ci_high'] * 100:+.1f}]"
                if lift.get("enough_data")
                else "(no interval before 100 exposures per arm: try --days 60 --customers 1000)"
            )
            lines.append(
                f"  experiment    {self.experiment}: {treated} - {control} "
                f"{lift['estimate'] * 100:+.1f} points {interval}; expected "
                f"{truth * share * 100:+.1f} ({truth * 100:+.1f} among the messaged, "
                f"{messaged} of {exposed} exposed)"
            )
        return lines


def start_acting(stack: LocalStack) -> str | None:
    """Tell the sink's customers to act; the experiment measuring it (None: the
    configuration has no such sink or experiment, and nobody acts)."""
    experiment = next((e.id for e in stack.config.experiments if e.segment == SEGMENT), None)
    if experiment is None or SINK not in {d.name for d in stack.config.destinations}:
        return None
    stack.sinks.customers.instruct(SINK, Acting.from_json({**ORDER, "rates": RATES}))
    return experiment


def settle(stack: LocalStack, timeout_s: float) -> bool:
    """Drain the pipeline, including the orders the customers send back (and what
    those cause): True once a drained pipeline has no post in flight."""
    sender = stack.sinks.customers.send
    for _ in range(ROUNDS):
        if not stack.wait_until_drained(timeout_s=timeout_s):
            return False
        if not isinstance(sender, IngestSender):
            return True
        posted = sender.sent + sender.failed
        sender.settle(timeout_s=30)
        if sender.sent + sender.failed == posted:
            return True
    return stack.wait_until_drained(timeout_s=timeout_s)


def known_lift(stack: LocalStack, experiment: str) -> KnownLift:
    sender = stack.sinks.customers.send
    sent, unsure = (sender.sent, sender.failed) if isinstance(sender, IngestSender) else (0, 0)
    try:
        api = AdminApi(stack.url, stack.admin_key)
        report = api.request("GET", f"/v1/experiments/{experiment}")
    except (urllib.error.URLError, OSError):
        report = None
    return KnownLift(experiment, RATES, stack.sinks.customers.decisions(SINK), sent, unsure, report)
