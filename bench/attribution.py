"""Attribution over simulated shoppers: what each model credits each channel with,
against the simulator's known channels, and how long sessions and models take.

The simulated shop with channels on (simulator/journeys.py CHANNELS: each channel's
share of visits and its effect on buying are known), 60 days, in-process: each
browser event enriched as ingest enriches it, sessions built by models/touches.py,
the six models of models/attribution.py (lookback 30 days, half-life 7 days). No
stack and no archive: the archive's read (DuckDB or Athena) is not in the times.

    python bench/attribution.py [--write] [--customers N ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

from bench.harness import command_line, prose, report

SECTION = "## Attribution"
START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 60
SEED = 1


def measure(customers: int) -> dict[str, Any]:
    import numpy  # noqa: F401 - imported before the timings (markov solves with it)

    from models.attribution import MODELS, attribute
    from models.touches import people_of, simulated_hits
    from simulator.journeys import generate_journeys

    journeys = generate_journeys(customers, DAYS, SEED, START, channels=True)
    began = time.perf_counter()
    hits = simulated_hits(journeys)
    people = people_of(hits)
    sessions_s = time.perf_counter() - began
    timings = {}
    credit: dict[str, dict[str, float]] = {}
    result = None
    for model in MODELS:
        began = time.perf_counter()
        result = attribute(people, [model])
        timings[model] = time.perf_counter() - began
        credit[model] = {k: c.conversions for k, c in result.models[model].items()}
    assert result is not None
    visits = Counter(t.channel for p in people for t in p.touches)
    return {
        "customers": customers,
        "events": len(hits),
        "touches": sum(visits.values()),
        "visits": dict(visits),
        "conversions": result.totals.conversions,
        "sessions_s": sessions_s,
        "timings": timings,
        "credit": credit,
    }


def tables(results: list[dict[str, Any]]) -> list[str]:
    from simulator.journeys import CHANNELS

    truth = [c.name for c in sorted(CHANNELS, key=lambda c: -c.share * c.lift)]
    out = []
    times = [
        "| shoppers | events | touches | conversions | sessions (s) | "
        + " | ".join(results[0]["timings"])
        + " (s) |",
        "|---:|---:|---:|---:|---:|" + "---:|" * len(results[0]["timings"]),
    ]
    for r in results:
        times.append(
            f"| {r['customers']:,} | {r['events']:,} | {r['touches']:,} | {r['conversions']:,.0f}"
            f" | {r['sessions_s']:.2f} | "
            + " | ".join(f"{t:.3f}" for t in r["timings"].values())
            + " |"
        )
    out.append("\n".join(times))
    largest = results[-1]
    channels = [c.name for c in CHANNELS]
    lines = [
        f"{largest['customers']:,} shoppers: conversions credited (per 1,000 visits);"
        f" truth (share x effect): {' > '.join(truth)}",
        "",
        "| model | " + " | ".join(channels) + " | order matches |",
        "|---|" + "---:|" * len(channels) + "---|",
    ]
    channel_row = "| (share, effect) | " + " | ".join(f"{c.share:.0%}, x{c.lift}" for c in CHANNELS)
    lines.append(channel_row + " | |")
    for model, credit in largest["credit"].items():
        order = sorted(channels, key=lambda k: -credit.get(k, 0.0))
        cells = [
            f"{credit.get(k, 0.0):.0f} ({credit.get(k, 0.0) / largest['visits'][k] * 1000:.0f})"
            for k in channels
        ]
        lines.append(
            f"| {model} | " + " | ".join(cells) + f" | {'yes' if order == truth else 'no'} |"
        )
    out.append("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    results = [measure(n) for n in args.customers]
    printed = tables(results)

    def section() -> str:
        return "\n\n".join(
            [
                f"{SECTION}\n\n`{command_line('attribution.py', argv)}` —"
                f" {date.today().isoformat()}, Python {platform.python_version()}."
                f" Machine: {os.cpu_count() or 1} cores, no AWS and no moto: pure Python,"
                " one core, so the credit and how time grows with the shoppers carry over,"
                " not the seconds.",
                prose(
                    "The simulated shop with channels (seed 1, 60 days); each browser event"
                    " enriched as ingest does, sessions by models/touches.py, each model"
                    " timed alone over the same people (lookback 30 days). The truth: a"
                    " channel's share of visits times its effect on the visit's buying."
                    " Markov (removal effect) orders the channels as the truth does; per"
                    " visit it is compressed (a channel is credited with the later orders"
                    " of the paths it sits on), which last touch is not: docs/attribution.md."
                    " Times are single runs on a shared machine (a pause of the collector"
                    " lands on whichever model runs then): read the order of magnitude.",
                ),
                *printed,
            ]
        )

    return report(printed, args.write, SECTION, section)


if __name__ == "__main__":
    sys.exit(main())
