"""An experiment on the local stack with a known effect, counted exactly, over HTTP.

The shipped beacon.yaml runs `cart_recovery` on `cart_abandoners`, whose members
are split between the variants `reminder` and `free_shipping`. The crm-webhook
sink is told to act as the journey platform's customers would: after a reminder
10 % of them order, after free shipping 50 % (seeded; `infra/local/journeys.py`),
and their orders come back through the ingest API. The report must count every
exposure and every order exactly, in the arm it belongs to, its interval must
contain the true difference of 40 points, and replaying the resolved stream must
change no count.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.shared.dal.counters import DailyCounters
from functions.shared.dal.dynamo import DynamoTable
from infra.topology import ResourceNames

from .conftest import RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually
from .test_segments_over_http import GRANTED

pytestmark = pytest.mark.e2e
NAMES = ResourceNames()
SHOPPERS = 260  # the sequential interval reports from 100 exposures per arm
RATES = {"reminder": 0.10, "free_shipping": 0.50}
SINK = "crm-webhook"


def add_to_cart(stack: RunningStack, users: list[str], hours_ago: float) -> None:
    sent = datetime.now(UTC)
    at = (sent - timedelta(hours=hours_ago)).isoformat()
    added = {"event": "Product Added", "properties": {"product_id": "sku-104", "price": 40.0}}
    for start in range(0, len(users), 50):
        stamped = [
            {"type": "track", "userId": user, **added, "messageId": str(uuid.uuid4())}
            | {"context": GRANTED, "timestamp": at}
            for user in users[start : start + 50]
        ]
        body = {"batch": stamped, "sentAt": sent.isoformat()}
        status, answer = call(stack, "POST", "/v1/batch", body, basic_auth("local-write-key"))
        assert status == 200, answer


def report(stack: RunningStack) -> dict[str, Any]:
    status, answer = call(stack, "GET", "/v1/experiments/cart_recovery", headers=ADMIN)
    assert status == 200, answer
    return answer


def acted(stack: RunningStack, users: set[str]) -> list[dict[str, Any]]:
    status, answer = call(stack, "GET", f"/_sink/{SINK}/acted", headers=ADMIN)
    assert status == 200, answer
    return [d for d in answer if d["person"] in users]  # type: ignore[union-attr]


def dashboard_page(stack: RunningStack) -> str:
    request = urllib.request.Request(f"{stack.url}/dashboard/experiments", headers=ADMIN)
    with urllib.request.urlopen(request, timeout=20) as answer:
        return str(answer.read().decode())


def replay_resolved(stack: RunningStack) -> int:
    """Put every record of the resolved stream on it again (an operator's replay);
    the number of events among them."""
    kinesis, stream = stack.client("kinesis"), NAMES.stream("resolved")
    records = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records += answer["Records"]
            iterator = answer["NextShardIterator"]
            if not answer["Records"]:
                break
    for start in range(0, len(records), 500):
        entries = [
            {"Data": r["Data"], "PartitionKey": r["PartitionKey"]}
            for r in records[start : start + 500]
        ]
        assert kinesis.put_records(StreamName=stream, Records=entries)["FailedRecordCount"] == 0
    return sum(1 for r in records if json.loads(r["Data"]).get("kind") == "event")


def segments_retried(stack: RunningStack) -> int:
    """Events the segments step skipped as already applied (by message id), today."""
    table = DynamoTable(NAMES.table("counters"), stack.client("dynamodb"))
    today = datetime.now(UTC).date().isoformat()
    return int(DailyCounters(table).day_totals("segments", today).get("retried", 0))


def test_a_known_lift_is_counted_exactly_and_survives_a_replay(stack: RunningStack) -> None:
    act = {
        "segment": "cart_abandoners",
        "event": "Order Completed",
        "properties": {"total": 40.0},
        "rates": RATES,
        "context": GRANTED,
        "seed": 18,
    }
    status, answer = call(stack, "POST", f"/_sink/{SINK}/act", act, headers=ADMIN)
    assert status == 204, answer
    run = uuid.uuid4().hex[:6]
    users = [f"cart-{run}-{n}" for n in range(SHOPPERS)]
    add_to_cart(stack, users, hours_ago=25)  # abandoned at once: over 24 h without an order

    decided = eventually(
        lambda: d if len(d := acted(stack, set(users))) == SHOPPERS else None, timeout_s=180
    )
    assert decided, f"only {len(acted(stack, set(users)))} of {SHOPPERS} abandoners messaged"
    assert {d["arm"] for d in decided} == set(RATES)  # every webhook names its variant
    exposed = {arm: sum(d["arm"] == arm for d in decided) for arm in RATES}
    orders = {arm: sum(d["arm"] == arm and d["converted"] for d in decided) for arm in RATES}

    def counted() -> dict[str, Any] | None:
        answer = report(stack)
        done = sum(a["conversions"] for a in answer["arms"]) == sum(orders.values())
        return answer if done else None

    answer = eventually(counted, timeout_s=120)
    assert answer, f"the report never counted {orders}: {report(stack)}"
    arms = {a["name"]: a for a in answer["arms"]}
    for name in RATES:
        assert arms[name]["exposures"] == exposed[name], arms
        assert arms[name]["conversions"] == orders[name], arms
        mean = 40.0 * orders[name] / exposed[name]
        assert arms[name]["value_mean"] == pytest.approx(mean, abs=1e-4), arms  # 4 decimals
    lift = answer["lift"]
    observed = orders["free_shipping"] / exposed["free_shipping"] - (
        orders["reminder"] / exposed["reminder"]
    )
    assert lift["estimate"] == pytest.approx(observed, abs=1e-6)
    assert lift["enough_data"] and lift["method"] == "sequential"
    assert lift["ci_low"] <= RATES["free_shipping"] - RATES["reminder"] <= lift["ci_high"]
    assert answer["srm"]["flag"] is False
    page = dashboard_page(stack)  # the same report, for people
    section = page.split("data-testid='experiment-cart_recovery'")[1].split("</section>")[0]
    assert f"<td class='n'>{exposed['free_shipping']}</td>" in section
    assert "lift +" in section and "[" in section  # the lift and its interval

    # Replayed, every event is one the profiles applied before: no count moves.
    skipped_before = segments_retried(stack)
    replayed = replay_resolved(stack)
    assert replayed >= SHOPPERS + sum(orders.values())
    assert eventually(lambda: segments_retried(stack) >= skipped_before + replayed, timeout_s=180)
    again = {a["name"]: a for a in report(stack)["arms"]}
    assert {n: (a["exposures"], a["conversions"]) for n, a in again.items()} == {
        n: (a["exposures"], a["conversions"]) for n, a in arms.items()
    }
