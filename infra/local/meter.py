"""What each function of the local stack costs, measured on the real code path.

`Meter` wraps two seams for the length of a `with` block:

* `LocalFunction.handler`: each invocation's wall time inside the function, per function (what
  Lambda bills, less the parts moto cannot stand in for);
* botocore's `BaseClient._make_api_call`: every AWS call, who made it (the
  function being invoked on this thread, or the local runtime's own pollers and
  checkpoints), how long it waited, and the units it moves: DynamoDB items read
  and write units (a transactional write is two), Kinesis records, SQS messages.

A handler's own time is its wall time less the time it waited on AWS; on AWS
the wait is replaced by the documented latency of each call (bench/cost.py).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

RUNTIME = "local runtime"  # pollers, checkpoints: what Lambda's event-source mappings do


@dataclass
class FunctionCost:
    invocations: int = 0
    wall_s: float = 0.0
    aws_wait_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)  # "dynamodb.PutItem" -> n
    units: Counter[str] = field(default_factory=Counter)  # "dynamodb_write" -> n, by table too
    durations_ms: list[float] = field(default_factory=list)
    records: int = 0  # stream records or queue messages handed to the function

    @property
    def own_s(self) -> float:
        return max(self.wall_s - self.aws_wait_s, 0.0)


def units_of(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> Counter[str]:
    """The billing units of one call: DynamoDB items read and write units (per table
    as `dynamodb_write:<table>` as well), Kinesis records, SQS messages."""
    units: Counter[str] = Counter()

    def write(table: str, n: int) -> None:
        units["dynamodb_write"] += n
        units[f"dynamodb_write:{table}"] += n

    if operation == "BatchGetItem":
        for table, found in (parsed.get("Responses") or {}).items():
            units["dynamodb_read"] += len(found)
            units[f"dynamodb_read:{table}"] += len(found)
    elif operation in ("GetItem",):
        units["dynamodb_read"] += 1 if parsed.get("Item") else 0
    elif operation in ("Query", "Scan"):
        units["dynamodb_read"] += int(parsed.get("Count", 0))
        units[f"dynamodb_read:{params.get('TableName')}"] += int(parsed.get("Count", 0))
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            write(table, len(requests))
    elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
        write(params["TableName"], 1)
    elif operation == "TransactWriteItems":
        for item in params["TransactItems"]:
            (request,) = item.values()
            if "TableName" in request:
                write(request["TableName"], 2)
    elif operation == "PutRecords":
        units["kinesis_records"] += len(params["Records"])
        units[f"kinesis_records:{params.get('StreamName')}"] += len(params["Records"])
    elif operation == "PutRecord":
        units["kinesis_records"] += 1
    elif operation == "SendMessageBatch":
        units["sqs_messages"] += len(params["Entries"])
    elif operation == "SendMessage":
        units["sqs_messages"] += 1
    return units


class Meter:
    def __init__(self) -> None:
        self.by_function: dict[str, FunctionCost] = defaultdict(FunctionCost)
        # A context variable, not a thread-local: writes a handler runs side by side
        # on a pool (dal/dynamo.side_by_side) carry its context, so they count as its.
        self._current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "function", default=None
        )
        self._lock = threading.Lock()

    def total(self, unit: str) -> int:
        return sum(cost.units[unit] for name, cost in self.by_function.items() if name != RUNTIME)

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        from botocore.client import BaseClient

        from infra.local.invoke import LocalFunction

        meter = self
        original_call = BaseClient._make_api_call
        original_handler = LocalFunction.handler

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            parsed: dict[str, Any] = {}
            try:
                parsed = original_call(client, operation, params)
                return parsed
            finally:
                waited = time.perf_counter() - started
                service = client.meta.service_model.service_name
                who = meter._current.get() or RUNTIME
                with meter._lock:
                    cost = meter.by_function[who]
                    cost.calls[f"{service}.{operation}"] += 1
                    cost.aws_wait_s += waited
                    cost.units.update(units_of(operation, params, parsed or {}))

        def timed_handler(function: Any) -> Any:
            # Timed inside the function's one-invocation-at-a-time lock: queueing
            # for a busy "container" is not billed time.
            handler = original_handler.fget(function)  # type: ignore[attr-defined]

            def run(event: dict[str, Any], context: Any) -> Any:
                started = time.perf_counter()
                token = meter._current.set(function.spec.name)
                try:
                    return handler(event, context)
                finally:
                    meter._current.reset(token)
                    took = time.perf_counter() - started
                    with meter._lock:
                        cost = meter.by_function[function.spec.name]
                        cost.invocations += 1
                        cost.wall_s += took
                        cost.durations_ms.append(took * 1000)
                        records = event.get("Records") if isinstance(event, dict) else None
                        cost.records += len(records) if isinstance(records, list) else 1

            return run

        BaseClient._make_api_call = make_api_call
        LocalFunction.handler = property(timed_handler)  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            BaseClient._make_api_call = original_call
            LocalFunction.handler = original_handler  # type: ignore[method-assign]
