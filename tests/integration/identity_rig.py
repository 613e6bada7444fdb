"""A rig for the identity Lambda on moto: the real handler, Kinesis-shaped events.

Builds the identity row's resources from the wiring table (the identity table,
the `consented` and `resolved` streams, the failed-events bucket), points the
handler at them through its environment, and hooks the handler's own cached
boto3 clients (`functions.shared.dal.clients.client`) with botocore
`before-call` handlers that count DynamoDB and Kinesis calls and, where a test
asks, answer instead of moto (throttling, refused records). Everything is read
back with unhooked clients.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from functions.identity import handler
from functions.shared.commands import LinkProfiles
from functions.shared.dal import clients
from functions.shared.dal.dynamo import from_item
from functions.shared.dal.identity_store import profile_from_item
from functions.shared.events import CanonicalEvent
from functions.shared.identity_records import Profile
from functions.shared.resolved import ProfileMerged, ResolvedEvent, parse_record
from infra.local.aws import table_definition
from infra.topology import TOPOLOGY, ResourceNames
from tests.integration.aws_helpers import REGION, create_bucket, create_stream, read_stream

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "beacon.yaml"
SHARD = "shardId-000000000000"
OTHER_SHARD = "shardId-000000000001"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# A fault hook: given the operation's wire request, answer instead of moto (or None: pass).
Fault = Callable[[dict[str, Any]], dict[str, Any] | None]
Item = CanonicalEvent | LinkProfiles | bytes


class FakeContext:
    """The parts of Lambda's context object the handler and Powertools read."""

    function_name = "identity"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:identity"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())


# --- events ------------------------------------------------------------------


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def event(
    minute: int,
    *,
    anon: str | None = None,
    user: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    traits: dict[str, Any] | None = None,
    kind: str = "track",
    name: str = "Product Viewed",
    message_id: str | None = None,
) -> CanonicalEvent:
    """A canonical Segment event `minute` minutes after T0 (identify carries traits)."""
    stamp = at(minute)
    fields: dict[str, Any] = {
        "messageId": message_id or f"msg-{uuid.uuid4()}",
        "type": kind,
        "anonymousId": anon,
        "userId": user,
        "context": {},
        "source": {"name": "web", "protocol": "segment"},
        "timestamp": stamp,
        "receivedAt": stamp,
    }
    if kind == "track":
        fields["event"] = name
        fields["properties"] = {"product_id": f"sku-{minute}"}
    carried = dict(traits or {})
    if email is not None:
        carried["email"] = email
    if phone is not None:
        carried["phone"] = phone
    if carried:
        if kind == "identify":
            fields["traits"] = carried
        else:
            fields["context"]["traits"] = carried
    return CanonicalEvent.model_validate(fields)


def identify(minute: int, **who: Any) -> CanonicalEvent:
    return event(minute, kind="identify", **who)


def link(a: str, b: str, minute: int = 60) -> LinkProfiles:
    return LinkProfiles(command_id=f"link-{uuid.uuid4()}", a=a, b=b, at=at(minute))


def encoded(item: Item) -> tuple[bytes, str]:
    """(data, partition key) as the consented stream carries the item."""
    if isinstance(item, CanonicalEvent):
        return item.to_json().encode(), item.partition_key
    if isinstance(item, LinkProfiles):
        return item.to_json(), item.a
    return item, "unknown"


# --- the rig -----------------------------------------------------------------


