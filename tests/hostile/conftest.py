"""One `beacon local` for the hostile tests: a subprocess on free ports, as a user runs it.

A subprocess rather than the stack in this process: the tests send what no
well-behaved client sends, and the stack's environment and cached clients
must not outlive them in the test worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import RunningStack, start_beacon, stop_beacon, wait_until_ready


@pytest.fixture(scope="package")
def stack() -> Iterator[RunningStack]:
    process, port, aws_port = start_beacon("local")
    wait_until_ready(process)
    try:
        yield RunningStack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}", process)
    finally:
        stop_beacon(process)
