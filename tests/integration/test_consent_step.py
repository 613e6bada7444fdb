"""The consent Lambda end to end on moto: real handler, real Kinesis event shapes.

Each test drives `functions.consent.handler.lambda_handler` with Kinesis
events as Lambda delivers them (base64 data, sequence numbers, partition keys,
`shardId-...:<seq>` event ids), with the consent and counters tables built
from the wiring table, the consented stream, the failed-events bucket and the
identifier salt secret on moto in-process. DynamoDB and Kinesis calls are
counted (and, where a test asks, throttled) with botocore `before-call` hooks
on the very clients the handler uses.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.consent import handler
from functions.consent.decisions import CONSENT_DENIED, CONSENT_UNKNOWN
from functions.consent.step import FORWARDED
from functions.shared.config import load_config
from functions.shared.consent_records import ConsentState
from functions.shared.dal.consent_store import ConsentStore
from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.events import CanonicalEvent
from functions.shared.identifiers import Identifier
from functions.shared.stream_batch import MALFORMED
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
    Fault,
    StreamRig,
    on_calls,
    refuse_records,
    throttle_reads,
    use_function_environment,
)

SALT = "integration-test-identifier-salt"
PREFERENCE_UPDATED = "Segment Consent Preference Updated"


# --- events ------------------------------------------------------------------


def event(
    minute: int,
    *,
    anon: str | None = None,
    user: str | None = None,
    name: str = "Product Viewed",
    prefs: dict[str, bool] | None = None,
    email: str | None = None,
    message_id: str | None = None,
) -> CanonicalEvent:
    """A canonical Segment track event, `minute` minutes after T0."""
    at = T0 + timedelta(minutes=minute)
    fields: dict[str, Any] = {
        "messageId": message_id or f"msg-{uuid.uuid4()}",
        "type": "track",
        "event": name,
        "anonymousId": anon,
        "userId": user,
        "properties": {"product_id": f"sku-{minute}"},
        "context": {},
        "source": {"name": "web", "protocol": "segment"},
        "timestamp": at,
        "receivedAt": at,
    }
    if prefs is not None:
        fields["context"]["consent"] = {"categoryPreferences": prefs}
    if email is not None:
        fields["context"]["traits"] = {"email": email}
    return CanonicalEvent.model_validate(fields)


def preference_update(minute: int, granted: bool, **who: Any) -> CanonicalEvent:
    """Segment's consent event: personalization granted or withdrawn."""
    return event(
        minute,
        name=PREFERENCE_UPDATED,
        prefs={"personalization": granted, "analytics": granted},
        **who,
    )


def key(identifier: str) -> str:
    return Identifier.parse(identifier).hashed_key(SALT.encode())


# --- the harness -------------------------------------------------------------


@dataclass
class ConsentRig(StreamRig):
    function = "consent"
    next_sequence: int = 49_600_000_000_000_000_000_000

    @property
    def put_records_calls(self) -> int:
        return self.kinesis_calls["PutRecords"]

    # --- reading back ---------------------------------------------------------

    def consented(self) -> list[tuple[str, CanonicalEvent]]:
        """(partition key, event) of every record on the consented stream."""
        stream = self.names.stream("consented")
        return [
            (r["PartitionKey"], CanonicalEvent.model_validate_json(r["Data"]))
            for records in read_stream(self.kinesis, stream).values()
            for r in records
        ]

    def consented_ids(self) -> Counter[str]:
        return Counter(e.message_id for _, e in self.consented())

    def totals(self) -> Counter[str]:
        table = DynamoTable(self.names.table("counters"), dynamodb=self.raw_dynamodb)
        return DailyCounters(table).day_totals("consent", today())

    def store(self) -> ConsentStore:
        return ConsentStore(DynamoTable(self.names.table("consent"), dynamodb=self.raw_dynamodb))

    def records(self, identifier: str) -> tuple[ConsentState | None, list[dict[str, Any]]]:
        return self.store().records(key(identifier))

    def consent_items(self) -> list[dict[str, Any]]:
        """Every item of the consent table, in key order (states and audit entries)."""
        items = scan_table(self.raw_dynamodb, self.names.table("consent"))
        return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.fixture
