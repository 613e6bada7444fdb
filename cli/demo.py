"""`beacon demo`: the local stack, simulated traffic over HTTP, and the ledger.

The summary reads what really came out (records in the Kinesis streams,
failed-events objects in S3, the profiles) and checks the ledger: everything
the simulator sent is in the stream or in failed events, consent judged each,
and each forwarded event was applied to a profile exactly once
(`Outcome.pipeline_problems`; docs/fault-drills.md).
"""

from __future__ import annotations

from cli.dashboard.pages import dashboard_pages
from cli.demo_experiment import KnownLift, known_lift, settle, start_acting
from cli.foreground import wait_for_interrupt
from cli.observe import Outcome, observe, score_histogram
from functions.identity.step import REFUSED_WITHOUT_PROFILE
from infra.local.runtime import LocalSettings, LocalStack
from simulator.sender import SimulationReport
from simulator.shoppers import Simulator


def ledger_problems(
    report: SimulationReport, outcome: Outcome, lift: KnownLift | None = None
) -> list[str]:
    """Empty when every event sent is accounted for, once (see `Outcome.pipeline_problems`)."""
    problems = []
    landed = outcome.events.records + outcome.failed_total
    sent = report.units_sent + (lift.sent if lift else 0)
    # A request sent again after no answer (or a 5xx) may have landed twice; a
    # customer's order posted without an answer may have landed once.
    unsure = report.units_resent + (lift.unsure if lift else 0)
    if not sent <= landed <= sent + unsure:
        resent = f" (+ up to {unsure} resent)" if unsure else ""
        problems.append(
            f"{sent} sent{resent} but {outcome.events.records} in stream + "
            f"{outcome.failed_total} failed = {landed}"
        )
    problems += outcome.pipeline_problems()
    for reason, count in report.expected_failed.items():
        if not count <= outcome.failed[reason] <= count + report.units_resent:
            problems.append(f"expected {count} failed as {reason}, found {outcome.failed[reason]}")
    return problems


def summary(
    report: SimulationReport, outcome: Outcome, stack: LocalStack, lift: KnownLift | None = None
) -> str:
    protocols = ", ".join(f"{p} {n}" for p, n in sorted(report.by_protocol.items()))
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(report.statuses.items()))
    reasons = ", ".join(f"{r} {n}" for r, n in outcome.failed.most_common()) or "none"
    drops = ", ".join(f"{r} {n}" for r, n in outcome.dropped.most_common()) or "none"
    merges = ", ".join(f"{r} {n}" for r, n in outcome.identity.merges.most_common()) or "none"
    problems = ledger_problems(report, outcome, lift)
    refusals = outcome.identity_counts[REFUSED_WITHOUT_PROFILE]
    sent = report.units_sent + (lift.sent if lift else 0)
    by_customers = f" ({lift.sent} of them the journeys' customers' orders)" if lift else ""
    verdict = (
        "OK: every event is accounted for, and each forwarded one applied to a profile "
        "and archived once"
        if not problems
        else "MISMATCH: " + "; ".join(problems)
    )
    lines = [
        "",
        "Beacon demo summary",
        "===================",
        f"  sent          {report.units_sent:6d} events in {report.requests} HTTP requests "
        f"({protocols})",
        f"  answers       {statuses}",
        f"  events stream {outcome.in_stream:6d} records "
        f"(Kinesis '{stack.names.stream('events')}')",
        f"  failed events {outcome.failed_total:6d} ({reasons})",
        f"  consent       {outcome.forwarded:6d} forwarded to '{stack.names.stream('consented')}'",
        f"                {sum(outcome.dropped.values()):6d} dropped ({drops})",
        f"  identity      {outcome.identity.events:6d} events resolved to "
        f"{len(outcome.identity.profiles)} profiles; merges: {merges}",
        *(
            [f"                {refusals:6d} refusals dropped (the person has no profile)"]
            if refusals
            else []
        ),
        f"  segments      {outcome.profiles.events_applied:6d} events applied to profiles "
        f"({outcome.segments['retried']} client retries applied once, "
        f"{outcome.segments['merges']} merges folded)",
        f"  archived      {outcome.archived:6d} events in '{stack.names.bucket('archive')}' "
        f"({outcome.archive.rows if outcome.archive else 0} rows; "
        f"forwarded {outcome.forwarded}"
        + (f" - {refusals} refusals without a profile)" if refusals else ")"),
        *(
            [
                f"  erasures      {outcome.profiles.erased_applied:6d} applied events left with "
                f"erased profiles; {outcome.erased_after_consent} in flight dropped as erased"
            ]
            if outcome.profiles.erased_applied or outcome.erased_after_consent
            else []
        ),
        *(
            f"                {segment:22s} {size:5d} members"
            for segment, size in sorted(outcome.sizes.items())
            if size
        ),
        *(
            f"  scores        {model:10s} {len(values):5d} profiles, "
            f"mean {sum(values) / len(values):.2f}: {score_histogram(values)}"
            for model, values in sorted(outcome.scores.items())
        ),
        *(
            [f"  recommended   {outcome.profiles.recommended:6d} profiles have a top-10"]
            if outcome.profiles.recommended
            else []
        ),
        *(
            f"  persona       {n:6d} {name}"
            for name, n in sorted(outcome.profiles.personas.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        *(
            f"  deliveries    {destination:12s} "
            + ", ".join(
                f"{outcome} {n}"
                for (d, outcome), n in sorted(outcome.deliveries.items())
                if d == destination
            )
            for destination in sorted({d for d, _ in outcome.deliveries})
        ),
        *(lift.lines() if lift else []),
        f"  ledger        {sent} sent{by_customers} = {outcome.forwarded} forwarded + "
        f"{sum(outcome.dropped.values())} dropped by consent + {outcome.failed_total} failed "
        f"-> {verdict}",
        "",
    ]
    return "\n".join(lines)


def run_demo(
    settings: LocalSettings,
    customers: int,
    seed: int,
    exit_after: bool,
    days: int | None = None,
) -> int:
    with LocalStack(settings, pages=dashboard_pages) as stack:
        print(
            f"Beacon local stack on {stack.url} (AWS on moto at {stack.aws.endpoint})",  # type: ignore[union-attr]
            flush=True,
        )
        keys = {
            s.name: settings.write_keys.get(s.name, s.local_write_key) for s in stack.config.sources
        }
        web, *others = stack.config.sources
        simulator = Simulator(
            stack.url, keys[web.name], keys[others[0].name] if others else None, seed=seed
        )
        experiment = start_acting(stack)
        print(f"Sending simulated traffic for {customers} shoppers ...", flush=True)
        report = simulator.run(customers=customers, days=days)
        if not settle(stack, timeout_s=180):
            print("WARNING: the pipeline had not drained after 180 s", flush=True)
        lift = known_lift(stack, experiment) if experiment else None
        assert stack.aws is not None
        outcome = observe(stack.aws, stack.names)
        print(summary(report, outcome, stack, lift), flush=True)
        failed = bool(ledger_problems(report, outcome, lift))
        if exit_after:
            return 1 if failed else 0
        print(
            f"The stack stays up; the dashboard is at {stack.url}/ (sign in with any user "
            f"name and the admin key, {stack.admin_key}); press Ctrl-C to stop.",
            flush=True,
        )
        wait_for_interrupt()
        return 1 if failed else 0
