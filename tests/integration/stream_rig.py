"""What the consent and identity rigs share: a Kinesis-fed Lambda on moto in-process.

`StreamRig` builds Kinesis events as Lambda delivers them from the function's
source stream (`infra.local.pollers.kinesis_lambda_event`), invokes the real
handler with them, and hooks the handler's own cached boto3 clients
(`functions.shared.dal.clients.client`) with botocore `before-call` handlers
that count DynamoDB and Kinesis calls and, where a test asks, answer instead of
moto (a `Fault`). Its clients, unhooked, are for setting up and reading back.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Protocol, Self, TypeVar

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from functions.shared.commands import LinkProfiles
from functions.shared.dal import clients
from functions.shared.events import CanonicalEvent
from infra.local.invoke import LocalFunction
from infra.local.pollers import ACCOUNT, kinesis_lambda_event
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import REGION

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "beacon.yaml"
SHARD = "shardId-000000000000"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the tests' clock, and their records' arrival

# A fault hook: given the operation's wire request, answer instead of moto (or None: pass).
Fault = Callable[[dict[str, Any]], dict[str, Any] | None]
Item = CanonicalEvent | LinkProfiles | bytes
Step = TypeVar("Step")
Step_co = TypeVar("Step_co", covariant=True)


class CachedStep(Protocol[Step_co]):
    """A handler's `functools.cache`d step factory (`handler.consent_step`, ...)."""

    def __call__(self) -> Step_co: ...

    def cache_clear(self) -> None: ...


def encoded(item: Item) -> tuple[bytes, str]:
    """(data, partition key) as a stream carries the item; raw bytes stand for a
    malformed record."""
    if isinstance(item, CanonicalEvent):
        return item.to_json().encode(), item.partition_key
    if isinstance(item, LinkProfiles):
        return item.to_json(), item.a
    return item, "unknown"