def rig(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsentRig]:
    names = ResourceNames()
    use_function_environment(monkeypatch, "consent", names)
    rig = ConsentRig.on_moto(names)
    for logical in ("consent", "counters"):
        create_table(rig.raw_dynamodb, names, logical)
    create_stream(rig.kinesis, names, "consented")
    create_bucket(rig.s3, names, "failed-events")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=load_config(CONFIG).consent.identifier_salt_secret, SecretString=SALT
    )
    with rig.running(handler.consent_step) as step:
        for table in (step.states.table, step.counters.table):  # type: ignore[attr-defined]
            table.sleep = lambda _s: None  # retries back off instantly in tests
        step.consented.sleep = lambda _s: None  # type: ignore[attr-defined]
        yield rig


def throttle_writes(
    rig: ConsentRig, times: int, refuse: Callable[[str, dict[str, Any]], bool]
) -> Fault:
    """BatchWriteItem writes what `refuse(table, request)` lets through, leaves the rest
    unprocessed, `times` calls in a row (only calls that carry something to refuse)."""

    def answer(request: dict[str, Any]) -> dict[str, Any] | None:
        items = request["RequestItems"]
        refused = {t: [r for r in rs if refuse(t, r)] for t, rs in items.items()}
        refused = {t: rs for t, rs in refused.items() if rs}
        if not refused:
            return None
        allowed = {t: [r for r in rs if not refuse(t, r)] for t, rs in items.items()}
        allowed = {t: rs for t, rs in allowed.items() if rs}
        if allowed:
            rig.raw_dynamodb.batch_write_item(RequestItems=allowed)
        return {"UnprocessedItems": refused}

    return on_calls(times, answer)


def is_audit(request: dict[str, Any]) -> bool:
    return request["PutRequest"]["Item"]["sk"]["S"].startswith("audit#")


# --- what is forwarded, what is dropped, what is counted --------------------


def test_a_mixed_batch_forwards_exactly_what_was_allowed_and_counts_the_rest(
    rig: ConsentRig,
) -> None:
    # A person who consented earlier (stored state from an earlier batch).
    rig.deliver_ok(rig.batch([preference_update(0, True, user="u-known")]))
    before = rig.consented_ids()

    allowed_stored = event(10, user="u-known", anon="d-known")
    allowed_inline = event(11, anon="d-in", prefs={"personalization": True})
    denied_inline = event(12, anon="d-out", prefs={"personalization": False})
    unknown = event(13, anon="d-unknown")
    consent_event = preference_update(14, False, anon="d-withdraws")
    denied_later = event(15, anon="d-withdraws")
    batch = [allowed_stored, allowed_inline, denied_inline, unknown, consent_event, denied_later]

    rig.deliver_ok(rig.batch(batch))

    forwarded = [(k, e) for k, e in rig.consented() if e.message_id not in before]
    # Order holds per partition key (shard), not across people: compare in batch order.
    order = {e.message_id: i for i, e in enumerate(batch)}
    assert sorted((e.message_id for _, e in forwarded), key=order.__getitem__) == [
        allowed_stored.message_id,
        allowed_inline.message_id,
        consent_event.message_id,
    ]
    sent = {e.message_id: e for e in batch}
    for partition_key, stamped in forwarded:
        original = sent[stamped.message_id]
        assert partition_key == original.partition_key
        assert stamped.consent is not None
        assert stamped.model_copy(update={"consent": None}) == original
    by_id = {e.message_id: e.consent for _, e in forwarded}
    assert by_id[allowed_stored.message_id] is not None
    assert "personalization" in by_id[allowed_stored.message_id].granted
    assert "personalization" in by_id[consent_event.message_id].denied
    assert "advertising" in by_id[allowed_inline.message_id].denied  # opt-in default

    # Both batches, counted once each: forwarded + drops by reason = every event.
    assert rig.totals() == Counter({FORWARDED: 1 + 3, CONSENT_DENIED: 2, CONSENT_UNKNOWN: 1})
    assert sum(rig.totals().values()) == 1 + len(batch)


