"""Serving in the foreground until Ctrl-C (or SIGTERM): `beacon local`, `demo`, `dashboard`."""

from __future__ import annotations

import signal
import threading
from typing import Any


def wait_for_interrupt() -> None:
    stop = threading.Event()

    def handle(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stop.wait(0.5):
        pass