@dataclass
class IdentityRig:
    names: ResourceNames
    kinesis: Any  # unhooked clients, for reading back and for setting up
    s3: Any
    raw_dynamodb: Any
    calls: Counter[str] = field(default_factory=Counter)  # DynamoDB operation -> calls
    kinesis_calls: Counter[str] = field(default_factory=Counter)
    faults: dict[str, Fault] = field(default_factory=dict)  # operation -> fault
    next_sequence: int = 49_700_000_000_000_000_000_000

    # --- delivering -------------------------------------------------------------

    def batch(self, items: Sequence[Item], shard: str = SHARD) -> dict[str, Any]:
        """A Kinesis event as Lambda delivers it; raw bytes stand for a malformed record."""
        records = []
        for item in items:
            data, partition_key = encoded(item)
            self.next_sequence += 1
            records.append(self._record(shard, str(self.next_sequence), partition_key, data))
        return {"Records": records}

    def _record(self, shard: str, sequence: str, partition_key: str, data: bytes) -> dict[str, Any]:
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": partition_key,
                "sequenceNumber": sequence,
                "data": base64.b64encode(data).decode(),
                "approximateArrivalTimestamp": T0.timestamp(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard}:{sequence}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::000000000000:role/local",
            "awsRegion": REGION,
            "eventSourceARN": (
                f"arn:aws:kinesis:{REGION}:000000000000:stream/{self.names.stream('consented')}"
            ),
        }

    def via_stream(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        """Put `items` on the consented stream and read them back: one Kinesis event per
        shard that received any (as the event-source mapping would deliver them)."""
        stream = self.names.stream("consented")
        before = {shard: len(rs) for shard, rs in read_stream(self.kinesis, stream).items()}
        for item in items:
            data, partition_key = encoded(item)
            self.kinesis.put_record(StreamName=stream, Data=data, PartitionKey=partition_key)
        events = []
        for shard, records in read_stream(self.kinesis, stream).items():
            fresh = records[before.get(shard, 0) :]
            if fresh:
                events.append(
                    {
                        "Records": [
                            self._record(shard, r["SequenceNumber"], r["PartitionKey"], r["Data"])
                            for r in fresh
                        ]
                    }
                )
        return events

    def deliver(self, kinesis_event: dict[str, Any]) -> list[str]:
        """Invoke the handler; the sequence numbers it reported as failed."""
        answer = handler.lambda_handler(kinesis_event, FakeContext())
        return [f["itemIdentifier"] for f in answer["batchItemFailures"]]

    def deliver_ok(self, kinesis_event: dict[str, Any]) -> None:
        assert self.deliver(kinesis_event) == []

    # --- reading back: the resolved stream ------------------------------------

    def resolved_by_shard(self) -> dict[str, list[tuple[str, ResolvedEvent | ProfileMerged]]]:
        """(partition key, record) per shard of `resolved`, each shard in order."""
        stream = self.names.stream("resolved")
        return {
            shard: [(r["PartitionKey"], parse_record(r["Data"])) for r in records]
            for shard, records in read_stream(self.kinesis, stream).items()
        }

    def mark(self) -> dict[str, int]:
        """How many records each shard of `resolved` holds now (see `resolved_after`)."""
        return {shard: len(records) for shard, records in self.resolved_by_shard().items()}

    def resolved_after(
        self, mark: dict[str, int]
    ) -> list[tuple[str, ResolvedEvent | ProfileMerged]]:
        """The records put on `resolved` since `mark` was taken."""
        return [
            pair
            for shard, records in self.resolved_by_shard().items()
            for pair in records[mark.get(shard, 0) :]
        ]

    def resolved(self) -> list[tuple[str, ResolvedEvent | ProfileMerged]]:
        return [pair for records in self.resolved_by_shard().values() for pair in records]

    def resolved_events(self) -> list[tuple[str, ResolvedEvent]]:
        return [(k, r) for k, r in self.resolved() if isinstance(r, ResolvedEvent)]

    def merged_records(self) -> list[tuple[str, ProfileMerged]]:
        return [(k, r) for k, r in self.resolved() if isinstance(r, ProfileMerged)]

    def resolved_ids(self) -> Counter[str]:
        return Counter(r.event.message_id for _, r in self.resolved_events())

    def profile_of_message(self, message_id: str) -> set[str]:
        return {r.profile_id for _, r in self.resolved_events() if r.event.message_id == message_id}

    # --- reading back: the identity table ---------------------------------------

    def items(self) -> list[dict[str, Any]]:
        """Every item of the identity table, deserialized, in key order."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.names.table("identity")}
        while True:
            page = self.raw_dynamodb.scan(**kwargs)
            items += [from_item(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(items, key=lambda i: (i["pk"], i["sk"]))

    def nodes(self) -> dict[str, str]:
        """identifier (`type:value`) -> profile id, as stored."""
        return {
            str(i["pk"]).removeprefix("id#"): str(i["profile_id"])
            for i in self.items()
            if i["sk"] == "node"
        }

    def profiles(self) -> dict[str, Profile]:
        return {
            p.profile_id: p
            for p in (profile_from_item(i) for i in self.items() if i["sk"] == "meta")
        }

    def live_profiles(self) -> dict[str, Profile]:
        return {pid: p for pid, p in self.profiles().items() if not p.merged_into}

    def audit(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if str(i["sk"]).startswith("merge#")]

    def holders(self, identifier: str) -> list[str]:
        """Live profiles whose stored identifiers include `identifier` (`type:value`)."""
        kind, _, value = identifier.partition(":")
        return sorted(
            pid for pid, p in self.live_profiles().items() if value in p.identifiers.get(kind, [])
        )

    def failed_event_keys(self) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.names.bucket("failed-events"))
        return [o["Key"] for o in answer.get("Contents", [])]

    # --- hooks ----------------------------------------------------------------

    def on_dynamodb(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.calls[model.name] += 1
        return self._fault(model.name, params)

    def on_kinesis(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.kinesis_calls[model.name] += 1
        return self._fault(f"kinesis:{model.name}", params)

    def _fault(self, name: str, params: dict[str, Any]) -> Any:
        fault = self.faults.get(name)
        if fault is None:
            return None
        answer = fault(json.loads(params["body"]))
        if answer is None:
            return None
        status = 400 if "Error" in answer else 200  # an error answer raises a ClientError
        return SimpleNamespace(status_code=status, headers={}), answer

    @property
    def graph_writes(self) -> int:
        return sum(self.calls[op] for op in ("PutItem", "UpdateItem", "BatchWriteItem"))


@contextmanager
def identity_rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityRig]:
    """The rig, inside an active moto mock (the `mocked_aws` fixture)."""
    names = ResourceNames()
    for name, value in TOPOLOGY.environment_for(TOPOLOGY.function("identity"), names).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BEACON_CONFIG_FILE", str(CONFIG))
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "identity")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_definition(TOPOLOGY.table("identity"), names.table("identity")))
    kinesis = boto3.client("kinesis", region_name=REGION)
    for logical in ("consented", "resolved"):
        create_stream(kinesis, names, logical)
    s3 = boto3.client("s3", region_name=REGION)
    create_bucket(s3, names, "failed-events")

    # A fresh container: clients and the step are built again inside the mock.
    clients.client.cache_clear()
    handler.identity_step.cache_clear()
    rig = IdentityRig(names=names, kinesis=kinesis, s3=s3, raw_dynamodb=dynamodb)
    clients.client("dynamodb").meta.events.register("before-call.dynamodb", rig.on_dynamodb)
    clients.client("kinesis").meta.events.register("before-call.kinesis", rig.on_kinesis)
    step = handler.identity_step()
    step.graph_store.table.sleep = lambda _s: None  # type: ignore[attr-defined]
    step.resolved.sleep = lambda _s: None  # type: ignore[attr-defined]
    try:
        yield rig
    finally:
        handler.identity_step.cache_clear()
        clients.client.cache_clear()


# --- faults ------------------------------------------------------------------


def throttle_reads(times: int, after: int = 0) -> Fault:
    """BatchGetItem answers every key unprocessed, `times` calls in a row, once `after`
    calls have gone through."""
    skip, left = [after], [times]

    def fault(request: dict[str, Any]) -> dict[str, Any] | None:
        if skip[0] > 0:
            skip[0] -= 1
            return None
        if left[0] <= 0:
            return None
        left[0] -= 1
        return {
            "Responses": {table: [] for table in request["RequestItems"]},
            "UnprocessedKeys": request["RequestItems"],
        }

    return fault


def throttle_puts(times: int, after: int = 0) -> Fault:
    """PutItem answers ProvisionedThroughputExceededException, `times` calls in a row,
    once `after` calls have gone through."""
    skip, left = [after], [times]

    def fault(_request: dict[str, Any]) -> dict[str, Any] | None:
        if skip[0] > 0:
            skip[0] -= 1
            return None
        if left[0] <= 0:
            return None
        left[0] -= 1
        return {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    return fault


def refuse_records(times: int) -> Fault:
    """PutRecords answers every record with an ErrorCode, `times` calls in a row."""
    left = [times]

    def fault(request: dict[str, Any]) -> dict[str, Any] | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        refused = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"}
        records = request["Records"]
        return {"FailedRecordCount": len(records), "Records": [refused for _ in records]}

    return fault
