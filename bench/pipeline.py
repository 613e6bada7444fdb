"""The whole pipeline under load on the local stack: HTTP ingest to delivered webhooks.

    python bench/pipeline.py [--customers 1300] [--days 30] [--burst 3000]
                             [--concurrency 8] [--probes 40] [--write]

Starts the local stack (gateway, pollers and handlers in this process, moto in its
own) and sends, over real HTTP and `--concurrency` connections at once:

1. journeys: `--customers` shoppers' `--days`-day journeys (`beacon simulate --days`:
   returning visitors, logins, second devices, orders from the shop's backend);
2. a burst of `--burst` new visitors, each one analytics.js batch of a page view
   and three product views, all at once;

then waits until every step has drained, and checks the ledger: every event sent
is in the events stream or the failed events, and each step accounts for what
the one before it passed on. Then 3. `--probes` latency probes, one at a time
on the idle stack (a few events a second): a new visitor who consents and views
four products, which puts them in `frequent_viewers`, a segment the
`crm-webhook` destination receives; the latency is from the moment ingest
answered 200 to the moment the webhook request reached the local receiver.

Measured with `infra/local/meter.py`: AWS calls and units per function (DynamoDB items
read and write units, Kinesis records, SQS messages) and each handler's time,
split into its own time and its wait on AWS; with /proc: the peak resident memory
and the CPU time of this process and of moto's. `--write` replaces the
`## Pipeline` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import CONFIG, ROOT, command_line, prose, quietly, report, section_head
from infra.local.meter import RUNTIME, Meter

SECTION = "## Pipeline"
MEASURED = ROOT / ".build" / "measured.json"  # with --write: what bench/cost.py reads
CONSENTED = {"consent": {"categoryPreferences": {"personalization": True, "analytics": True}}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in MB (VmRSS now, VmHWM the peak); 0 if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) // 1024
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemoryWatch:
    """Samples each process's resident memory twice a second: the peak, and the
    curve (the last sample of each minute) to see whether it stays flat."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak: Counter[str] = Counter()
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, pid in self.pids.items():
                rss = _status(pid, "VmRSS")
                self.peak[name] = max(self.peak[name], rss)
                self.samples[name].append(rss)


def _burst(url: str, write_key: str, visitors: int, concurrency: int) -> Any:
    """New visitors all at once: one analytics.js batch each (a page, three products)."""
    from simulator.sender import Sender

    sender = Sender(url, concurrency)
    for n in range(visitors):
        sender.use_lane(n)
        anonymous_id = str(uuid.uuid4())
        items: list[dict[str, Any]] = [
            {"type": "page", "anonymousId": anonymous_id, "name": "Home", "context": CONSENTED}
        ]
        items += [
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": anonymous_id,
                "properties": {"product_id": f"sku-{n % 97}-{i}", "category": "Shoes"},
                "context": CONSENTED,
            }
            for i in range(3)
        ]
        body = {"batch": items, "writeKey": write_key}
        sender.post_segment("/v1/batch", body, "application/json", units=len(items))
    return sender.finish()


def _probe(url: str, write_key: str, probes: int) -> tuple[dict[str, float], Any]:
    """One identified new visitor at a time, entering `frequent_viewers`; when each
    request was answered, by user id."""
    from simulator.sender import Sender

    sender = Sender(url)
    accepted: dict[str, float] = {}
    for n in range(probes):
        user_id = f"probe-{n}-{uuid.uuid4().hex[:8]}"
        anonymous_id = str(uuid.uuid4())
        items: list[dict[str, Any]] = [
            {"type": "identify", "anonymousId": anonymous_id, "userId": user_id,
             "context": CONSENTED},
        ]  # fmt: skip
        items += [
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": user_id,
                "anonymousId": anonymous_id,
                "properties": {"product_id": f"probe-{i}", "category": "Shoes"},
                "context": CONSENTED,
            }
            for i in range(4)
        ]
        sender.post_segment(
            "/v1/batch", {"batch": items, "writeKey": write_key}, "application/json", len(items)
        )
        accepted[user_id] = time.time()
        time.sleep(0.25)
    return accepted, sender.finish()


def _latencies(stack: Any, accepted: dict[str, float]) -> list[float]:
    arrived: dict[str, float] = {}
    for received in stack.sinks.received("crm-webhook"):
        body = received.body if isinstance(received.body, dict) else {}
        user = body.get("user_id")
        entered = body.get("type") == "segment.entered"
        if user in accepted and entered and body.get("segment_id") == "frequent_viewers":
            arrived.setdefault(user, received.at)
    return sorted(arrived[u] - accepted[u] for u in arrived)