def test_consent_changing_mid_batch_applies_from_that_event_on_and_is_audited(
    rig: ConsentRig,
) -> None:
    person = {"anon": "d-mid"}
    grant = preference_update(0, True, **person)
    a = event(1, **person)
    deny = preference_update(2, False, **person)
    b, c = event(3, **person), event(4, **person)

    rig.deliver_ok(rig.batch([grant, a, deny, b, c]))

    assert [e.message_id for _, e in rig.consented()] == [
        grant.message_id,
        a.message_id,
        deny.message_id,
    ]
    assert rig.totals() == Counter({FORWARDED: 3, CONSENT_DENIED: 2})
    state, audit = rig.records("anonymous_id:d-mid")
    assert state is not None
    assert state.latest("personalization").granted is False
    assert state.latest("personalization").message_id == deny.message_id
    assert [(entry["message_id"], entry["changes"]) for entry in audit] == [
        (
            grant.message_id,
            {
                "personalization": {"from": None, "to": True},
                "analytics": {"from": None, "to": True},
            },
        ),
        (
            deny.message_id,
            {
                "personalization": {"from": True, "to": False},
                "analytics": {"from": True, "to": False},
            },
        ),
    ]


def test_a_decision_under_a_user_id_reaches_a_new_device_seen_with_it(rig: ConsentRig) -> None:
    rig.deliver_ok(rig.batch([preference_update(0, True, user="u-ana", anon="d-laptop")]))

    with_user = event(5, user="u-ana", anon="d-phone")
    phone_alone = event(6, anon="d-phone")
    stranger = event(7, anon="d-stranger")
    rig.deliver_ok(rig.batch([with_user, phone_alone, stranger]))
    later_alone = event(8, anon="d-phone")
    rig.deliver_ok(rig.batch([later_alone]))  # from the stored state, in a later batch

    forwarded = set(rig.consented_ids())
    assert {with_user.message_id, phone_alone.message_id, later_alone.message_id} <= forwarded
    assert stranger.message_id not in forwarded
    phone, audit = rig.records("anonymous_id:d-phone")
    assert phone is not None and phone.latest("personalization").granted is True
    assert key("user_id:u-ana") in phone.linked
    assert audit and audit[0]["source"].startswith("propagated: ")
    assert rig.totals() == Counter({FORWARDED: 4, CONSENT_UNKNOWN: 1})


# --- replays and faults ------------------------------------------------------


def mixed_batch() -> list[CanonicalEvent]:
    return [
        preference_update(0, True, user="u-1", anon="d-1"),
        event(1, user="u-1", anon="d-1"),
        event(2, anon="d-2", prefs={"personalization": True}),
        event(3, anon="d-3", prefs={"personalization": False}),
        event(4, anon="d-4"),
        event(5, anon="d-1", email="Ana@Example.org"),
    ]


def test_a_replayed_batch_duplicates_only_what_it_forwarded_and_writes_nothing_new(
    rig: ConsentRig,
) -> None:
    kinesis_event = rig.batch(mixed_batch())
    rig.deliver_ok(kinesis_event)
    first_ids = rig.consented_ids()
    first_items = rig.consent_items()
    first_totals = rig.totals()
    writes_before = rig.calls["BatchWriteItem"]

    rig.deliver_ok(kinesis_event)

    assert rig.consented_ids() == Counter({m: 2 * n for m, n in first_ids.items()})
    assert rig.consent_items() == first_items  # states and audit entries, unchanged
    assert (
        rig.totals()
        == first_totals
        == Counter({FORWARDED: 4, CONSENT_DENIED: 1, CONSENT_UNKNOWN: 1})
    )
    assert rig.calls["BatchWriteItem"] - writes_before == 1  # the counter item only


@pytest.mark.parametrize(
    ("first", "then"),
    [(False, True), (True, False)],
    ids=["granted-mid-batch", "withdrawn-mid-batch"],
)
def test_a_replayed_batch_with_a_consent_change_resolves_as_it_did_the_first_time(
    rig: ConsentRig, first: bool, then: bool
) -> None:
    """Lambda redelivers a whole batch (timeout, crash after commit): same decisions.

    decisions.py: "ties break on message id so replays always resolve the same
    way"; step.py: "re-applying them on the retry resolves to the same decisions".
    """
    person = {"anon": "d-replay"}
    batch = [
        preference_update(0, first, **person),
        event(1, **person),
        preference_update(2, then, **person),
        event(3, **person),
    ]
    kinesis_event = rig.batch(batch)
    rig.deliver_ok(kinesis_event)
    first_ids = rig.consented_ids()
    first_totals = rig.totals()

    rig.deliver_ok(kinesis_event)

    assert rig.totals() == first_totals
    assert set(rig.consented_ids()) == set(first_ids)  # never an event it dropped
    assert rig.consented_ids() == Counter({m: 2 * n for m, n in first_ids.items()})


