"""Wake a local poller when its stream or queue was just written.

Lambda's event-source mappings poll; the local pollers did too, every 50-100 ms
per shard, which kept moto busy answering empty GetRecords calls (about 80 a
second for 8 shards, idle) and still added up to 100 ms per hop. The handlers'
own boto3 clients (functions/shared/dal/clients.py) ring this bell after every
PutRecords or SendMessage(Batch), so a poller waits on the bell instead of
sleeping: it reads as soon as something was written, and once a second while
nothing is, which still finds records written by anyone else (another process
on `--aws-endpoint`, a test's own client).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

WRITES = {
    "kinesis": ("PutRecords", "PutRecord"),
    "sqs": ("SendMessage", "SendMessageBatch"),
}


class Doorbell:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._rings: Counter[str] = Counter()

    def rung(self, name: str) -> int:
        """How often `name` was rung so far: pass it to `wait` to miss no ring."""
        with self._condition:
            return self._rings[name]

    def ring(self, name: str) -> None:
        with self._condition:
            self._rings[name] += 1
            self._condition.notify_all()

    def ring_all(self) -> None:
        """Wake every waiting poller (stopping, or a drain check that wants a read now)."""
        with self._condition:
            for name in list(self._rings):
                self._rings[name] += 1
            self._rings["*"] += 1
            self._condition.notify_all()

    def wait(self, name: str | None, since: int, timeout_s: float) -> bool:
        """Until `name` (or everything) is rung after `since` rings, or the timeout;
        with no name, only `ring_all` ends the wait early."""
        everything = self.rung("*")
        with self._condition:
            return self._condition.wait_for(
                lambda: (
                    (name is not None and self._rings[name] != since)
                    or self._rings["*"] != everything
                ),
                timeout_s,
            )

    def listen_to(self, client: Any) -> None:
        """Ring after every write this boto3 client makes to a stream or queue."""
        service = client.meta.service_model.service_name
        self._register(client.meta.events, {service: WRITES.get(service, ())})

    def listen_to_session(self, session: Any) -> None:
        """Ring after every write to a stream or queue by the clients this boto3 session
        makes from now on (a function's role session in the local stack)."""
        self._register(session.events, WRITES)

    def _register(self, events: Any, writes: Mapping[str, tuple[str, ...]]) -> None:
        for service, operations in writes.items():
            for operation in operations:
                events.register(f"before-parameter-build.{service}.{operation}", _note_target)
                events.register(f"after-call.{service}.{operation}", self._after_write)

    def _after_write(self, context: dict[str, Any], **_: Any) -> None:
        target = context.get(_TARGET)
        if isinstance(target, str):
            self.ring(resource_name(target))


_TARGET = "beacon_doorbell_target"


def _note_target(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # after-call sees the request context but not the parameters: carry the target over.
    context[_TARGET] = params.get("StreamName") or params.get("StreamARN") or params.get("QueueUrl")


def resource_name(target: str) -> str:
    """A stream's or queue's name from its name, ARN or queue URL."""
    return target.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