def use_function_environment(
    monkeypatch: pytest.MonkeyPatch, function: str, names: ResourceNames
) -> None:
    """`function`'s Lambda environment: its resources' names, the config, Powertools quiet."""
    for name, value in TOPOLOGY.environment_for(TOPOLOGY.function(function), names).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BEACON_CONFIG_FILE", str(CONFIG))
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", function)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@dataclass
class StreamRig:
    function: ClassVar[str]  # the wiring table's name of the function under test
    names: ResourceNames
    kinesis: Any  # unhooked clients, for setting up and reading back
    s3: Any
    raw_dynamodb: Any  # also writes what a fault lets through
    calls: Counter[str] = field(default_factory=Counter)  # DynamoDB operation -> calls
    kinesis_calls: Counter[str] = field(default_factory=Counter)
    faults: dict[str, Fault] = field(default_factory=dict)  # operation -> fault
    next_sequence: int = 49_000_000_000_000_000_000_000

    @classmethod
    def on_moto(cls, names: ResourceNames) -> Self:
        """The rig with fresh clients (inside an active moto mock)."""
        return cls(
            names=names,
            kinesis=boto3.client("kinesis", region_name=REGION),
            s3=boto3.client("s3", region_name=REGION),
            raw_dynamodb=boto3.client("dynamodb", region_name=REGION),
        )

    @contextmanager
    def running(self, step: CachedStep[Step]) -> Iterator[Step]:
        """A fresh container: clients, cached secrets and the step built again inside the
        mock, the rig's hooks on the handler's own clients; all dropped again after."""
        _drop_caches(step)
        clients.client("dynamodb").meta.events.register("before-call.dynamodb", self.on_dynamodb)
        clients.client("kinesis").meta.events.register("before-call.kinesis", self.on_kinesis)
        try:
            yield step()
        finally:
            _drop_caches(step)

    # --- delivering -------------------------------------------------------------

    def batch(self, items: Sequence[Item], shard: str = SHARD) -> dict[str, Any]:
        """A Kinesis event as Lambda delivers it; raw bytes stand for a malformed record."""
        records = []
        for item in items:
            data, partition_key = encoded(item)
            self.next_sequence += 1
            records.append(
                {
                    "PartitionKey": partition_key,
                    "SequenceNumber": str(self.next_sequence),
                    "Data": data,
                    "ApproximateArrivalTimestamp": T0,
                }
            )
        return self.kinesis_event(records, shard)

    def kinesis_event(self, records: list[dict[str, Any]], shard: str) -> dict[str, Any]:
        """The Kinesis event for these GetRecords entries of the source stream's `shard`."""
        stream = self.names.stream(TOPOLOGY.function(self.function).kinesis_sources[0].stream)
        arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}"
        return kinesis_lambda_event(records, shard, arn, REGION)

    def deliver(self, kinesis_event: dict[str, Any]) -> list[str]:
        """Invoke the handler; the sequence numbers it reported as failed."""
        answer = LocalFunction(TOPOLOGY.function(self.function)).invoke(kinesis_event)
        return [f["itemIdentifier"] for f in answer["batchItemFailures"]]

    def deliver_ok(self, kinesis_event: dict[str, Any]) -> None:
        assert self.deliver(kinesis_event) == []

    # --- hooks ----------------------------------------------------------------

    def on_dynamodb(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.calls[model.name] += 1
        return self._fault(model.name, params)

    def on_kinesis(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.kinesis_calls[model.name] += 1
        return self._fault(f"kinesis:{model.name}", params)

    def _fault(self, name: str, params: dict[str, Any]) -> Any:
        return answer_with(self.faults.get(name), params)


def answer_with(fault: Fault | None, params: dict[str, Any]) -> Any:
    """What a before-call hook returns: None lets the call reach moto; otherwise the
    fault's answer as botocore's (response, parsed) pair."""
    answer = None if fault is None else fault(json.loads(params["body"]))
    if answer is None:
        return None
    status = 400 if "Error" in answer else 200  # an error answer raises a ClientError
    return SimpleNamespace(status_code=status, headers={}), answer


def _drop_caches(step: CachedStep[Any]) -> None:
    clients.client.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    step.cache_clear()


# --- faults ------------------------------------------------------------------


def on_calls(times: int, answer: Fault, after: int = 0) -> Fault:
    """`answer` instead of moto, `times` calls in a row, once `after` calls have gone
    through (a call `answer` lets pass with None does not count)."""
    skip, left = [after], [times]

    def fault(request: dict[str, Any]) -> dict[str, Any] | None:
        if skip[0] > 0:
            skip[0] -= 1
            return None
        if left[0] <= 0:
            return None
        answered = answer(request)
        if answered is not None:
            left[0] -= 1
        return answered

    return fault


def throttle_reads(times: int, after: int = 0) -> Fault:
    """BatchGetItem answers every key unprocessed, `times` calls in a row, once `after`
    calls have gone through."""
    return on_calls(
        times,
        lambda request: {
            "Responses": {table: [] for table in request["RequestItems"]},
            "UnprocessedKeys": request["RequestItems"],
        },
        after,
    )


def throttle_puts(times: int, after: int = 0) -> Fault:
    """PutItem answers ProvisionedThroughputExceededException, `times` calls in a row,
    once `after` calls have gone through."""
    return on_calls(
        times,
        lambda _request: {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        after,
    )


def refuse_records(times: int) -> Fault:
    """PutRecords answers every record with an ErrorCode, `times` calls in a row."""
    refused = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"}
    return on_calls(
        times,
        lambda request: {
            "FailedRecordCount": len(request["Records"]),
            "Records": [refused for _ in request["Records"]],
        },
    )


# --- any other client ----------------------------------------------------------


def hook_client(service: str, faults: dict[str, Fault], calls: Counter[str]) -> None:
    """Count the calls of the functions' cached `service` client (`clients.client`) in
    `calls` as `"<service>:<Operation>"` (`"sqs:SendMessageBatch"`), and answer with
    `faults` under the same key instead of moto. Hook after the caches were last dropped:
    a new cached client starts unhooked."""
    hooked = clients.client(service)

    def on_call(model: Any, params: dict[str, Any], **_: Any) -> Any:
        name = f"{service}:{model.name}"
        calls[name] += 1
        return answer_with(faults.get(name), params)

    event = f"before-call.{hooked.meta.service_model.service_id.hyphenize()}"
    hooked.meta.events.register(event, on_call)


def fail_calls(times: int, code: str = "ThrottlingException", after: int = 0) -> Fault:
    """Any operation answers the error `code`, `times` calls in a row, once `after` calls
    have gone through."""
    error = {
        "Error": {"Code": code, "Message": "injected"},
        "ResponseMetadata": {"HTTPStatusCode": 500 if "Internal" in code else 400},
    }
    return on_calls(times, lambda _request: error, after)