def test_a_replay_rewrites_nothing_for_an_identifier_only_an_earlier_event_carried(
    rig: ConsentRig,
) -> None:
    """The email is on the identify call only; the person withdraws later in the batch.

    A replay of the batch must leave the consent table as the first pass did: no
    rewritten state, and no audit entry that dates the later withdrawal at the
    identify call under the email.
    """
    who = {"anon": "d-email", "user": "u-email"}
    identify = event(0, email="Eve@Example.org", prefs={"personalization": True}, **who)
    withdraw = preference_update(1, False, **who)
    kinesis_event = rig.batch([identify, withdraw])
    rig.deliver_ok(kinesis_event)
    first_items = rig.consent_items()
    writes_before = rig.calls["BatchWriteItem"]

    rig.deliver_ok(kinesis_event)

    _, email_audit = rig.records("email:eve@example.org")
    assert [(a["message_id"], a["changes"]) for a in email_audit] == [
        (identify.message_id, {"personalization": {"from": None, "to": True}})
    ]
    assert rig.consent_items() == first_items
    assert rig.calls["BatchWriteItem"] - writes_before == 1  # the counter item only


def test_throttled_reads_fail_the_whole_batch_and_the_redelivery_loses_nothing(
    rig: ConsentRig,
) -> None:
    batch = mixed_batch()
    kinesis_event = rig.batch(batch)
    sequences = [r["kinesis"]["sequenceNumber"] for r in kinesis_event["Records"]]
    step = handler.consent_step()
    attempts = step.states.table.max_attempts  # type: ignore[attr-defined]
    rig.faults["BatchGetItem"] = throttle_reads(attempts)

    assert rig.deliver(kinesis_event) == sequences
    assert rig.calls["BatchGetItem"] == attempts
    assert rig.consented() == []
    assert rig.consent_items() == []
    assert rig.totals() == Counter()

    rig.deliver_ok(kinesis_event)  # the throttle has cleared

    assert rig.consented_ids() == Counter(
        {e.message_id: 1 for e in (batch[0], batch[1], batch[2], batch[5])}
    )
    assert rig.totals() == Counter({FORWARDED: 4, CONSENT_DENIED: 1, CONSENT_UNKNOWN: 1})
    state, audit = rig.records("user_id:u-1")
    assert state is not None and state.latest("personalization").granted is True
    assert len(audit) == 1


def test_a_throttled_counter_write_fails_the_batch_and_the_redelivery_counts_once(
    rig: ConsentRig,
) -> None:
    batch = mixed_batch()
    kinesis_event = rig.batch(batch)
    sequences = [r["kinesis"]["sequenceNumber"] for r in kinesis_event["Records"]]
    counters = rig.names.table("counters")
    step = handler.consent_step()
    attempts = step.counters.table.max_attempts  # type: ignore[attr-defined]
    rig.faults["BatchWriteItem"] = throttle_writes(rig, attempts, lambda t, _r: t == counters)

    assert rig.deliver(kinesis_event) == sequences
    assert rig.totals() == Counter()
    items_after_failure = rig.consent_items()

    rig.deliver_ok(kinesis_event)

    assert rig.totals() == Counter({FORWARDED: 4, CONSENT_DENIED: 1, CONSENT_UNKNOWN: 1})
    assert rig.consent_items() == items_after_failure  # state and audit written once
    # Forwarded before the counter write failed, so forwarded again: duplicates with
    # the same message ids, which the next step drops; never an event consent dropped.
    assert set(rig.consented_ids()) == {
        e.message_id for e in (batch[0], batch[1], batch[2], batch[5])
    }


def test_audit_entries_left_unprocessed_are_written_on_the_redelivery(rig: ConsentRig) -> None:
    """DynamoDB may process part of a BatchWriteItem: here the states, not the audit entries.

    The batch fails and is redelivered; the audit trail is append-only history and
    must still end up with every change (DESIGN.md: an append-only audit trail).
    """
    batch = [preference_update(0, True, user="u-audit", anon="d-audit"), event(1, anon="d-audit")]
    kinesis_event = rig.batch(batch)
    consent_table = rig.names.table("consent")
    attempts = handler.consent_step().states.table.max_attempts  # type: ignore[attr-defined]
    rig.faults["BatchWriteItem"] = throttle_writes(
        rig, attempts, lambda t, r: t == consent_table and is_audit(r)
    )

    assert len(rig.deliver(kinesis_event)) == len(batch)
    rig.deliver_ok(kinesis_event)

    for identifier in ("user_id:u-audit", "anonymous_id:d-audit"):
        state, audit = rig.records(identifier)
        assert state is not None and state.latest("personalization").granted is True
        assert [entry["message_id"] for entry in audit] == [batch[0].message_id], identifier


