"""What IAM enforcement costs the local stack: the same traffic with and without it.

    python bench/local_iam.py [--customers 20] [--rounds 2] [--write]

Starts the local stack in this process, sends `beacon simulate`'s shoppers over
real HTTP and waits until every step has drained, once with moto enforcing each
function's role (the default, docs/deploy.md) and once with moto's
authorization off (`LocalSettings(enforce_iam=False)`, which exists for this
measurement only), alternating for `--rounds` rounds. Reports events/s from the
first request to the drained pipeline, and the stack's start-up time (roles
created and assumed; the synthesized policies come from the .build/iam cache).
`--write` replaces the `## Local IAM enforcement` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import CONFIG, command_line, prose, quietly, report, section_head

SECTION = "## Local IAM enforcement"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_once(customers: int, enforce_iam: bool) -> dict[str, float]:
    from infra.local.runtime import LocalSettings, LocalStack
    from simulator.shoppers import Simulator

    settings = LocalSettings(
        config_file=Path(CONFIG), port=_free_port(), aws_port=_free_port(), enforce_iam=enforce_iam
    )
    begun = time.perf_counter()
    with LocalStack(settings) as stack:
        start_s = time.perf_counter() - begun
        web, *others = stack.config.sources
        simulator = Simulator(
            stack.url, web.local_write_key, others[0].local_write_key if others else None, seed=7
        )
        started = time.perf_counter()
        sent = simulator.run(customers=customers).units_sent
        drained = stack.wait_until_drained(timeout_s=300)
        elapsed = time.perf_counter() - started
    if not drained:
        raise RuntimeError("the pipeline did not drain")
    return {"events_per_s": sent / elapsed, "start_s": start_s, "sent": sent}


def measure(customers: int, rounds: int) -> dict[str, Any]:
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(rounds):
        for enforce in (True, False):
            runs[enforce].append(run_once(customers, enforce))
    return {"customers": customers, "rounds": rounds, "runs": runs}


def table(r: dict[str, Any]) -> str:
    rows = ["| moto authorization | events/s (median) | each run | stack start s (median) |"]
    rows.append("|---|---:|---|---:|")
    for enforce, label in ((False, "off"), (True, "on: each function's role")):
        runs = r["runs"][enforce]
        rates = [x["events_per_s"] for x in runs]
        rows.append(
            f"| {label} | {statistics.median(rates):.1f} | "
            f"{', '.join(f'{v:.1f}' for v in rates)} | "
            f"{statistics.median(x['start_s'] for x in runs):.1f} |"
        )
    return "\n".join(rows)


def section(r: dict[str, Any], command: str) -> str:
    on = statistics.median(x["events_per_s"] for x in r["runs"][True])
    off = statistics.median(x["events_per_s"] for x in r["runs"][False])
    sent = int(r["runs"][True][0]["sent"])
    return "\n\n".join(
        [
            section_head(SECTION, command, carries_over="ratios between the two settings"),
            table(r),
            prose(
                f"{r['customers']} simulated shoppers ({sent} events) through the whole local "
                f"stack, {r['rounds']} rounds alternating the two settings. With enforcement "
                f"the pipeline ran at {on / off:.0%} of its speed without: moto then checks "
                "every call's signature and the caller's role policy (docs/deploy.md). The "
                "stack start includes creating and assuming the seven roles; the synthesized "
                "policies come from the .build/iam cache (a cold synth takes about a minute "
                "more, once)."
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=20, help="simulated shoppers")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = command_line("local_iam.py", argv)
    results = quietly(lambda: measure(args.customers, args.rounds))
    return report([table(results)], args.write, SECTION, lambda: section(results, command))


if __name__ == "__main__":
    sys.exit(main())