def _merged(*reports: Any) -> Any:
    from simulator.sender import SimulationReport

    total = SimulationReport()
    for r in reports:
        total.requests += r.requests
        total.units_sent += r.units_sent
        total.units_resent += r.units_resent
        total.expected_failed.update(r.expected_failed)
        total.statuses.update(r.statuses)
        total.by_protocol.update(r.by_protocol)
    return total


def measure(
    customers: int, days: int = 30, burst: int = 0, concurrency: int = 8, probes: int = 0
) -> dict[str, Any]:
    from cli.demo import ledger_problems
    from cli.observe import observe
    from infra.local.runtime import LocalSettings, LocalStack
    from simulator.shoppers import Simulator

    settings = LocalSettings(config_file=Path(CONFIG), port=_free_port(), aws_port=_free_port())
    meter = Meter()
    phases: dict[str, dict[str, float]] = {}
    with meter.installed(), LocalStack(settings) as stack:
        assert stack.aws is not None and stack.aws.server_pid is not None
        pids = {"beacon (gateway, pollers, handlers)": os.getpid(), "moto": stack.aws.server_pid}
        cpu_before = {name: _cpu_s(pid) for name, pid in pids.items()}
        web, *others = stack.config.sources
        server_key = others[0].local_write_key if others else None
        with MemoryWatch(pids) as memory:
            started = time.perf_counter()
            simulator = Simulator(
                stack.url, web.local_write_key, server_key, seed=7, concurrency=concurrency
            )
            journeys = simulator.run(customers=customers, days=days or None)
            phases["journeys"] = {
                "events": journeys.units_sent,
                "requests": journeys.requests,
                "seconds": time.perf_counter() - started,
            }
            burst_started = time.perf_counter()
            bursts = _burst(stack.url, web.local_write_key, burst, concurrency)
            phases["burst of new visitors"] = {
                "events": bursts.units_sent,
                "requests": bursts.requests,
                "seconds": time.perf_counter() - burst_started,
            }
            drained = stack.wait_until_drained(timeout_s=1800)
            elapsed = time.perf_counter() - started
            cpu = {name: _cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
            sent_under_load = journeys.units_sent + bursts.units_sent
            units = {u: meter.total(u) for u in _UNITS}
            accepted, probed = _probe(stack.url, web.local_write_key, probes)
            stack.wait_until_drained(timeout_s=300)
            # A delivery the webhook step paced (a destination's rate limit) waits in
            # the queue, invisible, after the stack looks drained: give it a minute.
            waited = time.monotonic()
            while len(latencies := _latencies(stack, accepted)) < probes:
                if time.monotonic() - waited > 60:
                    break
                time.sleep(0.5)
        outcome = observe(stack.aws, stack.names)
        problems = ledger_problems(_merged(journeys, bursts, probed), outcome)
    return {
        "customers": customers,
        "days": days,
        "burst": burst,
        "concurrency": concurrency,
        "phases": phases,
        "sent": sent_under_load,
        "elapsed": elapsed,
        "drained": drained,
        "cpu": cpu,
        "peak_mb": dict(memory.peak),
        "memory_curve": {name: s[::120] + s[-1:] for name, s in memory.samples.items()},
        "units": units,
        "by_function": meter.by_function,
        "probes": probes,
        "latencies": latencies,
        "forwarded": outcome.forwarded,
        "applied": outcome.profiles.events_applied,
        "deliveries": sum(n for (_, o), n in outcome.deliveries.items() if o == "delivered"),
        "ledger": problems,
        # What bench/cost.py reads: units per event sent, over the load phases.
        "counts": units,
    }


_UNITS = ("dynamodb_read", "dynamodb_write", "kinesis_records", "sqs_messages")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def tables(r: dict[str, Any]) -> list[str]:
    sent = r["sent"]
    rows = [
        "| phase | events | requests | seconds | events/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, p in r["phases"].items():
        rate = p["events"] / p["seconds"] if p["seconds"] else 0
        rows.append(
            f"| {name}: accepted | {p['events']:,.0f} | {p['requests']:,.0f} | "
            f"{p['seconds']:.0f} | {rate:,.0f} |"
        )
    rows.append(
        f"| **first request to drained pipeline** | {sent:,} | | {r['elapsed']:.0f} | "
        f"**{sent / r['elapsed']:,.0f}** |"
    )
    throughput = "\n".join(rows)
    memory = "\n".join(
        [
            "| process | peak resident memory | CPU seconds | CPU ms per event |",
            "|---|---:|---:|---:|",
            *(
                f"| {name} | {r['peak_mb'][name]:,} MB | {r['cpu'][name]:.0f} | "
                f"{1000 * r['cpu'][name] / sent:.2f} |"
                for name in r["cpu"]
            ),
        ]
    )
    lat = r["latencies"]
    latency = "\n".join(
        [
            "| acceptance → webhook delivery | p50 | p95 | p99 | probes delivered |",
            "|---|---:|---:|---:|---:|",
            f"| seconds | {_percentile(lat, 50):.2f} | {_percentile(lat, 95):.2f} | "
            f"{_percentile(lat, 99):.2f} | {len(lat)} of {r['probes']} |",
        ]
    )
    u = r["units"]
    units = "\n".join(
        [
            "| per event sent (load phases) | all functions |",
            "|---|---:|",
            f"| DynamoDB items read | {u['dynamodb_read'] / sent:.3f} |",
            f"| DynamoDB write units (a transactional write is two) | "
            f"{u['dynamodb_write'] / sent:.3f} |",
            f"| Kinesis records written | {u['kinesis_records'] / sent:.3f} |",
            f"| SQS messages sent | {u['sqs_messages'] / sent:.3f} |",
        ]
    )
    fn_rows = [
        "| function | invocations | ms per invocation (mean / p95) | AWS wait / wall time | "
        "AWS calls per invocation | write units per event |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, cost in sorted(r["by_function"].items()):
        if name == RUNTIME or not cost.invocations:
            continue
        durations = sorted(cost.durations_ms)
        fn_rows.append(
            f"| {name} | {cost.invocations:,} | {statistics.fmean(durations):.0f} / "
            f"{_percentile(durations, 95):.0f} | {cost.aws_wait_s / cost.wall_s:.0%} | "
            f"{sum(cost.calls.values()) / cost.invocations:.1f} | "
            f"{cost.units['dynamodb_write'] / sent:.3f} |"
        )
    runtime = r["by_function"].get(RUNTIME)
    if runtime is not None:
        fn_rows.append(
            f"| (local pollers and checkpoints) | | | | "
            f"{sum(runtime.calls.values()):,} calls in all | |"
        )
    ledger = "Ledger: " + ("adds up." if not r["ledger"] else "; ".join(r["ledger"]))
    return [throughput, memory, latency, units, "\n".join(fn_rows), ledger]


def section(r: dict[str, Any], command: str) -> str:
    curve = "; ".join(
        f"{name}: " + " → ".join(f"{mb:,}" for mb in samples) + " MB"
        for name, samples in r["memory_curve"].items()
    )
    return "\n\n".join(
        [
            section_head(SECTION, command, carries_over="units per event and ratios"),
            *tables(r),
            prose(
                f"{r['customers']:,} shoppers' {r['days']}-day journeys and a burst of "
                f"{r['burst']:,} new visitors, sent over {r['concurrency']} connections at once, "
                f"then every step drained ({'drained' if r['drained'] else 'NOT drained'}). "
                "Handlers run one invocation at a time per function, as one Lambda "
                "container would, so a function's own time plus its wait on moto bounds "
                "what the stack does per second; moto answers from its own process. "
                f"Resident memory once a minute: {curve}.",
                "Latency probes run after the load, one at a time, four a second: the "
                "figures are for a lightly loaded stack. AWS wait above 100 % of a "
                "function's wall time: writes it ran side by side (identity's commit).",
            ),
        ]
    )


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1300, help="shoppers with journeys")
    parser.add_argument("--days", type=int, default=30, help="days of journey per shopper")
    parser.add_argument("--burst", type=int, default=3000, help="new visitors all at once")
    parser.add_argument("--concurrency", type=int, default=8, help="connections at once")
    parser.add_argument("--probes", type=int, default=40, help="latency probes")
    parser.add_argument("--write", action="store_true", help="rewrite its document")
    parser.add_argument(
        "--save", type=Path, default=None, help="also save the measurements as JSON (cost.py)"
    )
    return parser.parse_args(argv)


def saved(r: dict[str, Any]) -> dict[str, Any]:
    """What bench/cost.py needs, as JSON: units per event and each function's work."""
    return {
        "command": r["command"],
        "sent": r["sent"],
        "forwarded": r["forwarded"],
        "counts": r["units"],
        "functions": {
            name: {
                "invocations": c.invocations,
                "records": c.records,
                "own_s": c.own_s,
                "aws_wait_s": c.aws_wait_s,
                "calls": dict(c.calls),
            }
            for name, c in r["by_function"].items()
            if name != RUNTIME
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    command = command_line("pipeline.py", argv)
    results = quietly(
        lambda: measure(args.customers, args.days, args.burst, args.concurrency, args.probes)
    )
    results["command"] = command
    status = report(tables(results), args.write, SECTION, lambda: section(results, command))
    save = args.save or (MEASURED if args.write else None)
    if save:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(json.dumps(saved(results), indent=1), encoding="utf-8")
    return 1 if results["ledger"] else status


if __name__ == "__main__":
    sys.exit(main())