def test_a_batch_cut_by_refused_put_records_resolves_the_retry_as_the_first_pass(
    rig: ConsentRig,
) -> None:
    """PutRecords refuses the first forwarded record every attempt: the batch is cut there.

    The state saved at commit already holds the later grant; the retried records must
    still be judged as they were: the event sent while consent was withdrawn stays out.
    """
    person = {"anon": "d-cut"}
    deny, dropped, grant, after = (
        preference_update(0, False, **person),
        event(1, **person),
        preference_update(2, True, **person),
        event(3, **person),
    )
    kinesis_event = rig.batch([deny, dropped, grant, after])
    attempts = handler.consent_step().consented.max_attempts  # type: ignore[attr-defined]
    rig.faults["kinesis:PutRecords"] = refuse_records(attempts)
    assert len(rig.deliver(kinesis_event)) == 4
    assert rig.consented() == []

    rig.deliver_ok(kinesis_event)

    forwarded = rig.consented_ids()
    assert dropped.message_id not in forwarded
    assert forwarded == Counter({deny.message_id: 1, grant.message_id: 1, after.message_id: 1})
    assert rig.totals() == Counter({FORWARDED: 3, CONSENT_DENIED: 1})


def test_a_malformed_record_goes_to_failed_events_and_its_neighbours_go_on(
    rig: ConsentRig,
) -> None:
    good = [
        event(0, anon="d-good", prefs={"personalization": True}),
        event(2, anon="d-good"),
    ]
    bad = b'{"type": "track", "not": "a canonical event"'
    rig.deliver_ok(rig.batch([good[0], bad, good[1]]))

    assert [e.message_id for _, e in rig.consented()] == [g.message_id for g in good]
    assert rig.totals() == Counter({FORWARDED: 2, MALFORMED: 1})
    listing = rig.s3.list_objects_v2(Bucket=rig.names.bucket("failed-events"))["Contents"]
    assert len(listing) == 1
    object_key = listing[0]["Key"]
    assert object_key.startswith(f"consent/dt={today()}/reason=malformed_record/")
    body = rig.s3.get_object(Bucket=rig.names.bucket("failed-events"), Key=object_key)
    lines = body["Body"].read().decode().splitlines()
    assert len(lines) == 1
    failure = json.loads(lines[0])
    assert failure["raw"] == bad.decode()
    assert failure["step"] == "consent"
    assert failure["reason"] == MALFORMED


# --- cost ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_email", "batch_gets"),
    [(False, 1), (True, 2)],
    ids=["80-keys-1-call", "120-keys-2-calls"],
)
def test_a_batch_costs_one_batch_get_per_100_identifiers_and_no_per_event_calls(
    rig: ConsentRig, with_email: bool, batch_gets: int
) -> None:
    people = 40
    events = []
    for n in range(5):  # five events per person, people interleaved as on a shard
        for p in range(people):
            events.append(
                event(
                    n,
                    user=f"u-{p}",
                    anon=f"d-{p}",
                    email=f"person{p}@example.org" if with_email else None,
                    prefs={"personalization": True} if n == 0 else None,
                )
            )
    assert len(events) == 200
    distinct = {f"user_id:u-{p}" for p in range(people)} | {
        f"anonymous_id:d-{p}" for p in range(people)
    }
    if with_email:
        distinct |= {f"email:person{p}@example.org" for p in range(people)}
    rig.calls.clear()

    rig.deliver_ok(rig.batch(events))

    assert math.ceil(len(distinct) / 100) == batch_gets  # 100 keys per BatchGetItem
    assert rig.calls["BatchGetItem"] == batch_gets
    per_event = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan"}
    assert not per_event & set(rig.calls)
    assert rig.calls["Query"] == 1  # erasures since the batch was opened, after its save
    # Audit entries and states in calls of their own (audit first), then one counter item.
    assert rig.calls["BatchWriteItem"] == 2 * math.ceil(len(distinct) / 25) + 1
    assert rig.put_records_calls == 1
    assert len(rig.consented()) == 200


