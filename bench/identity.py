"""Identity step cost and accuracy through the real Lambda handler, on moto in-process.

    python bench/identity.py [--people 300] [--write]

Simulates shoppers as canonical events (what the consent step forwards; no
HTTP): about 300 people, each with 1-3 devices and several sessions (some with
a cleared cookie, i.e. a fresh anonymous id), logging in with a user id and
their email (a phone number for some, name and address traits for most),
buying (client `Order Completed` plus the shop backend's server-side event
keyed by user id); guests who only check out with an email; account holders
who once check out as a guest with another email (only name and address tie
that checkout to them: probabilistic matching); family members sharing a
household address and surname. The names, addresses and their noise come from
`simulator/people.py`'s people.

The events are written to the `consented` stream (as many shards as the wiring
table gives it, one partition key per person), read back shard by shard into
Kinesis batches of the identity row's batch size, and delivered to
`functions.identity.handler.lambda_handler` shard by shard in turn, with the
identity table, the `resolved` stream and the failed-events bucket on moto.
Records the handler reports as failed are redelivered from the first failed
one, up to the row's `max_retry_attempts`, as Lambda does. botocore hooks on
the handler's own DynamoDB client count calls and items. The same batches are
then replayed (where nothing should change). Finally the events' profiles
(following merge redirects) are compared with the true people, and
`simulator/matching_pairs.py`'s labelled pairs give the precision and recall of
probabilistic matching with the `Probabilistic()` defaults. `--write` replaces
the `## Identity` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import (
    CONFIG,
    command_line,
    create_resources,
    deliver_like_lambda,
    function_under_test,
    kinesis_batches,
    prose,
    put_events,
    quietly,
    read_stream,
    report,
    scan_table,
    section_head,
)

# The labelled-pair generator doubles as the source of names, addresses and their noise.
from simulator.matching_pairs import evaluate, generate_pairs
from simulator.people import make_household, make_person, render

SECTION = "## Identity"
PEOPLE = 300
SEED = 11
MATCHING_SEED = 7
MATCHING_PAIRS = 2000
START = datetime(2026, 11, 15, 8, 0, tzinfo=UTC)


# --- the simulated stream --------------------------------------------------------


@dataclass
class Shopper:
    index: int
    person: Any  # simulator.people.Person
    user_id: str | None  # None: a guest who never creates an account
    email: str
    other_email: str  # a work address, used on a guest checkout
    phone: str | None  # the mobile, given at login by some
    devices: list[str]
    guest_checkout: bool  # an account holder who once checks out as a guest


@dataclass
class Simulation:
    events: list[dict[str, Any]]  # wire fields, in the order they happen
    person_of: dict[str, int]  # message id -> true person
    shoppers: list[Shopper]
    other_email_checkouts: list[str]  # message ids of the identify with another email


def _anon(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _national(e164: str) -> str:
    """A US number as people type it; others stay in international form."""
    if e164.startswith("+1") and len(e164) == 12:
        d = e164[2:]
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"
    return e164


def _shoppers(rng: random.Random, people: int) -> list[Shopper]:
    shoppers: list[Shopper] = []
    emails: set[str] = set()
    for index in range(people):
        if shoppers and rng.random() < 0.12:  # a family member of the previous shopper
            previous = shoppers[-1].person
            person = make_person(rng, previous.household, last=previous.last)
        else:
            person = make_person(rng, make_household(rng))
        email = f"{person.email_local}@{person.email_domain}".lower()
        while email in emails:  # two people never share an address
            local, _, domain = email.partition("@")
            email = f"{local}{rng.randint(1, 99)}@{domain}"
        emails.add(email)
        shoppers.append(
            Shopper(
                index=index,
                person=person,
                user_id=f"user-{index:04d}" if rng.random() < 0.9 else None,
                email=email,
                other_email=f"{person.email_local}.work{index}@acme-corp.com".lower(),
                phone=person.mobile if rng.random() < 0.4 else None,
                devices=[_anon(rng) for _ in range(rng.choice((1, 1, 2, 2, 3)))],
                guest_checkout=rng.random() < 0.12,
            )
        )
    return shoppers


def _traits(rng: random.Random, shopper: Shopper, email: str, with_profile: bool) -> dict[str, Any]:
    """identify traits: the email, the phone if they give it, name and address if asked."""
    traits: dict[str, Any] = {"email": email}
    if with_profile:
        rendered = render(rng, shopper.person)
        rendered.pop("email", None)
        rendered.pop("phone", None)
        traits.update(rendered)
    if shopper.phone:
        traits["phone"] = _national(shopper.phone)
    return traits


def simulate(people: int = PEOPLE, seed: int = SEED) -> Simulation:
    rng = random.Random(seed)
    shoppers = _shoppers(rng, people)
    timed: list[tuple[datetime, int, dict[str, Any]]] = []

    def emit(shopper: Shopper, at: datetime, **fields: Any) -> None:
        fields.setdefault("source", {"name": "web", "protocol": "segment"})
        fields.setdefault("context", {"library": {"name": "analytics.js", "version": "5.2.0"}})
        wire = {
            "messageId": _anon(rng),
            "timestamp": at.isoformat(),
            "receivedAt": at.isoformat(),
            **{k: v for k, v in fields.items() if v is not None},
        }
        timed.append((at, len(timed), wire))
        person_of[wire["messageId"]] = shopper.index

    def browse(shopper: Shopper, at: datetime, anon: str, user: str | None) -> None:
        roll = rng.random()
        if roll < 0.4:
            emit(shopper, at, type="page", name="Product", anonymousId=anon, userId=user)
        else:
            name = "Product Viewed" if roll < 0.8 else "Product Added"
            sku = f"sku-{rng.randrange(100, 140)}"
            emit(
                shopper,
                at,
                type="track",
                event=name,
                anonymousId=anon,
                userId=user,
                properties={"sku": sku},
            )

    def purchase(shopper: Shopper, at: datetime, anon: str, user: str | None) -> None:
        order = f"order-{rng.getrandbits(32):08x}"
        emit(
            shopper,
            at,
            type="track",
            event="Order Completed",
            anonymousId=anon,
            userId=user,
            properties={"order_id": order, "revenue": rng.choice((39, 79, 129, 289))},
        )
        if user:  # the shop's backend reports the same order, by user id only
            emit(
                shopper,
                at + timedelta(seconds=rng.uniform(2, 30)),
                type="track",
                event="Order Completed",
                userId=user,
                source={"name": "server", "protocol": "segment"},
                context={"library": {"name": "analytics-python", "version": "2.3.0"}},
                properties={"order_id": order, "server": True},
            )

    person_of: dict[str, int] = {}
    other_email_checkouts: list[str] = []
    for shopper in shoppers:
        at = START + timedelta(hours=rng.uniform(0, 24 * 6))
        # Every device is visited at least once; then sessions on devices at random.
        devices = [*shopper.devices]
        devices += [rng.choice(shopper.devices) for _ in range(rng.randint(1, 4))]
        rng.shuffle(devices)
        last_visit = {device: n for n, device in enumerate(devices)}
        logged_in: set[str] = set()  # devices that remember the login (or the checkout)
        for session, device in enumerate(devices):
            at += timedelta(hours=rng.uniform(2, 30))
            fresh = rng.random() < 0.05  # cookie cleared, private window
            anon = _anon(rng) if fresh else device
            user = shopper.user_id if (not fresh and device in logged_in) else None
            known = not fresh and device in logged_in
            count = rng.randint(2, 8)
            # Not yet known on this device: log in (or, for a guest, check out) now or
            # on a later visit, at the latest on the device's last visit; half the
            # private-window sessions do it too.
            identifies = not known and (
                rng.random() < 0.5 or (not fresh and session == last_visit[device])
            )
            login_at = rng.randrange(count) if identifies and shopper.user_id else None
            guest_at = count - 1 if identifies and not shopper.user_id else None
            for k in range(count):
                at += timedelta(seconds=rng.uniform(5, 120))
                if k == login_at:
                    emit(
                        shopper,
                        at,
                        type="identify",
                        anonymousId=anon,
                        userId=shopper.user_id,
                        traits=_traits(rng, shopper, shopper.email, rng.random() < 0.7),
                    )
                    user = shopper.user_id
                    if not fresh:
                        logged_in.add(device)
                elif k == guest_at:  # a guest checks out with their email
                    traits = _traits(rng, shopper, shopper.email, True)
                    emit(shopper, at, type="identify", anonymousId=anon, traits=traits)
                    purchase(shopper, at + timedelta(seconds=30), anon, None)
                    if not fresh:
                        logged_in.add(device)
                elif k == count - 1 and user and rng.random() < 0.35:
                    purchase(shopper, at, anon, user)
                else:
                    browse(shopper, at, anon, user)
        if shopper.user_id and shopper.guest_checkout:  # once, as a guest, another email
            at += timedelta(hours=rng.uniform(2, 30))
            anon = _anon(rng)
            for _ in range(rng.randint(1, 3)):
                at += timedelta(seconds=rng.uniform(5, 120))
                browse(shopper, at, anon, None)
            traits = _traits(rng, shopper, shopper.other_email, True)
            traits.pop("phone", None)  # nothing deterministic in common
            emit(shopper, at, type="identify", anonymousId=anon, traits=traits)
            other_email_checkouts.append(timed[-1][2]["messageId"])
            purchase(shopper, at + timedelta(seconds=40), anon, None)
    timed.sort(key=lambda entry: (entry[0], entry[1]))
    return Simulation([wire for _, _, wire in timed], person_of, shoppers, other_email_checkouts)


# --- measuring -------------------------------------------------------------------


@dataclass
class Cost:
    """Calls and items of one pass over every batch."""

    batches: int = 0
    events: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # DynamoDB operation -> calls
    items_read: int = 0  # BatchGetItem items returned + Query items returned
    items_written: int = 0  # PutItem attempts + BatchWriteItem items accepted
    conditional_failures: Counter[str] = field(default_factory=Counter)  # kind -> failed puts
    written: Counter[str] = field(default_factory=Counter)  # kind -> items sent to be written
    candidate_loads: int = 0  # load_profiles calls for match candidates, beyond one per call
    put_records_calls: int = 0
    invocations: int = 0
    retried_batches: int = 0
    exhausted_records: int = 0  # still failing after the last retry: the on-failure bucket
    seconds: float = 0.0

    def per_event(self, value: float) -> float:
        return value / self.events

    def per_batch(self, value: float) -> float:
        return value / self.batches

    @property
    def write_calls(self) -> int:
        return self.calls["PutItem"] + self.calls["UpdateItem"] + self.calls["BatchWriteItem"]


@dataclass(frozen=True)
class Accuracy:
    people: int
    groups: int  # components of the identifiers events share (exact links only)
    unresolved: int  # events no record on `resolved` carries
    live_profiles: int  # distinct live profiles the events ended on
    identified_people: int  # people who sent a user id or an email at least once
    identified_profiles: int  # live profiles holding a user id or an email
    profile_items: int  # profiles stored, merged ones included
    split_people: int  # people whose events ended on more than one profile
    mixed_profiles: int  # profiles holding events of more than one person
    merges: Counter[str]  # rule -> profile.merged records (distinct merge ids)
    wrong_merges: Counter[str]  # rule -> merges of two different people
    suggestions: int
    suggestion_true: int
    replay_merges: int  # profile.merged records with a merge id first seen on the replay
    other_email_checkouts: int  # guest checkouts under another email (traits in common)
    other_email_joined: int  # of them, ended on the profile of the person's user id


@dataclass(frozen=True)
class Results:
    first: Cost
    replay: Cost
    accuracy: Accuracy
    matching: dict[str, float]
    auto: float
    review: float
    batch_size: int
    shards: int
    max_retries: int
    batch_sizes: list[int]
    identifiers: int
    batch_identifiers: list[int]  # distinct usable identifiers per batch
    kinds: Counter[str]
    shoppers: dict[str, int]


class _Find:
    """Union-find over identifiers."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def measure(people: int) -> Results:
    import boto3
    from moto import mock_aws

    from infra.topology import TOPOLOGY

    function, names = function_under_test("identity")
    source = function.kinesis_sources[0]

    from functions.shared.config import Probabilistic, load_config

    config = load_config(CONFIG)

    from functions.identity import handler
    from functions.identity.screening import IdentifierRules
    from functions.shared.dal import clients
    from functions.shared.dal.dynamo import from_item
    from functions.shared.dal.identity_store import profile_from_item
    from functions.shared.events import CanonicalEvent
    from functions.shared.resolved import ProfileMerged, ResolvedEvent, parse_record

    simulation = simulate(people)
    canonical = [CanonicalEvent.model_validate(fields) for fields in simulation.events]

    from functions.shared.config import load_config

    with mock_aws():
        create_resources(function, names)
        dynamodb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
        # The consent step's identifier salt: the step hashes identifiers with it to
        # check them against recent erasures.
        boto3.client("secretsmanager").create_secret(
            Name=load_config(CONFIG).consent.identifier_salt_secret, SecretString="bench-salt"
        )

        # The simulated stream: onto `consented` in time order, then read back per shard.
        consented = TOPOLOGY.stream(source.stream)
        stream_name = names.stream(consented.name)
        put_events(kinesis, stream_name, canonical)
        per_shard = kinesis_batches(kinesis, stream_name, source.batch_size)
        # Lambda polls the shards side by side: here their batches take turns.
        batches = [
            b
            for turn in range(max(len(s) for s in per_shard))
            for s in per_shard
            if turn < len(s)
            for b in [s[turn]]
        ]

        clients.client.cache_clear()
        handler.identity_step.cache_clear()
        operations: Counter[str] = Counter()
        items = {"read": 0, "written": 0}
        conditional: Counter[str] = Counter()  # kind of item -> failed conditional puts
        last_put = [""]  # the kind of the PutItem in flight (one call at a time)
        written: Counter[str] = Counter()  # kind of item -> items sent to be written

        def before(model: Any, **_: Any) -> None:
            operations[model.name] += 1

        def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "BatchGetItem":
                items["read"] += sum(len(v) for v in parsed.get("Responses", {}).values())
            elif model.name == "Query":
                items["read"] += int(parsed.get("Count", 0))
            elif model.name == "PutItem":
                items["written"] += 1
                if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    conditional[last_put[0]] += 1
            elif model.name == "BatchWriteItem":
                unprocessed = sum(len(v) for v in parsed.get("UnprocessedItems", {}).values())
                items["written"] -= unprocessed

        def before_write(params: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "PutItem":
                last_put[0] = _kind(params["Item"])
                written[last_put[0]] += 1
            elif model.name == "BatchWriteItem":
                for requests in params["RequestItems"].values():
                    items["written"] += len(requests)
                    for request in requests:
                        if "PutRequest" in request:
                            written[_kind(request["PutRequest"]["Item"])] += 1

        dynamo_client = clients.client("dynamodb")
        dynamo_client.meta.events.register("before-call.dynamodb", before)
        for operation in ("PutItem", "BatchWriteItem"):
            dynamo_client.meta.events.register(
                f"before-parameter-build.dynamodb.{operation}", before_write
            )
        dynamo_client.meta.events.register("after-call.dynamodb", after)
        step = handler.identity_step()
        writer = step.resolved
        put_records_before = [0]
        # Profile reads: the batch's own (at open) and the probabilistic candidates the
        # matcher loads while deciding; counted by wrapping this store instance.
        store = step.graph_store
        profile_loads = [0]
        load_profiles = store.load_profiles

        def counted_load_profiles(profile_ids: Any) -> Any:
            profile_loads[0] += 1
            return load_profiles(profile_ids)

        store.load_profiles = counted_load_profiles  # type: ignore[method-assign]

        def deliver(event: dict[str, Any], cost: Cost) -> None:
            delivery = deliver_like_lambda(handler.lambda_handler, event, function)
            cost.invocations += delivery.invocations
            cost.retried_batches += delivery.retried
            cost.exhausted_records += delivery.exhausted

        def one_pass() -> Cost:
            operations.clear()
            written.clear()
            items.update(read=0, written=0)
            conditional.clear()
            profile_loads[0] = 0
            put_records_before[0] = writer.calls  # type: ignore[attr-defined]
            cost = Cost(batches=len(batches), events=sum(len(b["Records"]) for b in batches))
            started = time.perf_counter()
            for event in batches:
                deliver(event, cost)
            cost.seconds = time.perf_counter() - started
            cost.calls = Counter(operations)
            cost.items_read = items["read"]
            cost.items_written = items["written"]
            cost.written = Counter(written)
            cost.conditional_failures = Counter(conditional)
            cost.candidate_loads = profile_loads[0] - cost.invocations
            cost.put_records_calls = writer.calls - put_records_before[0]  # type: ignore[attr-defined]
            return cost

        first = one_pass()
        stream_resolved = names.stream("resolved")
        records_after_first = read_stream(kinesis, stream_resolved)
        replay = one_pass()
        records_after_replay = read_stream(kinesis, stream_resolved)

        # --- where every event ended -----------------------------------------------
        table_items = scan_table(dynamodb, names.table("identity"))
        profiles = {
            p.profile_id: p
            for p in (
                profile_from_item(from_item(i)) for i in table_items if i["sk"]["S"] == "meta"
            )
        }
        suggestions = [from_item(i) for i in table_items if i["pk"]["S"] == "suggestions"]

    def live(pid: str) -> str:
        seen = set()
        while pid in profiles and profiles[pid].merged_into and pid not in seen:
            seen.add(pid)
            pid = str(profiles[pid].merged_into)
        return pid

    screen = IdentifierRules(config.identity)
    ended: dict[str, str] = {}  # message id -> live profile
    merges: dict[str, ProfileMerged] = {}
    for data in records_after_first:
        record = parse_record(data)
        if isinstance(record, ResolvedEvent):
            ended[record.event.message_id] = live(record.profile_id)
        else:
            merges[record.merge_id] = record
    people_of: dict[str, set[int]] = defaultdict(set)
    profiles_of: dict[int, set[str]] = defaultdict(set)
    for message_id, pid in ended.items():
        person = simulation.person_of[message_id]
        people_of[pid].add(person)
        profiles_of[person].add(pid)
    # Which person a profile "is": the one with most of its events (before merging).
    owner_votes: dict[str, Counter[int]] = defaultdict(Counter)
    for data in records_after_first:
        record = parse_record(data)
        if isinstance(record, ResolvedEvent):
            owner_votes[record.profile_id][simulation.person_of[record.event.message_id]] += 1

    def owner(pid: str) -> int | None:
        votes = owner_votes.get(pid)
        return votes.most_common(1)[0][0] if votes else None

    replay_merges = {
        r.merge_id
        for r in (parse_record(data) for data in records_after_replay)
        if isinstance(r, ProfileMerged) and r.merge_id not in merges
    }
    identified_people = {
        simulation.person_of[e.message_id]
        for e in canonical
        if e.user_id or any(i.type == "email" for i in screen.of(e).usable)
    }
    identified_profiles = {
        pid
        for pid in set(ended.values())
        if pid in profiles and {"user_id", "email"} & set(profiles[pid].identifiers)
    }
    account_profiles: dict[int, set[str]] = defaultdict(set)
    for e in canonical:
        if e.user_id and e.message_id in ended:
            account_profiles[simulation.person_of[e.message_id]].add(ended[e.message_id])
    other_email_joined = sum(
        1
        for m in simulation.other_email_checkouts
        if ended.get(m) in account_profiles[simulation.person_of[m]]
    )
    wrong: Counter[str] = Counter()
    for record in merges.values():
        a, b = owner(record.survivor), owner(record.loser)
        if a is not None and b is not None and a != b:
            wrong[record.rule] += 1
    suggestion_true = sum(
        1
        for s in suggestions
        if owner(str(s["a"])) is not None and owner(str(s["a"])) == owner(str(s["b"]))
    )

    groups = _Find()
    all_identifiers: set[str] = set()
    for e in canonical:
        ids = [str(i) for i in screen.of(e).usable]
        all_identifiers.update(ids)
        for other in ids[1:]:
            groups.union(ids[0], other)
    by_id = {e.message_id: e for e in canonical}
    batch_identifiers = [
        len({i for r in b["Records"] for i in screen.of(by_id[_message_id(r)]).usable})
        for b in batches
    ]
    settings = Probabilistic()
    matching = evaluate(
        generate_pairs(MATCHING_SEED, MATCHING_PAIRS),
        settings.weights,
        settings.auto_merge_threshold,
        settings.review_threshold,
    )
    shoppers = simulation.shoppers
    return Results(
        first=first,
        replay=replay,
        accuracy=Accuracy(
            people=len(shoppers),
            groups=len({groups.find(i) for i in all_identifiers}),
            unresolved=sum(1 for e in canonical if e.message_id not in ended),
            live_profiles=len(set(ended.values())),
            identified_people=len(identified_people),
            identified_profiles=len(identified_profiles),
            profile_items=len(profiles),
            split_people=sum(1 for pids in profiles_of.values() if len(pids) > 1),
            mixed_profiles=sum(1 for ps in people_of.values() if len(ps) > 1),
            merges=Counter(r.rule for r in merges.values()),
            wrong_merges=wrong,
            suggestions=len(suggestions),
            suggestion_true=suggestion_true,
            replay_merges=len(replay_merges),
            other_email_checkouts=len(simulation.other_email_checkouts),
            other_email_joined=other_email_joined,
        ),
        matching=matching,
        auto=settings.auto_merge_threshold,
        review=settings.review_threshold,
        batch_size=source.batch_size,
        shards=consented.shards,
        max_retries=source.max_retry_attempts,
        batch_sizes=[len(b["Records"]) for b in batches],
        identifiers=len(all_identifiers),
        batch_identifiers=batch_identifiers,
        kinds=Counter(str(e.type) for e in canonical),
        shoppers={
            "account holders": sum(1 for s in shoppers if s.user_id),
            "guests": sum(1 for s in shoppers if not s.user_id),
            "guest checkout with another email": sum(
                1 for s in shoppers if s.user_id and s.guest_checkout
            ),
            "devices": sum(len(s.devices) for s in shoppers),
        },
    )


def _message_id(record: dict[str, Any]) -> str:
    return str(json.loads(base64.b64decode(record["kinesis"]["data"]))["messageId"])


def _kind(item: dict[str, Any]) -> str:
    """What an identity-table item is, from its (wire-typed) keys."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    if pk.startswith("id#"):
        return "node"
    if pk.startswith("profile#"):
        return "profile" if sk == "meta" else "merge audit"
    if pk.startswith("block#"):
        return "blocking key"
    return "suggestion" if pk == "suggestions" else "other"


# --- reporting ---------------------------------------------------------------------


def cost_table(results: Results) -> str:
    rows = [
        "| pass | BatchGetItem calls/batch | candidate profile loads/batch | Query calls/batch "
        "| items read/event "
        "| write calls/event | items written/event | PutItem/event | BatchWriteItem/event "
        "| failed conditional writes | PutRecords calls/event | batches retried "
        "| records given up after the last retry |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for label, c in (
        ("first (fresh table)", results.first),
        ("replay of the same batches", results.replay),
    ):
        failed = ", ".join(f"{k} {n}" for k, n in sorted(c.conditional_failures.items())) or "0"
        rows.append(
            f"| {label} | {c.per_batch(c.calls['BatchGetItem']):.2f} "
            f"| {c.per_batch(c.candidate_loads):.2f} "
            f"| {c.per_batch(c.calls['Query']):.2f} | {c.per_event(c.items_read):.3f} "
            f"| {c.per_event(c.write_calls):.3f} | {c.per_event(c.items_written):.3f} "
            f"| {c.per_event(c.calls['PutItem']):.3f} "
            f"| {c.per_event(c.calls['BatchWriteItem']):.3f} | {failed} "
            f"| {c.per_event(c.put_records_calls):.3f} "
            f"| {c.retried_batches} of {c.batches} | {c.exhausted_records} |"
        )
    return "\n".join(rows)


WRITE_KINDS = ("node", "profile", "merge audit", "blocking key", "suggestion", "other")


def written_table(results: Results) -> str:
    rows = [
        "| pass | " + " | ".join(f"{kind} items/event" for kind in WRITE_KINDS) + " |",
        "| --- |" + " ---: |" * len(WRITE_KINDS),
    ]
    for label, c in (("first", results.first), ("replay", results.replay)):
        cells = " | ".join(f"{c.per_event(c.written[kind]):.3f}" for kind in WRITE_KINDS)
        rows.append(f"| {label} | {cells} |")
    return "\n".join(rows)


def accuracy_table(results: Results) -> str:
    a = results.accuracy
    merges = ", ".join(f"{rule} {n}" for rule, n in sorted(a.merges.items())) or "0"
    wrong = ", ".join(f"{rule} {n}" for rule, n in sorted(a.wrong_merges.items())) or "0"
    return "\n".join(
        [
            "| measure | value |",
            "| --- | ---: |",
            f"| true people | {a.people} |",
            f"| groups linked by exact identifiers (the deterministic floor) | {a.groups} |",
            f"| events that never reached `resolved` | {a.unresolved} |",
            f"| live profiles the events ended on | {a.live_profiles} |",
            f"| people who identified (a user id or an email) | {a.identified_people} |",
            f"| live profiles holding a user id or an email | {a.identified_profiles} |",
            f"| profiles created (stored, merged ones included) | {a.profile_items} |",
            f"| people spread over more than one live profile | {a.split_people} |",
            f"| live profiles holding more than one person | {a.mixed_profiles} |",
            f"| merges (`profile.merged` records, by rule) | {merges} |",
            f"| merges of two different people | {wrong} |",
            f"| guest checkouts under another email joined to the account (of) "
            f"| {a.other_email_joined} ({a.other_email_checkouts}) |",
            f"| suggested links (of them the same person) | {a.suggestions} "
            f"({a.suggestion_true}) |",
            f"| merges first seen on the replay | {a.replay_merges} |",
        ]
    )


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def matching_table(results: Results) -> str:
    m = results.matching
    return "\n".join(
        [
            "| auto / review | precision at auto | recall at auto | recall (auto + review) "
            "| negatives in review | blocking recall | end-to-end recall "
            "| mean candidates / record |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {results.auto:.2f} / {results.review:.2f} | {_pct(m['precision_auto'])} "
            f"| {_pct(m['recall_auto'])} | {_pct(m['recall'])} "
            f"| {_pct(m['negatives_in_review'])} | {_pct(m['blocking_recall'])} "
            f"| {_pct(m['end_to_end_recall'])} | {m['mean_block_comparisons']:.1f} |",
        ]
    )


def retry_note(results: Results) -> str:
    first, replay = results.first, results.replay
    if not first.retried_batches and not replay.retried_batches:
        return """No batch was reported failed: every batch was resolved on its first
            invocation, on the first pass and on the replay (one invocation at a time,
            so no two batches raced)."""
    lost = (
        f"{first.exhausted_records} records still failed after the last retry (Lambda "
        "would send them to the on-failure bucket)."
        if first.exhausted_records
        else "Every retried batch succeeded within the retries."
    )
    failed = ", ".join(f"{k} {n}" for k, n in sorted(first.conditional_failures.items()))
    return f"""{first.retried_batches} of {first.batches} batches were reported failed on
        their first invocation of the first pass ({first.invocations} invocations in
        all; failed conditional puts by item: {failed or "none"}) and were redelivered
        from the first reported record, as Lambda does. {lost} One invocation runs at a
        time here, so these are not races between shards. The retries are included in
        the first pass's calls."""


def replay_note(results: Results) -> str:
    replay = results.replay
    if not replay.items_written and not replay.calls["PutItem"]:
        return "The replay wrote nothing: every node, profile and filing was as stored."
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(replay.written.items()) if n) or "none"
    failed = ", ".join(f"{k} {n}" for k, n in sorted(replay.conditional_failures.items()))
    return f"""The replay still sent items to be written ({kinds}) in
        {replay.write_calls} calls. Blocking-key filings hold a profile's latest match
        traits: replaying an older identify whose traits were rendered differently (a
        typo, a nickname, another address format) files them again, and the later
        identify files its own back; a profile is rewritten when an identify files it
        under a blocking key it does not list yet (a survivor does not inherit its
        losers' keys). Suggested links are conditional puts (`attribute_not_exists`),
        so a pair already suggested is a failed put ({failed or "none"}) that still
        costs a write request. On the replay every filing is already there, so
        identify events meet more candidates, each identify loading the candidate
        profiles not yet in the batch with a BatchGetItem of its own ("candidate
        profile loads"), and profiles now reached through merge redirects add
        to the replay's reads."""


