"""EventBridge schedules, locally: a thread per schedule invoking the real handler
with the event shape EventBridge sends ("Scheduled Event")."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from functions.shared.observability import logger
from infra.local.invoke import LocalFunction
from infra.topology import Schedule


def scheduled_event(function_name: str, at: datetime | None = None) -> dict[str, Any]:
    moment = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": moment,
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:000000000000:rule/{function_name}-schedule"],
        "detail": {},
    }


class LocalSchedule:
    def __init__(self, function: LocalFunction, schedule: Schedule) -> None:
        self.function = function
        self.schedule = schedule
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"schedule-{function.spec.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def fire(self) -> Any:
        """One invocation now (tests and the demo call it to avoid waiting)."""
        self.runs += 1
        return self.function.invoke(scheduled_event(self.function.spec.name))

    def _run(self) -> None:
        while not self._stop.wait(self.schedule.local_every_s):
            try:
                self.fire()
            except Exception:  # EventBridge would log it and fire again next time
                logger.exception(
                    "scheduled invocation failed", extra={"fn": self.function.spec.name}
                )
