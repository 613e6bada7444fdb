"""The touchpoint: GET /v1/personalize latency, DynamoDB reads per request, freshness.

    python bench/personalize.py [--visitors 60] [--requests 600] [--write]

Starts the local stack in this process (moto in its child process, the gateway,
the pollers), sends `--visitors` consenting visitors over HTTP (a first name, a cart
left yesterday) and waits until the pipeline has drained. Then:
  - server time: the touchpoint handler called in this process with API Gateway
    events, from 1, 10 and 50 threads at once (p50/p95/p99);
  - over local HTTP: the same requests through the gateway, timed by the client;
  - DynamoDB reads per request, counted on the handler's own tables: a visitor's
    first request (identifier cache cold), a returning visitor's (warm), and
    an unknown visitor's (remembered miss);
  - freshness: seconds from an identify's 200 at ingest to the first personalize
    answer that shows its new first name (polled every 25 ms), for visitors sent
    at once.
`--write` replaces the `## Personalize` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import (
    CONFIG,
    command_line,
    lambda_context,
    prose,
    quietly,
    report,
    section_head,
)

SECTION = "## Personalize"
CONCURRENCY = (1, 10, 50)
EXTRA_LATENCY = (
    "The machine was shared with other test runs while measuring (load average about 9 on 2 "
    "cores): the latencies are an upper bound for this code on this machine, not a property "
    "of it."
)
EXTRA_COST = (
    "Decision items are written in the profile's own transaction, so a profile write that was "
    "a single UpdateItem becomes a two-item transaction (the profile's units double) and the "
    "decision item costs two units. The simulated journeys are short, so most of their "
    "profile writes are a first personalized write, a new segment or a new favourite "
    "category; long-lived profiles change what a page is told far less often than they take "
    "events. A separate conditional PutItem (refused on erasure and merge markers) would cost "
    "one unit and no doubling, at the price of a decision that can be briefly ahead of or "
    "behind its profile; docs/personalize.md weighs the two."
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, key: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": _basic(key)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def _basic(key: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def _timed_in_threads(threads: int, calls: list[Callable[[], None]]) -> list[float]:
    """Each call timed on its own, `threads` at a time; milliseconds."""
    times: list[float] = []
    lock = threading.Lock()

    def run(call: Callable[[], None]) -> None:
        began = time.perf_counter()
        call()
        elapsed = (time.perf_counter() - began) * 1000
        with lock:
            times.append(elapsed)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, calls))
    return times


def _write_cost(stack: Any, customers: int) -> dict[str, int]:
    """What the decision items add to the pipeline's DynamoDB writes, for `beacon
    simulate`'s shoppers (units as bench/pipeline.py counts them: a transaction's
    items two each, a single write one)."""
    from functions.shared.dal import clients
    from simulator.shoppers import Simulator

    counts: dict[str, int] = {"write_units": 0, "decision_items": 0, "upgraded": 0}

    def on_params(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            items = params["TransactItems"]
            counts["write_units"] += 2 * len(items)
            keys = [next(iter(i.values()))["Key"]["sk"]["S"] for i in items]
            decisions = keys.count("decision")
            counts["decision_items"] += decisions
            # A profile write that would have been a single UpdateItem without it.
            counts["upgraded"] += int(decisions == 1 and len(items) == 2)
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            counts["write_units"] += 1
        elif model.name == "BatchWriteItem":
            counts["write_units"] += sum(len(r) for r in params["RequestItems"].values())

    client = clients.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb", on_params)
    web, *others = stack.config.sources
    simulator = Simulator(
        stack.url, web.local_write_key, others[0].local_write_key if others else None, seed=7
    )
    sent = simulator.run(customers=customers).units_sent
    stack.wait_until_drained(timeout_s=300)
    client.meta.events.unregister("before-parameter-build.dynamodb", on_params)
    return {**counts, "events": sent, "customers": customers}


def measure(visitors: int, requests: int, customers: int = 40) -> dict[str, Any]:
    from functions.personalize import handler
    from infra.local.gateway import http_api_event
    from infra.local.runtime import LocalSettings, LocalStack
    from infra.topology import TOPOLOGY

    settings = LocalSettings(config_file=Path(CONFIG), port=_free_port(), aws_port=_free_port())
    results: dict[str, Any] = {"visitors": visitors, "requests": requests}
    with LocalStack(settings) as stack:
        key = stack.web_write_key
        results["cost"] = _write_cost(stack, customers)
        consent = {"categoryPreferences": {"personalization": True, "analytics": True}}
        yesterday = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
        ids = [f"bench-{uuid.uuid4()}" for _ in range(visitors)]
        for anonymous_id in ids:
            context = {"consent": consent}
            batch = [
                {"type": "identify", "anonymousId": anonymous_id, "context": context,
                 "traits": {"first_name": "Ana", "email": f"{anonymous_id}@example.org"}},
                {"type": "track", "anonymousId": anonymous_id, "context": context,
                 "event": "Product Added", "timestamp": yesterday,
                 "properties": {"product_id": "sku-1", "price": 120.0, "quantity": 1}},
            ]  # fmt: skip
            _post(stack.url, key, "/v1/batch", {"batch": batch})
        results["drained"] = stack.wait_until_drained(timeout_s=300)

        touchpoint = handler.touchpoint()
        graph_table = touchpoint.resolver.graph.table  # type: ignore[attr-defined]
        decisions_table = touchpoint.decisions.table  # type: ignore[attr-defined]

        def reads() -> int:
            return int(graph_table.read_calls + decisions_table.read_calls)

        function = TOPOLOGY.function("personalize")

        def in_process(anonymous_id: str) -> Callable[[], None]:
            query = {"writeKey": key, "anonymousId": anonymous_id}
            event = http_api_event(
                "GET",
                "/v1/personalize",
                route_key="GET /v1/personalize",
                query=query,
                raw_query=urllib.parse.urlencode(query),
            )

            def call() -> None:
                answer = handler.lambda_handler(event, lambda_context(function))
                assert answer["statusCode"] == 200

            return call

        # Reads per request, by kind of visitor.
        touchpoint.resolver.cache._entries.clear()
        before = reads()
        for anonymous_id in ids:
            in_process(anonymous_id)()
        cold = (reads() - before) / len(ids)
        before = reads()
        for anonymous_id in ids:
            in_process(anonymous_id)()
        warm = (reads() - before) / len(ids)
        stranger = f"bench-unknown-{uuid.uuid4()}"
        before = reads()
        for _ in range(20):
            in_process(stranger)()
        unknown = (reads() - before) / 20
        personalized = json.loads(
            handler.lambda_handler(
                http_api_event(
                    "GET",
                    "/v1/personalize",
                    route_key="GET /v1/personalize",
                    query={"writeKey": key, "anonymousId": ids[0]},
                ),
                lambda_context(function),
            )["body"]
        )
        results["reads"] = {"cold": cold, "warm": warm, "unknown": unknown}
        results["sample"] = personalized

        # Server time in process, then over HTTP, at 1, 10 and 50 clients.
        results["server"] = {}
        results["http"] = {}
        for threads in CONCURRENCY:
            count = requests if threads > 1 else max(100, requests // 3)
            calls = [in_process(ids[i % len(ids)]) for i in range(count)]
            before = reads()
            results["server"][threads] = (
                _percentiles(_timed_in_threads(threads, calls)),
                (reads() - before) / count,
            )
            urls = [
                f"{stack.url}/v1/personalize?writeKey={key}&anonymousId={ids[i % len(ids)]}"
                for i in range(count)
            ]

            def fetch(url: str) -> Callable[[], None]:
                def call() -> None:
                    assert _get(url)["personalized"] is True

                return call

            results["http"][threads] = _percentiles(
                _timed_in_threads(threads, [fetch(u) for u in urls])
            )

        # Freshness: identify now, poll until the answer shows it.
        fresh: list[float] = []
        lock = threading.Lock()

        def one_visit(_: int) -> None:
            anonymous_id = f"fresh-{uuid.uuid4()}"
            # Letters only: a run of seven digits would be taken for a phone and not told.
            name = "N" + "".join(chr(97 + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])
            body = {"anonymousId": anonymous_id, "traits": {"first_name": name},
                    "context": {"consent": consent}}  # fmt: skip
            _post(stack.url, key, "/v1/identify", body)
            accepted = time.perf_counter()
            url = f"{stack.url}/v1/personalize?writeKey={key}&anonymousId={anonymous_id}"
            while time.perf_counter() - accepted < 120:
                if _get(url)["traits"].get("first_name") == name:
                    with lock:
                        fresh.append(time.perf_counter() - accepted)
                    return
                time.sleep(0.025)

        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(one_visit, range(30)))
        results["freshness"] = fresh
    return results


def tables(r: dict[str, Any]) -> list[str]:
    latency = ["| clients | in-process p50 / p95 / p99 (ms) | over HTTP p50 / p95 / p99 (ms) "
               "| reads per request |", "|---:|---:|---:|---:|"]  # fmt: skip
    for threads in CONCURRENCY:
        (s50, s95, s99), per_request = r["server"][threads]
        h50, h95, h99 = r["http"][threads]
        latency.append(
            f"| {threads} | {s50:.1f} / {s95:.1f} / {s99:.1f} | {h50:.1f} / {h95:.1f} / "
            f"{h99:.1f} | {per_request:.2f} |"
        )
    reads = r["reads"]
    calls = [
        "| visitor | DynamoDB reads per request |",
        "|---|---:|",
        f"| first request of a known visitor (identifier cache cold) | {reads['cold']:.2f} |",
        f"| a returning visitor (cache warm): the hot path | {reads['warm']:.2f} |",
        f"| an unknown visitor, asked 20 times in a row | {reads['unknown']:.2f} |",
    ]
    cost = r["cost"]
    events = max(cost["events"], 1)
    added = 2 * cost["decision_items"] + cost["upgraded"]
    writes = [
        f"| decision items in the pipeline's writes ({cost['customers']} simulated shoppers, "
        f"{cost['events']:,} events) | value |",
        "|---|---:|",
        f"| decision items written | {cost['decision_items']:,} |",
        f"| profile writes made transactions by one | {cost['upgraded']:,} |",
        f"| write units they add per event | {added / events:.3f} |",
        f"| all DynamoDB write units per event | {cost['write_units'] / events:.2f} |",
    ]
    fresh = r["freshness"]
    p50, p95, _ = _percentiles(fresh) if len(fresh) > 2 else (float("nan"),) * 3
    freshness = [
        "| freshness: event accepted -> answer reflects it | value |",
        "|---|---:|",
        f"| visitors measured (10 at a time) | {len(fresh)} of 30 |",
        f"| p50 / p95 (s) | {p50:.2f} / {p95:.2f} |",
    ]
    return ["\n".join(latency), "\n".join(calls), "\n".join(freshness), "\n".join(writes)]


def section(r: dict[str, Any], command: str) -> str:
    return "\n\n".join(
        [
            section_head(SECTION, command, carries_over="reads per request"),
            *tables(r),
            prose(
                f"The local stack in this process with {r['visitors']} consenting visitors "
                f"({'drained' if r['drained'] else 'NOT drained'} before measuring); "
                f"{r['requests']} requests per level (a third of them, at least 100, for one "
                "client). In-process is the handler's own time (the API Gateway event in, the "
                "answer out, moto over HTTP on loopback for the one GetItem); over HTTP adds "
                "the local gateway (werkzeug) and the client. Both run on the two cores the "
                "stack's pollers also use, so the 50-client figures measure queueing on this "
                "machine more than the function; deployed, each concurrent request has its own "
                "container."
            ),
            prose(EXTRA_LATENCY),
            prose(
                "Reads are counted on the handler's two tables. A returning visitor costs one "
                "GetItem (the decision item); the first request of a container for a visitor "
                "adds the identity node read, and an unknown visitor costs one read per "
                "`miss_ttl_s` (2 s) and none in between. Freshness is the pipeline's: ingest, "
                "consent, identity and segments each poll their stream (the local pollers wait "
                "up to a second between empty reads, as Lambda's batching window does)."
            ),
            prose(EXTRA_COST),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--visitors", type=int, default=60)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = command_line("personalize.py", argv)
    results = quietly(lambda: measure(args.visitors, args.requests))
    return report(tables(results), args.write, SECTION, lambda: section(results, command))


if __name__ == "__main__":
    sys.exit(main())