def section(results: Results, command: str) -> str:
    first = results.first
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(results.kinds.items()))
    shoppers = ", ".join(f"{k} {v}" for k, v in results.shoppers.items())
    mean_ids = sum(results.batch_identifiers) / len(results.batch_identifiers)
    node_calls = sum(math.ceil(n / 100) for n in results.batch_identifiers)
    text = prose(
        f"""Input: {first.events:,} simulated events ({kinds}) from
        {results.accuracy.people} people ({shoppers}), {results.identifiers} distinct
        identifiers in all, written to the consented stream ({results.shards} shards,
        one partition key per person: the anonymous id, or the user id for the
        backend's events) and read back shard by shard into {first.batches} Kinesis
        batches of at most {results.batch_size} records (the identity row's batch
        size; sizes {", ".join(str(n) for n in results.batch_sizes)}), the shards'
        batches taking turns, each delivered to the real
        `functions.identity.handler.lambda_handler` with up to
        {results.max_retries} retries of what it reports failed.""",
        f"""Reads: one BatchGetItem per 100 distinct identifiers of a batch, one per 100
        profiles they point to (more when a redirect chain must be followed, or when
        probabilistic candidates are adopted), and one Query per blocking key of an
        identify event with usable match traits (cached for the batch). Items read
        count every item BatchGetItem or Query returned. Writes: conditional PutItem
        for each new or repointed node and each changed profile (twice for a
        survivor: once with the merge, once to mark its record sent — the outbox),
        BatchWriteItem for the merge audit, blocking-key filings and suggestions.
        The batches carried {mean_ids:.0f} distinct identifiers on average (at most
        {max(results.batch_identifiers)}), i.e. {node_calls} node-read calls in a
        pass.""",
        retry_note(results),
        replay_note(results),
        """Profiles: every resolved event is followed to the live profile it ended
        on (merge redirects followed) and compared with the person who sent it.
        "Groups linked by exact identifiers" is what deterministic matching can
        reach at best: events chained by a shared identifier (a fresh anonymous
        id that never logs in stays its own group). Probabilistic merges can go
        below it; the per-type limits can keep it above.""",
        f"""Probabilistic matching in the stream: the guest checkouts under another
        email share only name, address and postcode traits (rendered with
        `bench/matching_data.py`'s noise) with the account; those joined to it were
        merged by the matcher (rule `probabilistic`) or linked later through an
        identifier. Suggested links are pairs scored between the review and the
        auto-merge threshold; "the same person" counts those whose two profiles
        belong to one person (family members sharing an address are the usual
        others). The last table measures the same matching offline on
        `simulator/matching_pairs.py`'s labelled pairs (seed {MATCHING_SEED},
        {MATCHING_PAIRS} pairs: true pairs with typos, nicknames, swapped fields;
        families sharing an address; people with a common name) with the
        `Probabilistic()` defaults, through `evaluate(...)`.""",
    )
    return f"""{section_head(SECTION, command, "calls and items per event")}
{cost_table(results)}

Items sent to be written, by kind (PutItem attempts, BatchWriteItem puts):

{written_table(results)}

{accuracy_table(results)}

{matching_table(results)}

{text}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=PEOPLE, help="shoppers to simulate")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = command_line("identity.py", argv)
    results = quietly(lambda: measure(args.people))
    tables = [cost_table, written_table, accuracy_table, matching_table]
    return report(
        [table(results) for table in tables], args.write, SECTION, lambda: section(results, command)
    )


if __name__ == "__main__":
    sys.exit(main())
