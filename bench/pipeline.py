"""The whole pipeline on the local stack: HTTP ingest to delivered webhooks.

    python bench/pipeline.py [--customers 40] [--write]

Starts the local stack in this process (moto server, gateway, pollers, sinks),
sends `beacon simulate`'s shoppers over real HTTP, and waits until every step has
drained. botocore hooks on every function's boto3 clients count, for the whole
pipeline, DynamoDB items read and written, Kinesis records written and SQS
messages sent, per event sent. Throughput is events sent per second from the
first request to the drained pipeline, on this machine with moto: a floor for
the code paths, not an AWS figure. `--write` replaces the `## Pipeline` section
of docs/benchmarks.md.
"""

from __future__ import annotations

import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import (
    CONFIG,
    command_line,
    pipeline_arguments,
    prose,
    quietly,
    report,
    section_head,
)

SECTION = "## Pipeline"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(customers: int) -> dict[str, Any]:
    from cli.observe import observe
    from functions.shared.dal import clients
    from infra.local.runtime import LocalSettings, LocalStack
    from simulator.shoppers import Simulator

    settings = LocalSettings(config_file=Path(CONFIG), port=_free_port(), aws_port=_free_port())
    counts: Counter[str] = Counter()

    def on_params(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        counts[f"calls:{name}"] += 1
        if name == "BatchGetItem":
            counts["dynamodb_read"] += sum(len(t["Keys"]) for t in params["RequestItems"].values())
        elif name == "BatchWriteItem":
            counts["dynamodb_write"] += sum(len(r) for r in params["RequestItems"].values())
        elif name in ("PutItem", "UpdateItem", "DeleteItem"):
            counts["dynamodb_write"] += 1
        elif name == "TransactWriteItems":
            counts["dynamodb_write"] += 2 * len(params["TransactItems"])  # two units each
        elif name == "PutRecords":
            counts["kinesis_records"] += len(params["Records"])
        elif name == "SendMessageBatch":
            counts["sqs_messages"] += len(params["Entries"])
        elif name == "SendMessage":
            counts["sqs_messages"] += 1

    def on_query(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            counts["dynamodb_read"] += int(parsed.get("Count", 0))

    with LocalStack(settings) as stack:
        # Each function has its own clients (its role's session, infra/local/iam.py).
        for function in stack.functions.values():
            with clients.session_for_clients(function.session):
                for service in ("dynamodb", "kinesis", "sqs"):
                    client = clients.client(service)
                    client.meta.events.register(f"before-parameter-build.{service}", on_params)
                    client.meta.events.register(f"after-call.{service}", on_query)
        web, *others = stack.config.sources
        simulator = Simulator(
            stack.url,
            web.local_write_key,
            others[0].local_write_key if others else None,
            seed=7,
        )
        started = time.perf_counter()
        report = simulator.run(customers=customers)
        sent_s = time.perf_counter() - started
        drained = stack.wait_until_drained(timeout_s=300)
        elapsed = time.perf_counter() - started
        assert stack.aws is not None
        outcome = observe(stack.aws, stack.names)
        invocations = {name: fn.invocations for name, fn in stack.functions.items()}
    return {
        "invocations": invocations,
        "customers": customers,
        "sent": report.units_sent,
        "requests": report.requests,
        "forwarded": outcome.forwarded,
        "applied": outcome.profiles.events_applied,
        "deliveries": sum(n for (_, o), n in outcome.deliveries.items() if o == "delivered"),
        "sent_s": sent_s,
        "elapsed": elapsed,
        "drained": drained,
        "counts": counts,
    }


def table(r: dict[str, Any]) -> str:
    sent, c = r["sent"], r["counts"]
    return "\n".join(
        [
            "| measure | value |",
            "|---|---:|",
            f"| events sent over HTTP ({r['requests']} requests) | {sent:,} |",
            f"| forwarded by consent / applied to profiles | {r['forwarded']:,} / "
            f"{r['applied']:,} |",
            f"| webhook deliveries made | {r['deliveries']:,} |",
            f"| events/s, first request to drained pipeline | {sent / r['elapsed']:,.1f} |",
            f"| DynamoDB items read per event sent | {c['dynamodb_read'] / sent:.2f} |",
            f"| DynamoDB write units per event sent | {c['dynamodb_write'] / sent:.2f} |",
            f"| Kinesis records written per event sent | {c['kinesis_records'] / sent:.2f} |",
            f"| SQS messages sent per event sent | {c['sqs_messages'] / sent:.2f} |",
        ]
    )


def section(r: dict[str, Any], command: str) -> str:
    return "\n\n".join(
        [
            section_head(SECTION, command, carries_over="units per event"),
            table(r),
            prose(
                f"The local stack in one process on this machine: {r['customers']} simulated "
                "shoppers (Segment and Snowplow wire formats, consent opt-ins and opt-outs, "
                "second devices, a few bad requests) sent over HTTP, then every step drained "
                f"({'drained' if r['drained'] else 'NOT drained'} after {r['elapsed']:.0f} s; "
                f"sending took {r['sent_s']:.0f} s). Units are counted on the boto3 clients "
                "of every function, all of them together: the figure to multiply "
                "by traffic (docs/cost.md). A transactional write counts two units. Events "
                "the consent policy drops cost a consent read and write but nothing after."
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = pipeline_arguments(__doc__, argv)
    command = command_line("pipeline.py", argv)
    results = quietly(lambda: measure(args.customers))
    return report([table(results)], args.write, SECTION, lambda: section(results, command))


if __name__ == "__main__":
    sys.exit(main())
