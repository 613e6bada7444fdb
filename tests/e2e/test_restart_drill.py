"""Fault drill: the local stack killed mid-run (SIGKILL) and started again.

AWS's streams, tables and queues outlive a crashed Lambda; here moto plays
them in a server of its own, and `beacon local --aws-endpoint` (gateway,
handlers, event-source pollers) is killed while shoppers are still sending and
a stream consumer is in the middle of a batch. The restarted stack redoes that
batch, as Lambda retries one, and goes on. Afterwards the ledger must add up:
every event sent is in the stream or in failed events, consent judged each,
identity resolved each forwarded one, and the profiles applied each exactly
once (a lost event or a double-applied one both break it).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cli.demo import ledger_problems
from cli.observe import observe
from infra.local.aws import LocalAws, moto_server
from infra.local.checkpoints import table_name
from infra.topology import ResourceNames
from simulator.sender import SimulationReport
from simulator.shoppers import Simulator

from .conftest import free_port, start_beacon, stop_beacon, wait_until_ready

NAMES = ResourceNames()
# The consumers that write graphs and profiles: the kill lands in one of their batches
# (consent, upstream of both, is usually mid-batch too).
WRITERS = ("identity/", "segments/")


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with moto_server("127.0.0.1", free_port()) as running:
        yield running


def beacon_on(aws: LocalAws, port: int) -> subprocess.Popen[str]:
    process, _, _ = start_beacon("local", "--aws-endpoint", aws.endpoint, port=port)
    wait_until_ready(process)
    # Keep reading its console so a chatty process never blocks on a full pipe.
    threading.Thread(target=lambda: process.stdout and process.stdout.read(), daemon=True).start()
    return process


def batches_in_flight(aws: LocalAws) -> list[str]:
    """The event-source mappings that are in the middle of an invocation."""
    items = aws.client("dynamodb").scan(TableName=table_name(NAMES))["Items"]
    return [i["mapping"]["S"] for i in items if "pending" in i]


def send_in_background(url: str, report: list[SimulationReport]) -> threading.Thread:
    def send() -> None:
        report.append(Simulator(url, "local-write-key", "local-server-write-key", seed=11).run(30))

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def settle(aws: LocalAws, report: SimulationReport, timeout_s: float = 180) -> list[str]:
    """The ledger's problems once it adds up, or as they stand when time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        problems = ledger_problems(report, observe(aws, NAMES))
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(2)


def test_a_stack_killed_mid_batch_and_restarted_loses_nothing_and_applies_nothing_twice(
    aws: LocalAws,
) -> None:
    port = free_port()
    first = beacon_on(aws, port)
    report: list[SimulationReport] = []
    sender = send_in_background(f"http://127.0.0.1:{port}", report)

    killed_during: list[str] = []
    deadline = time.monotonic() + 120
    while not killed_during and time.monotonic() < deadline and sender.is_alive():
        killed_during = [m for m in batches_in_flight(aws) if m.startswith(WRITERS)]
        if killed_during:
            first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert killed_during, "no consumer was ever caught mid-batch"
    assert sender.is_alive(), "the shoppers should still be sending when the stack dies"

    second = beacon_on(aws, port)  # the shoppers' clients retry until it answers
    try:
        sender.join(timeout=180)
        assert report, "the simulator gave up"
        assert report[0].units_resent > 0  # the kill cut requests off
        problems = settle(aws, report[0])
        assert problems == [], f"killed during {killed_during}: {problems}"
        outcome: Any = observe(aws, NAMES)
        assert outcome.profiles.events_applied > 50
        assert batches_in_flight(aws) == []  # the redone batches finished
    finally:
        stop_beacon(second)
