"""A rig for the identity Lambda on moto: the real handler, Kinesis-shaped events.

Builds the identity row's resources from the wiring table (the identity table,
the `consented` and `resolved` streams, the failed-events bucket), points the
handler at them through its environment, and counts (and, where a test asks,
fakes: throttling, refused records) its DynamoDB and Kinesis calls with the
hooks of `stream_rig.StreamRig`. Everything is read back with unhooked clients.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.identity import handler
from functions.shared.commands import LinkProfiles
from functions.shared.config import load_config
from functions.shared.dal.dynamo import from_item
from functions.shared.dal.identity_store import profile_from_item
from functions.shared.events import CanonicalEvent
from functions.shared.identity_records import Profile
from functions.shared.resolved import ProfileMerged, ResolvedEvent, parse_record
from infra.topology import ResourceNames
from tests.integration.aws_helpers import (
    REGION,
    create_bucket,
    create_stream,
    create_table,
    read_stream,
    scan_table,
)
from tests.integration.stream_rig import (
    CONFIG,
    T0,
    Item,
    StreamRig,
    encoded,
    use_function_environment,
)
from tests.integration.stream_rig import SHARD as SHARD  # the tests import it from here
from tests.integration.stream_rig import refuse_records as refuse_records
from tests.integration.stream_rig import throttle_puts as throttle_puts
from tests.integration.stream_rig import throttle_reads as throttle_reads

OTHER_SHARD = "shardId-000000000001"
SALT = "integration-test-identifier-salt"  # the consent step's, for erased identifiers


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
    denied: tuple[str, ...] = (),
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
    if denied:  # the consent step's stamp: these categories are refused
        fields["consent"] = {"granted": ["necessary"], "denied": list(denied)}
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


# --- the rig -----------------------------------------------------------------


@dataclass
class IdentityRig(StreamRig):
    function = "identity"
    next_sequence: int = 49_700_000_000_000_000_000_000

    # --- delivering -------------------------------------------------------------

    def via_stream(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        """Put `items` on the consented stream and read them back: one Kinesis event per
        shard that received any (as the event-source mapping would deliver them)."""
        stream = self.names.stream("consented")
        before = {shard: len(rs) for shard, rs in read_stream(self.kinesis, stream).items()}
        for item in items:
            data, partition_key = encoded(item)
            self.kinesis.put_record(StreamName=stream, Data=data, PartitionKey=partition_key)
        return [
            self.kinesis_event(fresh, shard)
            for shard, records in read_stream(self.kinesis, stream).items()
            if (fresh := records[before.get(shard, 0) :])
        ]

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
        items = scan_table(self.raw_dynamodb, self.names.table("identity"))
        return sorted((from_item(i) for i in items), key=lambda i: (i["pk"], i["sk"]))

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

    @property
    def graph_writes(self) -> int:
        return sum(self.calls[op] for op in ("PutItem", "UpdateItem", "BatchWriteItem"))


@contextmanager
def identity_rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityRig]:
    """The rig, inside an active moto mock (the `mocked_aws` fixture)."""
    names = ResourceNames()
    use_function_environment(monkeypatch, "identity", names)
    rig = IdentityRig.on_moto(names)
    for table in ("identity", "counters"):
        create_table(rig.raw_dynamodb, names, table)
    for logical in ("consented", "resolved"):
        create_stream(rig.kinesis, names, logical)
    create_bucket(rig.s3, names, "failed-events")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=load_config(CONFIG).consent.identifier_salt_secret, SecretString=SALT
    )
    with rig.running(handler.identity_step) as step:
        step.graph_store.table.sleep = lambda _s: None  # type: ignore[attr-defined]
        step.resolved.sleep = lambda _s: None  # type: ignore[attr-defined]
        yield rig