# --- erasure: a batch judging the person while it runs (issue 13) -----------------------


def minute_now() -> int:
    """The rig's minute offset from T0 for the present moment (events after an erasure)."""
    return int((datetime.now(UTC) - T0).total_seconds() // 60) + 1


def test_an_erasure_during_a_batch_is_not_written_over_by_its_save(rig: ConsentRig) -> None:
    """Fault drill: the erasure lands after the batch read Ana's state (not suppressed)
    and before it saves what it judged. The save writes over the suppression and files
    audit entries; the batch then finds the erasure, puts the suppression back and takes
    its entries back. Ana stays erased, and erasing her again finds nothing."""
    ana = {"user": "u-ana", "anon": "d-ana"}
    rig.deliver_ok(rig.batch([preference_update(0, True, **ana)]))
    keys = [key("user_id:u-ana"), key("anonymous_id:d-ana"), key("anonymous_id:d-new")]
    landed: list[int] = []

    def erasure_lands(_request: dict[str, Any]) -> None:
        if not landed:
            landed.append(rig.store().erase(keys, datetime.now(UTC)))

    rig.faults["BatchWriteItem"] = erasure_lands  # the batch's first write: its audit entries
    rig.deliver_ok(
        rig.batch([event(1, user="u-ana", anon="d-new", prefs={"personalization": True})])
    )

    assert landed and landed[0] > 0
    for erased in keys:
        state, audit = rig.store().records(erased)
        assert state is not None and state.suppressed and not state.categories
        assert [entry["message_id"] for entry in audit] == ["erasure"]
    assert rig.store().erase(keys, datetime.now(UTC)) == 0
    # The browser's next event, with the stamp it always sends: still erased.
    rig.faults.clear()
    later = event(minute_now(), user="u-ana", anon="d-new", prefs={"personalization": True})
    before = rig.consented_ids()
    rig.deliver_ok(rig.batch([later]))
    assert rig.consented_ids() == before


def test_a_fresh_opt_in_after_an_erasure_is_not_put_back_as_suppressed(rig: ConsentRig) -> None:
    ana = {"user": "u-ana", "anon": "d-ana"}
    rig.deliver_ok(rig.batch([preference_update(0, True, **ana)]))
    rig.store().erase([key("user_id:u-ana"), key("anonymous_id:d-ana")], datetime.now(UTC))
    fresh = preference_update(minute_now(), True, **ana)

    rig.deliver_ok(rig.batch([fresh, event(minute_now() + 1, **ana)]))

    state, _ = rig.records("user_id:u-ana")
    assert state is not None and not state.suppressed
    assert fresh.message_id in rig.consented_ids()


# --- bots ----------------------------------------------------------------------


def bot_event(minute: int, **who: Any) -> CanonicalEvent:
    """An event whose user agent ingest's enrichment flagged as a bot's."""
    from functions.ingest.enrich import EnrichOptions, enrich_event

    built = event(minute, **who)
    built.context.page = {"url": "https://shop.example.com/", "referrer": None}
    built.context.user_agent = (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    )
    enrich_event(built, EnrichOptions())
    return built


def test_bots_are_dropped_and_counted_before_they_can_change_consent(rig: ConsentRig) -> None:
    from functions.consent.decisions import BOT

    crawler = bot_event(0, anon="d-bot", prefs={"personalization": True})
    person = event(1, anon="d-person", prefs={"personalization": True})
    rig.deliver_ok(rig.batch([crawler, person]))

    assert rig.consented_ids() == Counter({person.message_id: 1})
    assert rig.totals() == Counter({FORWARDED: 1, BOT: 1})
    assert rig.records("anonymous_id:d-bot") == (None, [])  # no state, no audit


def test_a_source_that_keeps_bots_forwards_them(rig: ConsentRig) -> None:
    handler.consent_step().keep_bots_from = frozenset({"web"})  # the rig's container
    crawler = bot_event(0, anon="d-bot", prefs={"personalization": True})
    rig.deliver_ok(rig.batch([crawler]))
    assert rig.consented_ids() == Counter({crawler.message_id: 1})
    assert rig.totals() == Counter({FORWARDED: 1})
